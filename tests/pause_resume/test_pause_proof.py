"""Each pause and resume acts on its own evidence only, end to end without Airflow: the
production state machines in moto's Step Functions, their Lambda tasks served by the real
Rust handlers (step-worker), the local MWAA control plane. The test plays the export DAG: it
holds run-dag back, takes the task token from the execution's history and answers it the way
`mwaa_ops_export` does (SendTaskSuccess with the manifest), as anyone holding a token could.

One scenario, in this order (A after B: B must leave the records as they were):
  A. a resume after a skipped pause -> the snapshot was restored already: nothing imported,
     no DAG switched on, the output and an `Environment Not Resumed` event say why
  B. a pause answered with last night's valid export -> VerifyExport refuses it, nothing is
     recorded or deleted
  C. a pause answered with a fresh export of this environment -> verified, recorded with
     this execution's verification, deleted once

The DAG side (the real export, the re-enabled DAGs) is in test_pause_resume.py.
"""
import datetime as dt
import hashlib
import json
import time

import pytest

import cycle as shared
import metadata_bed as mb
from cycle import SUITE, REGION

ENV = "dev-proof"
RESTORED_BY = f"arn:aws:states:{REGION}:{shared.ACCOUNT}:execution:mwaa-ops-resume:yesterday-morning"
LAST_PAUSE = f"arn:aws:states:{REGION}:{shared.ACCOUNT}:execution:mwaa-ops-pause:night-before"


def put_json(cycle, key, body):
    cycle.s3.put_object(Bucket=SUITE, Key=key, Body=json.dumps(body).encode())


def write_export(cycle, created_at: dt.datetime) -> dict:
    return shared.write_export(cycle, ENV, created_at)


def task_token(cycle, arn, state):
    """The token Step Functions gave `state`'s task (its TaskScheduled parameters)."""
    events = cycle.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [i for i, e in enumerate(events) if e.get("stateEnteredEventDetails", {}).get("name") == state]
    scheduled = [e for e in events[entered[-1]:] if e["type"] == "TaskScheduled"]
    body = json.loads(scheduled[0]["taskScheduledEventDetails"]["parameters"])["MessageBody"]
    return (json.loads(body) if isinstance(body, str) else body)["token"]


def finish(cycle, arn, timeout=120):
    """The execution's end; one still running after `timeout` is stopped and reported so
    (the next phase needs the worker)."""
    try:
        return mb.wait_execution(cycle.sfn, arn, timeout=timeout)
    except TimeoutError:
        cycle.sfn.stop_execution(executionArn=arn)
        return {"status": "STILL_RUNNING", "error": f"stopped after {timeout} s"}


