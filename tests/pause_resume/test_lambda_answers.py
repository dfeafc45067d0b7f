"""What Lambda answers reaches the state machines as Step Functions would see it, end to end
without Airflow: the production pause in moto's Step Functions, its Lambda tasks served by
the functions' binaries behind the bed's Lambda service (tests/bed/lambda_local.py, started by
step-worker), the local MWAA control plane.

- a step past its Timeout is killed: the task fails with `Sandbox.Timedout` (which the
  state machines do not retry) and Lambda's message, and the next invocation gets a fresh
  instance;
- a throttled MWAA call the binary could not get through within its deadline fails the
  task as `Retryable` (the error contract's errorType), which the state machine retries.

environment-status's Timeout is scaled to TIMEOUT seconds for the test (the template's is
60 s): a `latency` fault longer than that holds its GetEnvironment past it, and `throttle`
faults keep answering 429 until the binary's deadline.
"""
import json
import time
import urllib.request

import pytest

import cycle as shared

ENV = "dev-answers"
TIMEOUT = 3


def task_failures(cycle, arn):
    """(error, cause as JSON) of each failed task of the execution, in order."""
    events = cycle.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [(e["taskFailedEventDetails"].get("error"), json.loads(e["taskFailedEventDetails"].get("cause") or "null"))
            for e in events if e["type"] == "TaskFailed"]


def clear_faults(cycle):
    urllib.request.urlopen(urllib.request.Request(f"{cycle.plane_url}/_bed/faults", method="DELETE")).read()


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lambda-answers")
    with shared.without_airflow(tmp, ENV) as cycle:
        cycle.deploy([], timeouts={"environment-status": TIMEOUT})
        cycle.create_environment("2.10.3")
        yield cycle


def test_a_step_past_its_timeout_fails_as_sandbox_timedout_and_is_not_retried(bed):
    bed.inject([{"operation": "GetEnvironment", "kind": "latency", "latency_ms": (TIMEOUT + 3) * 1000}])
    arn = bed.start("pause")
    end = shared.mb.wait_execution(bed.sfn, arn, timeout=120)
    failures = task_failures(bed, arn)
    assert [error for error, _ in failures] == ["Sandbox.Timedout"], failures
    _, cause = failures[0]
    assert cause, bed.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert cause["errorType"] == "Sandbox.Timedout"
    assert cause["errorMessage"].endswith(f"Task timed out after {TIMEOUT}.00 seconds"), cause
    assert "PauseFailed" in bed.steps(arn), end
    assert bed.status() == "AVAILABLE"
    # The killed instance is gone; the next invocation starts a fresh one and answers.
    answer = bed.lambda_.invoke(FunctionName="environment-status", Payload=json.dumps({"environment": ENV}))
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read())["status"] == "AVAILABLE"


def test_a_throttled_call_reaches_the_state_machine_as_retryable_and_is_retried(bed):
    clear_faults(bed)
    bed.inject([{"operation": "GetEnvironment", "kind": "throttle", "count": 10_000}])
    arn = bed.start("pause")
    deadline = time.monotonic() + 60
    while not task_failures(bed, arn):
        assert time.monotonic() < deadline, "the throttled step never failed"
        time.sleep(0.5)
    clear_faults(bed)  # the retry gets through
    # The first failure; under load a retry (FULL jitter: at once) may have failed too by now.
    error, cause = task_failures(bed, arn)[0]
    assert error == "Retryable", cause
    assert cause["errorType"] == "Retryable" and "ThrottlingException" in cause["errorMessage"], cause
    # The state machine's Retry on Retryable runs the step again, which now reads the status.
    deadline = time.monotonic() + 60
    while "SkipTonight" not in bed.steps(arn):
        assert time.monotonic() < deadline, bed.steps(arn)
        time.sleep(0.5)
    # A retry may have started (FULL jitter: at once) before the faults were cleared.
    assert {e for e, _ in task_failures(bed, arn)} == {"Retryable"}
    bed.sfn.stop_execution(executionArn=arn)
