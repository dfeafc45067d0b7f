"""Pause and resume, end to end: the production state machines (infra/statemachines) in
moto's Step Functions, their Lambda tasks served by the real Rust handlers (step-worker),
the local MWAA control plane, and a real Airflow 2.10.3 on PostgreSQL running the export and
import DAGs, which answer their task tokens in moto.

One scenario per module (one Airflow at a time on this machine), in this order:
  0. skip tonight               -> the pause ends "Skipped", the marker is used up
  1. environment not AVAILABLE  -> pause fails at once, nothing exported or deleted
  2. export DAG fails           -> pause fails, environment kept, its DAGs re-enabled
  3. manifest tampered          -> pause fails at VerifyExport, environment kept, DAGs re-enabled
  3b. the deletion fails        -> pause fails DeletionFailed, environment kept, DAGs re-enabled
  4. pause                      -> configuration saved, export verified, environment DELETED
  5. an arrival while paused    -> held
  6. MWAA's part: the environment's Airflow is gone; a new one, empty, with another Fernet key
  7. CREATE_FAILED              -> resume fails without waiting, configuration and export kept
  7b. an export object damaged  -> resume fails at the import, nothing imported, all kept
  8. resume                     -> same configuration, metadata imported, DAGs on, arrival run once
  9. resume again               -> succeeds, changes nothing: that snapshot was restored already
 10. a DAG paused by its users, the pause skipped, resume -> nothing imported, the DAG stays paused
 11. a pause stopped by hand after its mark: a resume while it ran kept the mark; one after it
     was stopped ends the mark and replays what it held, still importing and enabling nothing
The tests below check what each step left behind. Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import json
import os
import time
from pathlib import Path

import pytest

import cycle as shared
import metadata_bed as mb
import mwaa_local
from cycle import SERVER_ASSIGNED, SUITE, LANDING, REGION
from metadata_bed import ab
from moto_bed import Moto

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1", reason="MWAA_OPS_SKIP_AIRFLOW=1")
VERSION = "2.10.3"
ENV = "dev-analytics"
ROUTES = [{"name": "landing", "bucket": LANDING, "prefix": "in/", "environment": ENV, "dag": "bed_smoke"}]


# The fault matrix (rules of the control plane's /_bed/faults, for ENV). The SDK makes 3
# attempts per call: 2 faults in a row are its to absorb, 3 reach the step, which fails
# Retryable for the state machine to retry (a new invocation; for run-dag a new task token).
# "after": the work is done and the answer lost.  Latency stays under the steps' 15 s
# attempt timeout (tests/tests/faults_pause_resume.rs covers the timeout itself).
def _rest(method, path, kind, **extra):
    return dict(operation="InvokeRestApi", method=method, path=path, kind=kind, **extra)


PAUSE_FAULTS = [
    {"operation": "GetEnvironment", "kind": "throttle", "count": 2},
    {"operation": "GetEnvironment", "kind": "server_error", "status": 500, "count": 3},
    {"operation": "GetEnvironment", "kind": "latency", "latency_ms": 1500},
    _rest("PATCH", "/dags/mwaa_ops_export", "throttle"),
    _rest("PATCH", "/dags/mwaa_ops_export", "rest_api_server_error", status=503),
    # Airflow starts the export run, MWAA's answer is a 504 (its 10 s limit): the dangerous one.
    _rest("POST", "/dags/mwaa_ops_export/dagRuns", "rest_api_server_error", status=504, after=True),
    _rest("POST", "/dags/mwaa_ops_export/dagRuns", "latency", latency_ms=1500),
    {"operation": "DeleteEnvironment", "kind": "throttle"},
    {"operation": "DeleteEnvironment", "kind": "server_error", "status": 500, "after": True},
]
CREATE_FAULTS = [
    {"operation": "GetEnvironment", "kind": "throttle", "count": 3},
    {"operation": "CreateEnvironment", "kind": "throttle"},
    {"operation": "CreateEnvironment", "kind": "server_error", "status": 503, "after": True},
]
RESUME_FAULTS = [
    {"operation": "GetEnvironment", "kind": "latency", "latency_ms": 1500},
    {"operation": "GetEnvironment", "kind": "server_error", "status": 503, "count": 2},
    _rest("PATCH", "/dags/mwaa_ops_import", "server_error", status=500),
    _rest("POST", "/dags/mwaa_ops_import/dagRuns", "rest_api_server_error", status=504, after=True),
    _rest("POST", "/dags/mwaa_ops_import/dagRuns", "throttle", count=2),
    _rest("PATCH", "/dags/mwaa_ops_history", "rest_api_server_error", status=503, count=2),
    _rest("PATCH", "/dags/mwaa_ops_history", "throttle"),
]


def did_work(call):
    """A call that changed something: answered 200, or faulted after a work that succeeded."""
    return call.get("status") == 200 or bool(call.get("after") and "work_error" not in call)


def served_faults(calls):
    return sorted((c["operation"], c.get("method"), c.get("path"), c["fault"], bool(c.get("after")))
                  for c in calls if "fault" in c)


def expected_faults(rules):
    return sorted((r["operation"], r.get("method"), r.get("path"), r["kind"], bool(r.get("after")))
                  for r in rules for _ in range(r.get("count", 1)))


def start_airflow(pg, folder, workdir, cycle):
    """ENV's Airflow, its tasks acting as ENV's execution role (README's policy)."""
    airflow = ab.Airflow(VERSION, pg, folder, workdir, execution_key=cycle.execution_key())
    info = airflow.start()
    cycle.admin("airflows", [info])  # InvokeRestApi on ENV now reaches this Airflow
    for dag in ("mwaa_ops_export", "mwaa_ops_import", "mwaa_ops_history", "bed_smoke", "mwaa_ops_busy"):
        airflow.wait_for_dag(dag)
    return airflow, info


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pause-resume")
    moto, pg, airflow, plane, cycle = Moto(tmp), ab.Postgres(), None, None, None
    saved = dict(os.environ)
    out = {}
    try:
        moto.start()
        aws = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        os.environ.update(aws, PYTHONPATH=str(ab.boto_shim(tmp)))  # inherited by every Airflow process
        shared.execute_state_machines(moto.url)
        pg.start(tmp / "pg")
        folder = ab.dags_folder(tmp / "dags", (ab.SUITE_DAGS, ROOT / "tests" / "metadata" / "dags",
                                               ab.DAGS, HERE / "dags"))
        plane = mwaa_local.serve(moto_url=moto.url, airflows=[], region=REGION, account=shared.ACCOUNT)
        cycle = shared.Cycle(moto.url, plane.url, tmp, ENV)
        cycle.deploy(ROUTES)
        tasks = cycle.tasks
        airflow, source = start_airflow(pg, folder, tmp / "source", cycle)

        cycle.create_environment(VERSION)
        out["history"] = mb.make_history(source)
        out["before"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]

        # 0. skip tonight: an operator's marker makes the next pause end without doing anything
        cycle.s3.put_object(Bucket=SUITE, Key=f"overrides/{ENV}/skip-next-pause", Body=b"")
        out["skipped"] = cycle.run("pause")
        out["skipped_steps"] = cycle.steps(out["skipped"][3])
        out["skipped_after"] = (cycle.status(), cycle.keys(f"overrides/{ENV}/"))

        # 1. not AVAILABLE
        cycle.admin("status", {"name": ENV, "status": "UPDATING"})
        out["not_available"] = cycle.run("pause")
        out["not_available_steps"] = cycle.steps(out["not_available"][3])
        out["not_available_deletes"] = len(cycle.deletes())
        cycle.admin("status", {"name": ENV, "status": "AVAILABLE"})

        # 2. the export DAG fails: a task keeps running past the export's wait timeout
        mb.trigger(source, "mwaa_ops_busy", "busy-1")
        time.sleep(5)
        out["export_fails"] = cycle.run("pause", wait_timeout_seconds=2)
        out["export_fails_status"] = cycle.status()
        out["export_fails_steps"] = cycle.steps(out["export_fails"][3])
        out["export_fails_paused"] = mb.call(source, "GET", "/dags/mwaa_ops_history")["is_paused"]
        mb.wait_runs(source, "mwaa_ops_busy", ["busy-1"])

        # 3. the manifest's objects are changed between export and verification
        (cycle.hold / "verify-export").touch()
        t0 = time.monotonic()
        execution = cycle.start("pause")
        while not (cycle.hold / "verify-export.waiting").exists():
            assert time.monotonic() - t0 < 300, "verify-export never started"
            time.sleep(0.5)
        desc = json.loads(cycle.sfn.describe_execution(executionArn=execution).get("input") or "{}")
        assert desc["environment"] == ENV
        objects = [k for k in cycle.keys("metadata/") if k.endswith("/xcom/xcom.tsv.gz")]
        newest = max(objects, key=lambda k: cycle.s3.head_object(Bucket=SUITE, Key=k)["LastModified"])
        cycle.s3.put_object(Bucket=SUITE, Key=newest, Body=b"not what was exported")
        (cycle.hold / "verify-export").unlink()
        end = mb.wait_execution(cycle.sfn, execution, timeout=120)
        out["tampered"] = (end["status"], end.get("error"), cycle.steps(execution))
        out["tampered_status"] = cycle.status()
        out["tampered_paused"] = mb.call(source, "GET", "/dags/mwaa_ops_history")["is_paused"]
        out["deletes_before_pause"] = len(cycle.deletes())

        # 3b. the deletion fails: the environment leaves DELETING for AVAILABLE again
        delays = cycle.admin("config")
        cycle.admin("config", {"delete_delay": 300})
        execution = cycle.start("pause")
        t0 = time.monotonic()
        while cycle.status() != "DELETING":
            assert time.monotonic() - t0 < 300, "the pause never started the deletion"
            time.sleep(0.2)
        cycle.admin("status", {"name": ENV, "status": "AVAILABLE"})
        cycle.admin("config", {"delete_delay": delays["delete_delay"]})
        end = mb.wait_execution(cycle.sfn, execution, timeout=120)
        out["deletion_fails"] = (end["status"], end.get("error"), end.get("cause"), cycle.steps(execution))
        out["deletion_fails_status"] = cycle.status()
        out["deletion_fails_paused"] = mb.call(source, "GET", "/dags/mwaa_ops_history")["is_paused"]

        # 4. pause, under faults: every MWAA call kind the pause makes is throttled, fails
        # or is slow at least once; some answers are lost after the work was done.
        # An arrival at each of its steps, each to end as one run: before the pause marks the
        # environment (a run here, exported), after (held, replayed by the resume).
        exports_before = mb.call(source, "GET", "/dags/mwaa_ops_export/dagRuns")["total_entries"]
        since = cycle.inject(PAUSE_FAULTS)
        exports = lambda: mb.call(source, "GET", "/dags/mwaa_ops_export/dagRuns")["total_entries"]  # noqa: E731
        out["pause"], arrivals = cycle.arrivals_along("pause", [
            ("save-configuration", "in/p0-before-the-mark.csv"),
            ("run-dag", "in/p1-before-the-export.csv"),
            (lambda: exports() > exports_before, "in/p2-during-the-export.csv"),
            ("verify-export", "in/p3-during-verification.csv"),
            ("delete-environment", "in/p4-before-the-deletion.csv"),
            ("environment-status", "in/p5-during-the-deletion.csv"),  # ReadDeletion: DELETING
        ])
        out["arrivals"] = arrivals
        out["pause_calls"], out["pause_faults_left"] = cycle.served(since)
        out["pause_exports"] = mb.call(source, "GET", "/dags/mwaa_ops_export/dagRuns")["total_entries"] \
            - exports_before
        out["pause_steps"] = cycle.steps(out["pause"][3])
        out["after_pause"] = cycle.status()
        out["snapshot"] = json.loads(cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/latest.json")["Body"].read())
        out["sealed_with"] = {key: cycle.s3.head_object(Bucket=SUITE, Key=key).get("SSEKMSKeyId")
                              for key in (f"configurations/{ENV}/latest.json",
                                          f"snapshots/{ENV}/latest.json")}
        out["suite_key"] = cycle.key_arn
        out["source"] = mb.dump(VERSION, source["database_url"], source["fernet_key"])

        # 5. an arrival while paused: S3 -> rule -> trigger-dag (as Lambda would invoke it)
        cycle.s3.put_object(Bucket=LANDING, Key="in/night.csv", Body=b"a,b\n")
        arrival = json.loads((ROOT / "events" / "s3-object-created.json").read_text())
        arrival["detail"]["bucket"]["name"], arrival["detail"]["object"]["key"] = LANDING, "in/night.csv"
        for _ in range(2):  # delivered twice
            cycle.sqs.send_message(QueueUrl=tasks, MessageBody=json.dumps({"function": "trigger-dag", "payload": arrival}))
        deadline = time.monotonic() + 60
        while len(cycle.keys(f"held/{ENV}/")) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        out["held"] = cycle.keys(f"held/{ENV}/")

        # 6. the environment is gone, and its Airflow with it: a new, empty one takes its place
        out["source_runs"] = [(r.get("conf") or {}).get("key")
                              for r in mb.call(source, "GET", "/dags/bed_smoke/dagRuns")["dag_runs"]]
        airflow.stop()
        airflow, target = start_airflow(pg, folder, tmp / "target", cycle)
        out["fernet_changed"] = target["fernet_key"] != source["fernet_key"]

        # 7. CREATE_FAILED
        cycle.admin("fail", {"name": ENV, "status": "CREATE_FAILED"})
        out["create_failed"] = cycle.run("resume")
        out["create_failed_keys"] = (cycle.keys(f"configurations/{ENV}/"), cycle.keys(f"snapshots/{ENV}/"))
        cycle.mwaa.delete_environment(Name=ENV)
        cycle.wait_status("NOT_FOUND")

        # 7b. the import fails: an object of the export was damaged after the pause. The failed
        # resume leaves the new environment AVAILABLE and empty; the export is repaired after.
        export_dir = out["snapshot"]["manifest"][len(f"s3://{SUITE}/"):].rsplit("/", 1)[0]
        [victim] = [k for k in cycle.keys(export_dir + "/") if k.endswith("/variable.tsv.gz")]
        original = cycle.s3.get_object(Bucket=SUITE, Key=victim)["Body"].read()
        cycle.s3.put_object(Bucket=SUITE, Key=victim, Body=b"damaged")
        since = cycle.inject(CREATE_FAULTS)
        # Arrivals before and during the creation: held (the pause's mark is still there).
        out["import_fails"], outcomes = cycle.arrivals_along("resume", [
            ("create-environment", "in/r1-before-the-creation.csv"),
            ("environment-status", "in/r2-during-the-creation.csv"),  # ReadEnvironment: CREATING
        ])
        arrivals.update(outcomes)
        out["create_calls"], out["create_faults_left"] = cycle.served(since)
        out["import_fails_steps"] = cycle.steps(out["import_fails"][3])
        out["import_fails_kept"] = (cycle.keys(f"configurations/{ENV}/latest.json"),
                                    cycle.keys(f"snapshots/{ENV}/"), len(cycle.keys(export_dir + "/")))
        out["import_fails_variables"] = mb.call(target, "GET", "/variables")["total_entries"]
        cycle.s3.put_object(Bucket=SUITE, Key=victim, Body=original)

        # 8. resume (the environment exists now: created by 7b, so creation is skipped)
        imports_before = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"]
        since = cycle.inject(RESUME_FAULTS)
        # Arrivals before, during and after the import, before the DAGs are on: held, then
        # replayed once the resume ends the mark; one after the resume: a run at once.
        imports = lambda: mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"]  # noqa: E731
        out["resume"], outcomes = cycle.arrivals_along("resume", [
            ("run-dag", "in/r3-before-the-import.csv"),
            (lambda: imports() > imports_before, "in/r4-during-the-import.csv"),
            ("enable-dags", "in/r5-before-the-dags-are-on.csv"),
        ])
        arrivals.update(outcomes)
        arrivals["in/r6-after-the-resume.csv"] = cycle.arrive("in/r6-after-the-resume.csv")
        out["resume_calls"], out["resume_faults_left"] = cycle.served(since)
        out["resume_imports"] = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"] \
            - imports_before
        out["resume_steps"] = cycle.steps(out["resume"][3])
        out["after"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]
        out["held_after"] = cycle.keys(f"held/{ENV}/")
        runs = mb.call(target, "GET", "/dags/bed_smoke/dagRuns")["dag_runs"]
        out["replayed_runs"] = [r for r in runs if (r.get("conf") or {}).get("key") == "in/night.csv"]
        out["target_runs"] = [(r.get("conf") or {}).get("key") for r in runs]
        # Let the runs finish, so that the second resume is compared with a still database.
        mb.wait_runs(target, "bed_smoke", [r["dag_run_id"] for r in runs])
        out["target_dags"] = {d["dag_id"]: d["is_paused"] for d in mb.call(target, "GET", "/dags")["dags"]}
        out["target"] = mb.dump(VERSION, target["database_url"], target["fernet_key"])
        out["restored"] = json.loads(cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/restored.json")["Body"].read())

        # 9. resume again
        out["resume_again"] = cycle.run("resume")
        out["resume_again_steps"] = cycle.steps(out["resume_again"][3])
        out["target_again"] = mb.dump(VERSION, target["database_url"], target["fernet_key"])

        # 10. its users pause a DAG during the day; tonight's pause is skipped; the morning's
        # resume must not switch that DAG back on from the old snapshot
        mb.call(target, "PATCH", "/dags/mwaa_ops_history", {"is_paused": True})
        imports_before = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"]
        cycle.s3.put_object(Bucket=SUITE, Key=f"overrides/{ENV}/skip-next-pause", Body=b"")
        out["skipped_again"] = cycle.run("pause")
        out["after_skip"] = cycle.run("resume")
        out["after_skip_steps"] = cycle.steps(out["after_skip"][3])
        out["after_skip_output"] = json.loads(
            cycle.sfn.describe_execution(executionArn=out["after_skip"][3]).get("output") or "null")
        out["after_skip_paused"] = mb.call(target, "GET", "/dags/mwaa_ops_history")["is_paused"]
        out["after_skip_imports"] = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"] \
            - imports_before
        # 11. a pause that marks the environment, then waits: a resume meanwhile must leave the
        # mark; an arrival is held. The pause is stopped by hand (its mark stays behind); the
        # next resume ends the mark and replays the held arrivals, one run each.
        pause = cycle.start("pause", pausing_wait_seconds=600)
        deadline = time.monotonic() + 120
        while not cycle.keys(f"pausing/{ENV}"):
            assert time.monotonic() < deadline, "the pause never marked the environment"
            time.sleep(0.2)
        imports_before = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"]
        out["while_pausing"] = cycle.run("resume")
        out["while_pausing_output"] = json.loads(
            cycle.sfn.describe_execution(executionArn=out["while_pausing"][3]).get("output") or "null")
        out["while_pausing_steps"] = cycle.steps(out["while_pausing"][3])
        out["stopped_arrivals"] = {"in/s1-while-pausing.csv": cycle.arrive("in/s1-while-pausing.csv")}
        out["mark_while_pausing"] = cycle.keys(f"pausing/{ENV}")
        cycle.sfn.stop_execution(executionArn=pause, error="ByHand", cause="an operator stopped it")
        out["stopped_pause"] = mb.wait_execution(cycle.sfn, pause, timeout=60)["status"]
        out["stopped_arrivals"]["in/s2-after-the-stop.csv"] = cycle.arrive("in/s2-after-the-stop.csv")
        out["held_after_stop"] = cycle.keys(f"held/{ENV}/")
        out["after_stop"] = cycle.run("resume")
        out["after_stop_output"] = json.loads(
            cycle.sfn.describe_execution(executionArn=out["after_stop"][3]).get("output") or "null")
        out["after_stop_steps"] = cycle.steps(out["after_stop"][3])
        out["after_stop_mark"] = cycle.keys(f"pausing/{ENV}")
        out["after_stop_held"] = cycle.keys(f"held/{ENV}/")
        out["after_stop_arrival"] = cycle.arrive("in/s3-after-the-resume.csv")
        out["after_stop_runs"] = [(r.get("conf") or {}).get("key")
                                  for r in mb.call(target, "GET", "/dags/bed_smoke/dagRuns")["dag_runs"]]
        out["after_stop_paused"] = mb.call(target, "GET", "/dags/mwaa_ops_history")["is_paused"]
        out["after_stop_imports"] = mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"] \
            - imports_before
        out["events"] = cycle.suite_events()
        out["worker_log"] = (tmp / "worker.log").read_text(errors="replace")
        # Every log of the run: the Rust handlers', moto's, both Airflows' (servers and tasks).
        out["logs"] = shared.logs(tmp)
        yield out
    finally:
        if cycle:
            cycle.stop_worker()
        if plane:
            plane.shutdown()
        if airflow:
            airflow.stop()
        pg.stop()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_skip_tonight_skips_one_pause(scenario):
    status, _, _, _ = scenario["skipped"]
    assert status == "SUCCEEDED"
    assert scenario["skipped_steps"][-1] == "Skipped" and "SaveConfiguration" not in scenario["skipped_steps"]
    assert scenario["skipped_after"] == ("AVAILABLE", []), "environment untouched, marker consumed"


def test_a_pause_of_an_environment_that_is_not_available_changes_nothing(scenario):
    status, error, seconds, _ = scenario["not_available"]
    assert (status, error) == ("FAILED", "MwaaOps.EnvironmentNotAvailable")
    assert "SaveConfiguration" not in scenario["not_available_steps"]
    assert scenario["not_available_deletes"] == 0


def test_a_failed_export_keeps_the_environment_and_re_enables_its_dags(scenario):
    status, error, _, _ = scenario["export_fails"]
    assert (status, error) == ("FAILED", "MwaaOps.ExportFailed"), scenario["export_fails"]
    steps = scenario["export_fails_steps"]
    assert steps.index("RunExport") < steps.index("EndPausing") < steps.index("ReplayHeldArrivals"), steps
    assert scenario["export_fails_status"] == "AVAILABLE"
    assert scenario["export_fails_paused"] is False


def test_a_failed_deletion_re_enables_the_dags_and_fails_naming_it(scenario):
    status, error, cause, steps = scenario["deletion_fails"]
    assert (status, error) == ("FAILED", "MwaaOps.DeletionFailed"), scenario["deletion_fails"]
    assert "left DELETING for AVAILABLE" in cause, cause
    assert steps.index("DeleteEnvironment") < steps.index("DeletionFailed") < steps.index("ReenableDags") \
        < steps.index("EndPausing") < steps.index("ReplayHeldArrivals"), steps
    assert scenario["deletion_fails_status"] == "AVAILABLE"
    assert scenario["deletion_fails_paused"] is False, "the DAGs the export paused are back on"


def test_a_tampered_export_is_caught_before_anything_is_deleted(scenario):
    status, error, steps = scenario["tampered"]
    assert (status, error) == ("FAILED", "ExportNotVerified"), scenario["tampered"]
    assert "VerifyExport" in steps and "DeleteEnvironment" not in steps and "ReenableDags" in steps
    assert steps.index("ReenableDags") < steps.index("EndPausing") < steps.index("ReplayHeldArrivals"), steps
    assert scenario["tampered_status"] == "AVAILABLE"
    assert scenario["tampered_paused"] is False, "the DAGs the export paused are back on"
    assert scenario["deletes_before_pause"] == 0


def test_the_pause_saves_exports_verifies_then_deletes(scenario):
    status, error, seconds, _ = scenario["pause"]
    assert status == "SUCCEEDED", (error, scenario["worker_log"][-3000:])
    steps = scenario["pause_steps"]
    order = ["ReadEnvironment", "SaveConfiguration", "MarkPausing", "WaitForWarmInstances", "RunExport",
             "VerifyExport", "RecordSnapshot", "DeleteEnvironment", "EmitPaused"]
    assert all(s in steps for s in order), steps
    assert all(steps.index(a) < steps.index(b) for a, b in zip(order, order[1:])), steps
    assert scenario["after_pause"] == "NOT_FOUND"
    snapshot = scenario["snapshot"]
    assert snapshot["environment"] == "dev-analytics" and snapshot["manifest"].startswith(f"s3://{SUITE}/metadata/")
    assert "mwaa_ops_history" in snapshot["active_dags"]


def test_arrivals_while_paused_are_held_once(scenario):
    # Delivered twice, held once; beside it the arrivals held during the pause (see below).
    night = [k for k in scenario["held"] if "/s3__night.csv__" in k]
    assert len(night) == 1 and len(scenario["held"]) == 1 + 5, scenario["held"]


def test_every_arrival_of_a_pause_and_a_resume_ends_as_exactly_one_run(scenario):
    """An arrival at each step: before the mark, a run in the old environment (exported and
    imported with it); from the mark (before and during the export, the verification, before
    and during the deletion, while deleted, before and during the creation, before and during
    the import, before the DAGs are on), held and replayed in the new one; after, a run."""
    arrivals = scenario["arrivals"]
    assert arrivals.pop("in/p0-before-the-mark.csv") == ["started"]
    assert arrivals.pop("in/r6-after-the-resume.csv") == ["started"]
    assert arrivals and all(outcome == ["held"] for outcome in arrivals.values()), arrivals
    assert scenario["source_runs"] == ["in/p0-before-the-mark.csv"], "no run began after the mark"
    keys = ["in/p0-before-the-mark.csv", "in/night.csv", "in/r6-after-the-resume.csv", *arrivals]
    assert sorted(scenario["target_runs"]) == sorted(keys), scenario["target_runs"]
    assert scenario["held_after"] == []
    steps = scenario["resume_steps"]
    assert steps.index("EnableDags") < steps.index("EndPausing") < steps.index("ReplayHeldArrivals"), steps


def test_create_failed_fails_the_resume_at_once_and_keeps_what_it_needs(scenario):
    status, error, seconds, _ = scenario["create_failed"]
    assert (status, error) == ("FAILED", "MwaaOps.CreateFailed")
    assert seconds < 60, "noticed at the first status read, not after a timeout"
    configurations, snapshots = scenario["create_failed_keys"]
    assert f"configurations/{ENV}/latest.json" in configurations
    assert snapshots == [f"snapshots/{ENV}/latest.json"]


def test_what_the_pause_writes_is_sealed_with_the_suite_key(scenario):
    """The saved configuration (save-configuration's binary) and the snapshot record (the
    state machine) are sealed with the suite key, not the AWS managed key aws/s3 a bare
    `aws:kms` header would ask for."""
    assert scenario["sealed_with"] == dict.fromkeys(scenario["sealed_with"], scenario["suite_key"])


def test_a_failed_import_keeps_the_configuration_and_the_export(scenario):
    status, error, _, _ = scenario["import_fails"]
    assert (status, error) == ("FAILED", "MwaaOps.ImportRefused"), scenario["import_fails"]
    steps = scenario["import_fails_steps"]
    assert "RunImport" in steps and "EnableDags" not in steps and "ReplayHeldArrivals" not in steps
    configuration, snapshots, export_objects = scenario["import_fails_kept"]
    assert configuration == [f"configurations/{ENV}/latest.json"] and snapshots
    assert export_objects > 10
    assert scenario["import_fails_variables"] == 0, "a refused import writes nothing"


def test_the_resume_recreates_the_same_configuration(scenario):
    status, error, _, _ = scenario["resume"]
    assert status == "SUCCEEDED", (error, scenario["worker_log"][-3000:])
    before = {k: v for k, v in scenario["before"].items() if k not in SERVER_ASSIGNED}
    after = {k: v for k, v in scenario["after"].items() if k not in SERVER_ASSIGNED}
    assert after == before
    logging_before = scenario["before"]["LoggingConfiguration"]["TaskLogs"]
    logging_after = scenario["after"]["LoggingConfiguration"]["TaskLogs"]
    assert (logging_after["Enabled"], logging_after["LogLevel"]) == (logging_before["Enabled"], logging_before["LogLevel"])


def made_after_the_import(table, row):
    """Rows the new environment made itself: the replayed arrival's run (bed_smoke ran nowhere
    before) and the audit log of REST calls (enable-dags) and CLI commands (user set-up)."""
    return (table != "dag" and row.get("dag_id") == "bed_smoke") or \
        (table == "log" and (row.get("event") or "").startswith(("api.", "cli_")))


def test_the_resume_restores_the_metadata_under_the_new_fernet_key(scenario):
    assert scenario["fernet_changed"]
    assert mb.differences(scenario["source"], scenario["target"], active=scenario["snapshot"]["active_dags"],
                          ignore=made_after_the_import) == {}
    assert scenario["target_dags"]["mwaa_ops_history"] is False


def test_the_arrival_held_overnight_runs_once_after_resume(scenario):
    assert len(scenario["replayed_runs"]) == 1, scenario["replayed_runs"]
    assert scenario["held_after"] == []
    assert scenario["resume_steps"].index("ReplayHeldArrivals") > scenario["resume_steps"].index("RunImport")


def test_resuming_again_changes_nothing(scenario):
    status, error, _, _ = scenario["resume_again"]
    assert status == "SUCCEEDED", error
    assert "NothingToResume" in scenario["resume_again_steps"], scenario["resume_again_steps"]
    assert "RunImport" not in scenario["resume_again_steps"] and "EnableDags" not in scenario["resume_again_steps"]
    assert mb.differences(scenario["target"], scenario["target_again"], active=[],
                          ignore=made_after_the_import) == {}


def test_each_resume_records_the_pause_it_restored(scenario):
    restored, snapshot = scenario["restored"], scenario["snapshot"]
    assert (restored["manifest"], restored["execution"]) == (snapshot["manifest"], scenario["pause"][3])
    assert restored["resume_execution"] == scenario["resume"][3] and restored["environment"] == ENV


def test_a_resume_after_a_skipped_pause_switches_no_dag_back_on(scenario):
    assert scenario["skipped_again"][0] == "SUCCEEDED"
    status, error, _, _ = scenario["after_skip"]
    assert (status, error) == ("SUCCEEDED", None), scenario["after_skip"]
    steps = scenario["after_skip_steps"]
    assert "NothingToResume" in steps and not {"RunImport", "EnableDags", "ReplayHeldArrivals"} & set(steps), steps
    output = scenario["after_skip_output"]
    assert output["resumed"] is False and "restored already" in output["reason"], output
    assert scenario["after_skip_paused"] is True, "the DAG its users paused stays paused"
    assert scenario["after_skip_imports"] == 0


def test_a_pause_stopped_by_hand_leaves_no_arrival_held_for_good(scenario):
    # While the pause ran (marked, waiting), the resume kept its mark and replayed nothing.
    assert scenario["while_pausing"][:2] == ("SUCCEEDED", None), scenario["while_pausing"]
    kept = scenario["while_pausing_output"]
    assert kept["resumed"] is False and kept["pausing"]["mark"] == "kept", kept
    assert kept["pausing"]["execution_status"] == "RUNNING", kept
    assert "ReplayHeldArrivals" not in scenario["while_pausing_steps"], scenario["while_pausing_steps"]
    assert scenario["mark_while_pausing"] == [f"pausing/{ENV}"]
    assert scenario["stopped_arrivals"] == {"in/s1-while-pausing.csv": ["held"],
                                            "in/s2-after-the-stop.csv": ["held"]}
    assert scenario["stopped_pause"] == "ABORTED"
    assert len(scenario["held_after_stop"]) == 2, scenario["held_after_stop"]
    # Once it was stopped, the next resume ended its mark and replayed what it held; it still
    # imported nothing and switched no DAG on, and says all of it in its output.
    assert scenario["after_stop"][:2] == ("SUCCEEDED", None), scenario["after_stop"]
    out = scenario["after_stop_output"]
    assert out["resumed"] is False and "restored already" in out["reason"], out
    assert out["pausing"]["mark"] == "ended" and out["pausing"]["execution_status"] == "ABORTED", out
    assert out["replayed"]["replayed"] == 2, out
    steps = scenario["after_stop_steps"]
    assert "ReplayHeldArrivals" in steps and not {"RunImport", "EnableDags", "RecordRestore"} & set(steps), steps
    assert scenario["after_stop_mark"] == [] and scenario["after_stop_held"] == []
    assert scenario["after_stop_arrival"] == ["started"]
    runs = scenario["after_stop_runs"]
    for key in ("in/s1-while-pausing.csv", "in/s2-after-the-stop.csv", "in/s3-after-the-resume.csv"):
        assert runs.count(key) == 1, (key, runs)
    assert scenario["after_stop_paused"] is True and scenario["after_stop_imports"] == 0


def test_the_suite_announces_pause_and_resume(scenario):
    kinds = [e["detail-type"] for e in scenario["events"]]
    assert kinds.count("Environment Paused") == 1 and kinds.count("Environment Resumed") == 1, kinds
    assert kinds.count("Environment Not Resumed") == 4, kinds
    [ended] = [e["detail"] for e in scenario["events"]
               if e["detail-type"] == "Environment Not Resumed" and e["detail"]["pausing"]["mark"] == "ended"]
    assert ended["pausing"]["execution_status"] == "ABORTED", ended


def test_no_seeded_secret_reaches_any_log(scenario):
    logs = scenario["logs"]
    assert "worker.log" in logs and any("mwaa_ops_export" in name for name in logs), sorted(logs)[:20]
    leaks = [(name, key) for name, text in logs.items() for key, secret in mb.SECRETS.items() if secret in text]
    assert leaks == []


def test_every_injected_fault_was_served(scenario):
    for phase, rules in (("pause", PAUSE_FAULTS), ("create", CREATE_FAULTS), ("resume", RESUME_FAULTS)):
        assert scenario[f"{phase}_faults_left"] == [], phase
        assert served_faults(scenario[f"{phase}_calls"]) == expected_faults(rules), phase


def test_under_faults_the_pause_exports_once_and_deletes_once(scenario):
    assert scenario["pause"][0] == "SUCCEEDED"
    calls = scenario["pause_calls"]
    assert scenario["pause_exports"] == 1, "one export run, though its start's answer was lost"
    starts = [c for c in calls if c.get("path") == "/dags/mwaa_ops_export/dagRuns"]
    # The lost start (504 after Airflow made the run), then the step's own retry with the same
    # run id (409: done). A retry by the state machine would carry a new token: a second run.
    assert [c.get("rest_api_status") for c in starts] == [504, 409], starts
    assert sum(did_work(c) for c in calls if c["operation"] == "DeleteEnvironment") == 1
    assert sum(c["operation"] == "CreateEnvironment" for c in calls) == 0


def test_under_faults_the_resume_creates_once_and_imports_once(scenario):
    creates = [c for c in scenario["create_calls"] if c["operation"] == "CreateEnvironment"]
    assert sum(did_work(c) for c in creates) == 1, creates
    assert scenario["resume"][0] == "SUCCEEDED"
    assert scenario["resume_imports"] == 1, "one import run, though its start's answer was lost"
    calls = scenario["resume_calls"]
    assert sum(c["operation"] in ("CreateEnvironment", "DeleteEnvironment") for c in calls) == 0
