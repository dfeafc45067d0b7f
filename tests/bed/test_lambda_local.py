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


# --- asynchronous invocation (lambda_async.py) and the SQS event source (lambda_sqs.py) ---
import http.client  # noqa: E402

import lambda_async  # noqa: E402
import lambda_sqs  # noqa: E402

QUEUE = "arn:aws:sqs:us-east-1:210987654321:failed-events"


def shape(value):
    """The keys of a JSON document, nested (what a consumer of the record relies on)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def asynchronous(fn, sent, **settings):
    settings.setdefault("on_failure", QUEUE)
    return lambda_async.AsyncInvocations(fn, "210987654321", send=lambda arn, body: sent.append(
        (arn, json.loads(body))), **settings)


def test_a_failing_async_invocation_is_tried_three_times_then_its_record_reaches_the_destination(tmp_path):
    fn, sent = function(tmp_path), []
    queue = asynchronous(fn, sent, scale=0.001)
    try:
        queue.submit({"fail": True, "id": "arrival-1"})
        queue.wait(30)
    finally:
        fn.stop()
    [entry] = queue.log
    assert (entry["attempts"], entry["condition"], entry["destination"]) == \
        (3, "RetriesExhausted", "delivered")
    [(arn, record)] = sent
    assert arn == QUEUE
    sample = json.loads((ROOT / "events" / "lambda-destination-failure.json").read_text())
    assert shape(record) == {**shape(sample), "requestPayload": shape(record["requestPayload"])}
    assert record["requestContext"]["requestId"] == entry["requestId"]
    assert record["requestContext"]["functionArn"] == \
        "arn:aws:lambda:us-east-1:210987654321:function:fake:$LATEST"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == {"fail": True, "id": "arrival-1"}
    assert record["responsePayload"] == {"errorType": "ValueError", "errorMessage": "asked to fail"}


def test_a_timed_out_async_invocation_is_retried_and_its_record_says_sandbox_timedout(tmp_path):
    fn, sent = function(tmp_path, timeout_s=0.5), []
    queue = asynchronous(fn, sent, scale=0.001, retries=1)
    try:
        queue.submit({"sleep": 3})
        queue.wait(30)
    finally:
        fn.stop()
    assert queue.log[0]["attempts"] == 2
    [(_, record)] = sent
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_a_succeeding_async_invocation_is_tried_once_and_sends_no_record(tmp_path):
    fn, sent = function(tmp_path), []
    queue = asynchronous(fn, sent, scale=0.001)
    try:
        queue.submit({})
        queue.wait(30)
    finally:
        fn.stop()
    assert [(e["attempts"], e["outcome"]) for e in queue.log] == [(1, "succeeded")]
    assert sent == []


def test_an_event_older_than_its_maximum_age_is_not_tried_again(tmp_path):
    fn, sent = function(tmp_path), []
    # 60 s: the first wait (1 minute) would take the event past its age.
    queue = asynchronous(fn, sent, scale=0.001, max_age_s=60)
    try:
        queue.submit({"fail": True})
        queue.wait(30)
    finally:
        fn.stop()
    assert (queue.log[0]["attempts"], queue.log[0]["condition"]) == (1, "EventAgeExceeded")
    assert sent[0][1]["requestContext"]["condition"] == "EventAgeExceeded"


def test_a_destination_that_refuses_the_record_loses_it(tmp_path):
    fn = function(tmp_path)

    def refuse(arn, body):
        raise PermissionError("AccessDenied: not authorized to perform: sqs:SendMessage")
    queue = lambda_async.AsyncInvocations(fn, "210987654321", retries=0, on_failure=QUEUE,
                                          send=refuse)
    try:
        queue.submit({"fail": True})
        queue.wait(30)
    finally:
        fn.stop()
    assert queue.log[0]["attempts"] == 1
    assert queue.log[0]["destination"].startswith("refused: AccessDenied")


def test_the_invoke_api_answers_an_event_invocation_202_and_a_dry_run_204(tmp_path):
    fn, sent = function(tmp_path), []
    fn.asynchronous = asynchronous(fn, sent, scale=0.001)
    logs = {"async": fn.asynchronous.log, "batches": []}
    server = lambda_local.serve({"fake": fn}, logs=logs)
    try:
        answers = []
        for kind in ("Event", "DryRun"):
            conn = http.client.HTTPConnection(*server.server_address[:2])
            conn.request("POST", "/2015-03-31/functions/fake/invocations", b'{"fail": true}',
                         {"X-Amz-Invocation-Type": kind})
            answer = conn.getresponse()
            answers.append((answer.status, answer.read()))
        fn.asynchronous.wait(30)
        conn = http.client.HTTPConnection(*server.server_address[:2])
        conn.request("GET", "/_bed/async")
        listed = json.loads(conn.getresponse().read())
    finally:
        server.shutdown()
        fn.stop()
    assert answers == [(202, b""), (204, b"")]
    assert [(e["attempts"], e["destination"]) for e in listed] == [(3, "delivered")]


def test_the_templates_event_invoke_configs_and_event_source_mapping_are_read():
    functions = lambda_local.functions_from_template(
        Path("/bin-folder"), {}, {"FailedEventsQueue": QUEUE}, {}, {}, {},
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    by_logical = {d.logical: d for d in functions.values()}
    lambda_async.configure(by_logical, {}, {"FailedEventsQueue": QUEUE}, "210987654321", 1, [])
    trigger = functions["trigger-dag"].asynchronous
    assert (trigger.retries, trigger.on_failure, trigger.max_age_s) == (2, QUEUE, 21600)
    status = functions["environment-status"].asynchronous  # no EventInvokeConfig: defaults
    assert (status.retries, status.on_failure) == (2, None)
    [mapping] = lambda_sqs.mappings(by_logical, {}, {"FailedEventsQueue": QUEUE})
    assert (mapping.logical, mapping.deployed.name, mapping.role, mapping.queue_arn,
            mapping.batch_size, mapping.window_s, mapping.report_failures) == \
        ("NotifyFailedEvents", "notify", "NotifyFunctionRole", QUEUE, 10, None, True)
    poller = lambda_sqs.QueuePoller(mapping.deployed, QUEUE, 10, True, [])
    assert poller.url == "http://127.0.0.1:9/210987654321/failed-events"


IDS = ["m1", "m2", "m3"]


def test_a_batch_is_settled_as_lambda_settles_it():
    def settle(answer, failed=False, report=True):
        return sorted(lambda_sqs.settle(IDS, failed, answer, report))
    assert settle(b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}') == ["m1", "m3"]
    for success in (b'{"batchItemFailures": []}', b'{"batchItemFailures": null}', b"{}",
                    b"null", b""):
        assert settle(success) == IDS, success
    for whole_batch_failed in (b"not json", b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
                               b'{"batchItemFailures": [{"itemIdentifier": null}]}',
                               b'{"batchItemFailures": [{"id": "m2"}]}',
                               b'{"batchItemFailures": [{"itemIdentifier": "m9"}]}',
                               b'{"batchItemFailures": "m2"}', b"[]"):
        assert settle(whole_batch_failed) == [], whole_batch_failed
    assert settle(b'{"errorType": "X"}', failed=True) == []
    # Without ReportBatchItemFailures an answer is not read: success deletes the batch.
    assert settle(b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}', report=False) == IDS


def test_the_sqs_event_has_the_shape_lambda_gives():
    sample = json.loads((ROOT / "events" / "sqs-failed-events.json").read_text())["Records"][1]
    message = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": "{}", "MD5OfBody": "99914b93",
               "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763712191402",
                              "SenderId": "AIDA", "MessageGroupId": "not for standard queues"},
               "MessageAttributes": {"ERROR_CODE": {"DataType": "String",
                                                    "StringValue": "SDK_CLIENT_ERROR"}}}
    [record] = lambda_sqs.sqs_event([message], QUEUE)["Records"]
    assert set(record) == set(sample)
    assert record["messageAttributes"]["ERROR_CODE"] == sample["messageAttributes"]["ERROR_CODE"]
    assert set(record["attributes"]) == {"ApproximateReceiveCount", "SentTimestamp", "SenderId"}
    assert (record["eventSource"], record["eventSourceARN"], record["body"]) == ("aws:sqs", QUEUE, "{}")
