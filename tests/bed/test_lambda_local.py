"""The bed's Lambda service (lambda_local.py) answers as Lambda does, with the template's
settings; no bed needed: a small runtime client (tests/bench/runtime_loop.py) stands in for
a function's binary here, the real binaries are run in tests/pause_resume."""
import json
import sys
import threading
from pathlib import Path

import lambda_local

ROOT = Path(__file__).resolve().parents[2]
HANDLER = """
import os, sys, time
sys.path.insert(0, {bench!r})
import runtime_loop

def handle(event, deadline):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {{"pid": os.getpid(), "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
             "key": os.environ["AWS_ACCESS_KEY_ID"], "setting": os.environ.get("SETTING"),
             "seconds_left": deadline + 3 - time.time()}}

runtime_loop.serve(handle)
"""


def function(tmp_path, timeout_s=1.0):
    script = tmp_path / "bootstrap"
    script.write_text(f"#!{sys.executable}\n" + HANDLER.format(bench=str(ROOT / "tests" / "bench")))
    script.chmod(0o755)
    return lambda_local.Deployed("fake", script, timeout_s, 256, {"SETTING": "from the template"},
                                 "BEDIAMKEY", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})


def test_a_response_an_error_object_and_a_timeout_as_lambda_gives_them(tmp_path):
    fn = function(tmp_path, timeout_s=1.0)
    try:
        failed, answer = fn.invoke({})
        first = json.loads(answer)
        assert not failed
        assert (first["memory"], first["key"], first["setting"]) == ("256", "BEDIAMKEY", "from the template")
        assert 0 < first["seconds_left"] <= 1.0  # the deadline is the Timeout

        failed, answer = fn.invoke({"fail": True})
        assert failed and json.loads(answer) == {"errorType": "ValueError", "errorMessage": "asked to fail"}

        failed, answer = fn.invoke({"sleep": 3})
        error = json.loads(answer)
        assert failed and error["errorType"] == "Sandbox.Timedout"
        assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")

        failed, answer = fn.invoke({})
        assert not failed
        assert json.loads(answer)["pid"] != first["pid"], "the timed-out instance was killed"
    finally:
        fn.stop()


def test_one_invocation_at_a_time_per_instance(tmp_path):
    fn = function(tmp_path, timeout_s=10.0)
    answers = []
    try:
        threads = [threading.Thread(target=lambda: answers.append(fn.invoke({"sleep": 1})))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pids = {json.loads(answer)["pid"] for _, answer in answers}
        assert len(pids) == 2, answers
        failed, answer = fn.invoke({})  # a warm instance is reused
        assert json.loads(answer)["pid"] in pids
    finally:
        fn.stop()


def test_every_function_of_the_template_is_served_by_its_binary_with_its_settings():
    functions = lambda_local.functions_from_template(
        Path("/bin-folder"), {"Routes": '[{"bucket": "b"}]'}, {"SuiteBucket": "suite"},
        {"trigger-dag": {"ENVIRONMENT_CACHE_SECONDS": "1"}}, {"environment-status": 3},
        {"trigger-dag": "BEDIAMTRIGGER"}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    steps = {p.stem for p in (ROOT / "functions" / "pause-resume" / "src" / "bin").glob("*.rs")}
    assert set(functions) == steps | {"trigger-dag", "notify", "provision-endpoints", "mwaa-ops-notify"}
    trigger = functions["trigger-dag"]
    assert trigger.binary == Path("/bin-folder/trigger-dag")
    assert trigger.timeout_s == 90
    env = trigger.process.env
    assert (env["ROUTES"], env["HELD_BUCKET"], env["ENVIRONMENT_CACHE_SECONDS"]) == \
        ('[{"bucket": "b"}]', "suite", "1")
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_ENDPOINT_URL"]) == ("BEDIAMTRIGGER", "http://127.0.0.1:1")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert functions["environment-status"].timeout_s == 3
    assert functions["notify"].process.env["AWS_ACCESS_KEY_ID"] == "testing"
    # A reference the bed did not name is left out, not passed on unresolved.
    assert "TOPIC_ARN" not in functions["notify"].process.env


def test_function_names_as_the_sdk_sends_them():
    assert lambda_local.function_name("/2015-03-31/functions/trigger-dag/invocations") == "trigger-dag"
    assert lambda_local.function_name(
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Anotify%3A%24LATEST/invocations"
    ) == "notify"
    assert lambda_local.function_name("/2015-03-31/functions/x") is None