def pause_answered_with(cycle, export_at):
    """A pause whose export task is answered with an export written at `export_at()` (called
    once the task waits); the real run-dag is held back meanwhile, then fails at once (its
    token is answered already, and there is no Airflow here). Returns the execution's end,
    its states, the faults left unserved and the pause's ARN."""
    gate = cycle.hold / "run-dag"
    gate.touch()
    arn = cycle.start("pause")
    deadline = time.monotonic() + 120
    while not (cycle.hold / "run-dag.waiting").exists():
        assert time.monotonic() < deadline, "the pause never reached RunExport"
        time.sleep(0.2)
    output = write_export(cycle, export_at())
    cycle.sfn.send_task_success(taskToken=task_token(cycle, arn, "RunExport"), output=json.dumps(output))
    cycle.inject([{"operation": "GetEnvironment", "kind": "access_denied"}])  # run-dag's first call
    gate.unlink()
    end = finish(cycle, arn)
    return (end["status"], end.get("error")), cycle.steps(arn), cycle.admin("faults"), arn


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pause-proof")
    out = {}
    with shared.without_airflow(tmp, ENV) as cycle:
        cycle.deploy([])
        cycle.create_environment("2.10.3")
        created = cycle.mwaa.get_environment(Name=ENV)["Environment"]["CreatedAt"]

        # The environment the last resume made (after the pause) restored the snapshot and
        # recorded it; tonight's pause was skipped (A): the snapshot is still that one.
        paused_at = (created - dt.timedelta(hours=8)).isoformat()
        snapshot = {"environment": ENV, "manifest": f"s3://{SUITE}/metadata/{ENV}/old/manifest.json",
                    "export_id": "export-old", "manifest_sha256": "0" * 64, "manifest_version_id": "v-old",
                    "active_dags": ["etl", "reports"], "execution": LAST_PAUSE,
                    "paused_at": paused_at, "configuration": {}}
        put_json(cycle, f"snapshots/{ENV}/latest.json", snapshot)
        put_json(cycle, f"snapshots/{ENV}/restored.json",
                 {"environment": ENV, "manifest": snapshot["manifest"], "execution": LAST_PAUSE,
                  "resume_execution": RESTORED_BY, "restored_at": (created + dt.timedelta(minutes=5)).isoformat()})

        # B. Last night's export, valid in every way, sent to tonight's export token.
        yesterday = lambda: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)  # noqa: E731
        out["replayed"] = pause_answered_with(cycle, yesterday)
        out["replayed_status"] = cycle.status()
        out["replayed_snapshot"] = json.loads(
            cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/latest.json")["Body"].read())
        out["replayed_deletes"] = len(cycle.deletes())

        # A. The resume after that skipped pause.
        calls_before = len(cycle.admin("calls"))
        arn = cycle.start("resume")
        end = finish(cycle, arn)
        out["again"] = (end["status"], end.get("error"), json.loads(end.get("output") or "null"), cycle.steps(arn))
        out["again_calls"] = [c for c in cycle.admin("calls")[calls_before:] if c["operation"] != "GetEnvironment"]
        out["events"] = cycle.suite_events()

        # C. A fresh export of this environment, written while the pause waits for it.
        out["fresh"] = pause_answered_with(cycle, lambda: dt.datetime.now(dt.timezone.utc))
        out["fresh_snapshot"] = json.loads(
            cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/latest.json")["Body"].read())
        out["fresh_status"] = cycle.status()
        out["fresh_deletes"] = [c for c in cycle.deletes() if c.get("status") == 200]
        yield out, cycle


def test_a_resume_after_a_skipped_pause_changes_nothing_and_says_why(scenario):
    out, _ = scenario
    status, error, output, steps = out["again"]
    assert (status, error) == ("SUCCEEDED", None), out["again"]
    # No pausing mark and nothing held: nothing replayed either.
    assert steps[-4:] == ["NothingToResume", "ReplayWithoutResuming", "EmitNotResumed", "NotResumed"], steps
    assert output["pausing"] == {"mark": "none", "replay": False}, output
    assert not {"WaitForAvailable", "RunImport", "EnableDags", "ReplayHeldArrivals", "RecordRestore"} & set(steps)
    assert output["environment"] == ENV and output["resumed"] is False, output
    assert "restored already" in output["reason"] and RESTORED_BY in output["reason"], output
    assert out["again_calls"] == [], "no create, no REST call (no import, no DAG switched on)"
    said = [e for e in out["events"] if e["detail-type"] == "Environment Not Resumed"]
    assert len(said) == 1 and said[0]["detail"]["reason"] == output["reason"], out["events"]
    assert not [e for e in out["events"] if e["detail-type"] == "Environment Resumed"]


def test_an_older_valid_export_sent_to_the_token_deletes_nothing(scenario):
    out, _ = scenario
    (status, error), steps, faults_left, _ = out["replayed"]
    assert faults_left == []
    assert (status, error) == ("FAILED", "ExportNotVerified"), out["replayed"]
    assert "VerifyExport" in steps and "ReenableDags" in steps, steps
    assert "RecordSnapshot" not in steps and "DeleteEnvironment" not in steps, steps
    assert out["replayed_status"] == "AVAILABLE" and out["replayed_deletes"] == 0
    assert out["replayed_snapshot"]["execution"] == LAST_PAUSE, "the last snapshot record is untouched"


def test_a_fresh_export_of_this_environment_is_verified_recorded_and_then_deleted(scenario):
    out, _ = scenario
    (status, error), steps, faults_left, arn = out["fresh"]
    assert faults_left == []
    assert (status, error) == ("SUCCEEDED", None), out["fresh"]
    order = ["VerifyExport", "RecordSnapshot", "DeleteEnvironment", "EmitPaused"]
    assert [s for s in steps if s in order] == order, steps
    snapshot = out["fresh_snapshot"]
    assert snapshot["execution"] == arn and snapshot["verified"]["execution"] == arn, snapshot
    assert snapshot["verified"]["environment"] == ENV and snapshot["verified"]["verified"] is True
    assert snapshot["verified"]["manifest"] == snapshot["manifest"]
    # What binds the resume's import to this export: the digest verify-export measured and the
    # S3 version the export wrote (the latest version at the key, as written).
    bucket, key = snapshot["manifest"][5:].split("/", 1)
    head = scenario[1].s3.head_object(Bucket=bucket, Key=key)
    body = scenario[1].s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert snapshot["manifest_version_id"] == head["VersionId"]
    assert snapshot["manifest_sha256"] == hashlib.sha256(body).hexdigest()
    assert out["fresh_status"] == "NOT_FOUND" and len(out["fresh_deletes"]) == 1
