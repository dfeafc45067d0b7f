"""Pause and resume, end to end, on Airflow 3.0.6 and 3.2.1: the production state machines
(infra/statemachines) in moto's Step Functions, their Lambda tasks served by the real Rust
handlers (step-worker), the local MWAA control plane, and a real Airflow 3 on PostgreSQL
running the export and import DAGs. On 3.x the DAGs reach their settings through MWAA
InvokeRestApi (forwarded by the control plane: the tasks find it through AWS_ENDPOINT_URL_MWAA)
and the task SDK; variables, connections, pools and paused state carry over, run history does
not (infra/dags/README.md, "Airflow 3").

One scenario per Airflow 3 version (one Airflow at a time on this machine), in this order:
  1. settings: a pool, default_pool's size, variables (one sensitive), connections (a password,
     a sensitive key in extra), a DAG switched on, a DAG switched off, a DAG whose id is too long
     for an InvokeRestApi path switched on
  2. pause         -> configuration saved, export verified, environment DELETED
  3. MWAA's part: the environment's Airflow is gone; a new one, empty, with another Fernet key
  4. resume        -> same configuration, settings imported, DAGs as they were
  (2 and 4 with an arrival injected at each of their steps, as on Airflow 2: each one run)
  5. resume again  -> succeeds, changes nothing: that snapshot was restored already
Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import gzip
import json
import os
import time
from datetime import datetime, timedelta
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
# Every Airflow 3 the per-commit bed runs (3.0.6, 3.2.1): the whole scenario once per version.
VERSIONS = [v for v in ab.per_commit_versions() if v.startswith("3.")]
ENV = "prod-af3"
ON, OFF = "mwaa_ops_af3_on", "mwaa_ops_af3_off"
LONG = "mwaa_ops_af3_long_id_past_the_invoke_rest_api_path_limit_of_64"  # /dags/<it> > 64
HOURLY = "mwaa_ops_af3_hourly"  # catchup from 30 days back: must not start over after the resume
DONE_BEFORE_PAUSE = 3  # scheduled runs the source finishes before the pause
ROUTES = [{"name": "landing", "bucket": LANDING, "prefix": "in/", "environment": ENV, "dag": ON}]


def start_airflow(version, pg, folder, workdir, cycle):
    airflow = ab.Airflow(version, pg, folder, workdir, execution_key=cycle.execution_key())
    info = airflow.start()
    cycle.admin("airflows", [info])  # InvokeRestApi on ENV now reaches this Airflow
    for dag in ("mwaa_ops_export", "mwaa_ops_import", ON, OFF, LONG, HOURLY):
        airflow.wait_for_dag(dag)
    return airflow, info


def hourly_runs(info, newest_first=False):
    """HOURLY's first (or last) 100 runs: [{dag_run_id, run_type, state, logical_date}]."""
    order = "-logical_date" if newest_first else "logical_date"
    runs = mb.call(info, "GET", f"/dags/{HOURLY}/dagRuns?limit=100&order_by={order}")["dag_runs"]
    return [{k: r[k] for k in ("dag_run_id", "run_type", "state", "logical_date")} for r in runs]


def wait_scheduled_runs(info, count, timeout=120):
    """HOURLY's runs once `count` scheduled ones have finished (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = hourly_runs(info)
        done = [r for r in runs if r["run_type"] == "scheduled" and r["state"] == "success"]
        if len(done) >= count or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def pause_stops(exports, before):
    """Where the pause gets an arrival: before the mark, before and during the export, during
    the verification, before and during the deletion (as in test_pause_resume.py)."""
    return [
        ("save-configuration", "in/p0-before-the-mark.csv"),
        ("run-dag", "in/p1-before-the-export.csv"),
        (lambda: exports() > before, "in/p2-during-the-export.csv"),
        ("verify-export", "in/p3-during-verification.csv"),
        ("delete-environment", "in/p4-before-the-deletion.csv"),
        ("environment-status", "in/p5-during-the-deletion.csv"),  # ReadDeletion: DELETING
    ]


def resume_stops(imports, before):
    """Where the resume gets one: before and during the creation, before and during the
    import, before the DAGs are on."""
    return [
        ("create-environment", "in/r1-before-the-creation.csv"),
        ("environment-status", "in/r2-during-the-creation.csv"),  # ReadEnvironment: CREATING
        ("run-dag", "in/r3-before-the-import.csv"),
        (lambda: imports() > before, "in/r4-during-the-import.csv"),
        ("enable-dags", "in/r5-before-the-dags-are-on.csv"),
    ]


def arrival_runs(info):
    """The keys of ON's runs started by arrivals (its conf names the key), one per run."""
    runs = mb.call(info, "GET", f"/dags/{ON}/dagRuns?limit=100")["dag_runs"]
    return sorted((r.get("conf") or {}).get("key") for r in runs if (r.get("conf") or {}).get("key"))


def execution(cycle, arn):
    """An execution's output (the state machine's whole state at its end) and entered states."""
    out = cycle.sfn.describe_execution(executionArn=arn)
    return json.loads(out.get("output") or "null"), cycle.steps(arn)


def suite_objects(cycle):
    """Every object in the suite bucket, gunzipped: {key: bytes}."""
    out = {}
    for key in cycle.keys(""):
        body = cycle.s3.get_object(Bucket=SUITE, Key=key)["Body"].read()
        out[key] = gzip.decompress(body) if key.endswith(".gz") else body
    return out


@pytest.fixture(scope="module", params=VERSIONS)
def scenario(request, tmp_path_factory):
    version = request.param
    tmp = tmp_path_factory.mktemp(f"pause-resume-af3-{version}")
    moto, pg, airflow, plane, cycle = Moto(tmp), ab.Postgres(), None, None, None
    saved = dict(os.environ)
    out = {"version": version}
    t_start = time.monotonic()
    try:
        moto.start()
        shared.execute_state_machines(moto.url)
        # The plane first: the Airflow tasks (inheriting this environment) call InvokeRestApi on it.
        plane = mwaa_local.serve(moto_url=moto.url, airflows=[], region=REGION, account=shared.ACCOUNT)
        os.environ.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ENDPOINT_URL_MWAA": plane.url,
                           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION},
                          PYTHONPATH=str(ab.boto_shim(tmp)))
        cycle = shared.Cycle(moto.url, plane.url, tmp, ENV)
        cycle.deploy(ROUTES)
        pg.start(tmp / "pg")
        folder = ab.dags_folder(tmp / "dags", (ab.SUITE_DAGS, ROOT / "tests" / "metadata" / "dags3",
                                                HERE / "dags3"))
        airflow, source = start_airflow(version, pg, folder, tmp / "source", cycle)

        # 1. the environment and its settings
        cycle.create_environment(version)
        out["before"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]
        mb.seed_af3(source, on=ON, off=OFF, long=LONG)
        out["source"] = mb.settings_af3(source, version)
        mb.call(source, "PATCH", f"/dags/{HOURLY}", {"is_paused": False})
        wait_scheduled_runs(source, DONE_BEFORE_PAUSE)

        # 2. pause, with an arrival at each of its steps (PAUSE_STOPS)
        exports = lambda: mb.call(source, "GET", "/dags/mwaa_ops_export/dagRuns")["total_entries"]  # noqa: E731
        exports_before = exports()
        out["pause"], out["arrivals"] = cycle.arrivals_along("pause", pause_stops(exports, exports_before))
        out["pause_output"], out["pause_steps"] = execution(cycle, out["pause"][3])
        out["after_pause"] = cycle.status()
        out["snapshot"] = json.loads(cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/latest.json")["Body"].read())
        out["objects"] = suite_objects(cycle)
        out["source_after_pause"] = mb.settings_af3(source, version)
        out["source_runs"] = hourly_runs(source, newest_first=True)
        out["source_arrival_runs"] = arrival_runs(source)

        # 3. the environment is gone, and its Airflow with it: a new, empty one takes its place
        airflow.stop()
        airflow, target = start_airflow(version, pg, folder, tmp / "target", cycle)
        out["fernet_changed"] = target["fernet_key"] != source["fernet_key"]
        out["fresh"] = mb.settings_af3(target, version)

        # 4. resume, with an arrival at each of its steps (RESUME_STOPS), and one after it
        imports = lambda: mb.call(target, "GET", "/dags/mwaa_ops_import/dagRuns")["total_entries"]  # noqa: E731
        imports_before = imports()
        out["resume"], outcomes = cycle.arrivals_along("resume", resume_stops(imports, imports_before))
        out["arrivals"].update(outcomes)
        out["arrivals"]["in/r6-after-the-resume.csv"] = cycle.arrive("in/r6-after-the-resume.csv")
        out["held_after"] = cycle.keys(f"held/{ENV}/")
        out["target_arrival_runs"] = arrival_runs(target)
        out["resume_output"], out["resume_steps"] = execution(cycle, out["resume"][3])
        out["after"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]
        out["target"] = mb.settings_af3(target, version)
        # switched on again by the resume: let the scheduler create what it means to run next
        out["target_runs"] = wait_scheduled_runs(target, 1)

        # 5. resume again
        out["resume_again"] = cycle.run("resume")
        out["resume_again_output"], _ = execution(cycle, out["resume_again"][3])
        out["target_again"] = mb.settings_af3(target, version)

        out["calls"] = cycle.admin("calls")
        out["events"] = cycle.suite_events()
        out["worker_log"] = (tmp / "worker.log").read_text(errors="replace")
        out["logs"] = shared.logs(tmp)
        out["seconds"] = time.monotonic() - t_start
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


def test_every_arrival_of_a_pause_and_a_resume_ends_as_exactly_one_run(scenario):
    """As on Airflow 2: before the mark, a run in the old environment; from the mark until the
    resume ends it, held and replayed once in the new one; after, a run. (Run history does not
    move on Airflow 3, so the first run stays in the old environment's history.)"""
    arrivals = dict(scenario["arrivals"])
    assert arrivals.pop("in/p0-before-the-mark.csv") == ["started"]
    assert arrivals.pop("in/r6-after-the-resume.csv") == ["started"]
    assert len(arrivals) == 10 and all(o == ["held"] for o in arrivals.values()), arrivals
    assert scenario["source_arrival_runs"] == ["in/p0-before-the-mark.csv"], "no run began after the mark"
    assert scenario["target_arrival_runs"] == sorted([*arrivals, "in/r6-after-the-resume.csv"])
    assert scenario["held_after"] == []
    steps = scenario["resume_steps"]
    assert steps.index("EnableDags") < steps.index("EndPausing") < steps.index("ReplayHeldArrivals"), steps


def test_the_seeded_settings_are_in_the_source(scenario):
    """The premise: what the test expects to carry over is there, secrets included."""
    source = scenario["source"]
    assert source["variable"]["secret_var"]["val"] == mb.SECRETS["var_secret"]
    assert source["connection"]["warehouse"]["password"] == mb.SECRETS["conn_password"]
    assert source["slot_pool"]["default_pool"]["slots"] == 77 and "history_pool" in source["slot_pool"]
    assert (source["dag"][ON], source["dag"][OFF], source["dag"][LONG]) == (False, True, False)


def test_the_pause_saves_exports_verifies_then_deletes(scenario):
    status, error, seconds, _ = scenario["pause"]
    assert status == "SUCCEEDED", (error, scenario["worker_log"][-3000:])
    steps = scenario["pause_steps"]
    order = ["ReadEnvironment", "SaveConfiguration", "RunExport", "VerifyExport", "RecordSnapshot",
             "DeleteEnvironment", "EmitPaused"]
    assert all(s in steps for s in order), steps
    assert all(steps.index(a) < steps.index(b) for a, b in zip(order, order[1:])), steps
    assert "ReenableDags" not in steps
    assert scenario["after_pause"] == "NOT_FOUND"


def test_the_pause_saved_the_configuration(scenario):
    saved = json.loads(scenario["objects"][f"configurations/{ENV}/latest.json"])
    text = json.dumps(saved)
    assert ENV in text and f'"{scenario["version"]}"' in text, text[:500]
    assert "core.default_task_retries" in text and "subnet-0b2" in text


def test_the_export_is_an_api_export_and_was_verified(scenario):
    output = scenario["pause_output"]
    export, snapshot = output["export"], scenario["snapshot"]
    assert export["source"] == "api" and export["airflow_version"] == scenario["version"]
    assert snapshot["manifest"] == export["manifest"] and snapshot["manifest"].startswith(f"s3://{SUITE}/metadata/")
    assert sorted(snapshot["active_dags"]) == sorted([ON, LONG, HOURLY]), "the DAGs on before the export paused them"
    manifest = json.loads(scenario["objects"][export["manifest_key"]])
    assert [e["table"] for e in manifest["tables"]] == ["slot_pool", "variable", "connection", "dag_run", "dag"]
    verified = output["verified"]["result"]
    assert verified["verified"] is True and verified["manifest"] == export["manifest"], verified
    # the export paused every DAG of the environment (it is about to be deleted)
    after = scenario["source_after_pause"]["dag"]
    assert (after[ON], after[OFF], after[LONG]) == (True, True, True)


def test_no_seeded_secret_in_plain_text_in_any_exported_object(scenario):
    objects = scenario["objects"]
    assert any(k.endswith("/connection/connection.jsonl.gz") for k in objects), sorted(objects)
    leaks = [(key, name) for key, data in objects.items() for name, secret in mb.SECRETS.items()
             if secret.encode() in data]
    assert leaks == []
    masked = [key for key, data in objects.items() if key.startswith("metadata/") and b"***" in data]
    assert masked == [], "a value masked by the REST API was exported instead of the real one"


def test_the_resume_recreates_the_same_configuration(scenario):
    status, error, _, _ = scenario["resume"]
    assert status == "SUCCEEDED", (error, scenario["worker_log"][-3000:])
    before = {k: v for k, v in scenario["before"].items() if k not in SERVER_ASSIGNED}
    after = {k: v for k, v in scenario["after"].items() if k not in SERVER_ASSIGNED}
    assert after == before
    assert after["AirflowVersion"] == scenario["version"] and scenario["after"]["Status"] == "AVAILABLE"
    steps = scenario["resume_steps"]
    order = ["CreateEnvironment", "ReadEnvironment", "RunImport", "EnableDags", "ReplayHeldArrivals", "EmitResumed"]
    assert all(steps.index(a) < steps.index(b) for a, b in zip(order, order[1:])), steps


def test_the_resume_imports_the_settings_under_the_new_fernet_key(scenario):
    assert scenario["fernet_changed"]
    fresh = scenario["fresh"]
    assert fresh["variable"] == {} and "warehouse" not in fresh["connection"]  # nothing to find by chance
    assert fresh["slot_pool"]["default_pool"]["slots"] == 128
    source, target = mb.user_settings_af3(scenario["source"]), mb.user_settings_af3(scenario["target"])
    assert target["variable"] == source["variable"]
    assert target["connection"] == source["connection"]
    assert target["slot_pool"] == source["slot_pool"]
    # read with the target's own key: a value left under the old key would not decrypt
    assert target["connection"]["warehouse"]["password"] == mb.SECRETS["conn_password"]
    assert json.loads(target["connection"]["warehouse"]["extra"])["token"] == mb.SECRETS["conn_extra_token"]
    assert target["variable"]["secret_var"]["val"] == mb.SECRETS["var_secret"]


def test_the_resume_restores_each_dags_paused_state(scenario):
    fresh, dags = scenario["fresh"]["dag"], scenario["target"]["dag"]
    assert (fresh[ON], fresh[OFF]) == (True, False), "the new environment's own defaults differ"
    assert (dags[ON], dags[OFF], dags[LONG]) == (False, True, False)
    output = scenario["resume_output"]
    assert output["import"]["already_imported"] is False and output["import"]["dags_missing"] == []
    enabled = output["enabled"]["result"]
    assert sorted(enabled["enabled"]) == sorted([ON, HOURLY]) and enabled["missing"] == [], enabled
    # too long for /dags/{id}: enable-dags says so; the import switched it on by pattern
    assert [d["dag"] for d in enabled["not_addressable"]] == [LONG], enabled


def test_a_catchup_dag_goes_on_from_where_it_stood_before_the_pause(scenario):
    """Hourly, catchup, start date 30 days back: after the resume not one interval before the
    pause runs again; the first scheduled run is the interval right after the last one done."""
    done = [r for r in scenario["source_runs"] if r["run_type"] == "scheduled" and r["state"] in ("success", "failed")]
    assert len(done) >= DONE_BEFORE_PAUSE, scenario["source_runs"]
    last = max(r["logical_date"] for r in done)
    runs = scenario["target_runs"]
    carried = [r for r in runs if r["run_type"] == "backfill"]
    assert [r["logical_date"] for r in carried] == [last], runs
    assert carried[0]["state"] == "failed", "the carried run ended without running a task"
    scheduled = [r for r in runs if r["run_type"] == "scheduled"]
    assert scheduled, f"the scheduler ran nothing after the resume: {runs}"
    repeated = [r for r in runs if r["run_type"] != "backfill" and ab_time(r["logical_date"]) <= ab_time(last)]
    assert repeated == [], f"{len(repeated)} runs of intervals done before the pause"
    first = min(ab_time(r["logical_date"]) for r in scheduled)
    assert first == ab_time(last) + timedelta(hours=1), (first, last)
    schedules = scenario["resume_output"]["import"]["schedules"]
    assert schedules["created"] == [HOURLY] and schedules["refused"] == {}, schedules


def ab_time(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_dags_reached_airflow_3_through_invoke_rest_api(scenario):
    calls = [c for c in scenario["calls"] if c.get("operation") == "InvokeRestApi"]
    assert calls and {c.get("airflow") for c in calls} == {scenario["version"]}
    paths = {(c.get("method"), c.get("path")) for c in calls}
    assert {("PATCH", "/pools"), ("PATCH", "/variables"), ("PATCH", "/connections"),
            ("POST", "/backfills")} <= paths  # the import
    assert ("POST", "/dags/mwaa_ops_export/dagRuns") in paths and ("POST", "/dags/mwaa_ops_import/dagRuns") in paths


def test_resuming_again_changes_nothing(scenario):
    status, error, _, _ = scenario["resume_again"]
    assert status == "SUCCEEDED", error
    output = scenario["resume_again_output"]
    assert output["resumed"] is False and "restored already" in output["reason"], output
    assert scenario["target_again"] == scenario["target"]


def test_the_suite_announces_pause_and_resume(scenario):
    kinds = [e["detail-type"] for e in scenario["events"]]
    assert kinds.count("Environment Paused") == 1 and kinds.count("Environment Resumed") == 1, kinds
    assert kinds.count("Environment Not Resumed") == 1, kinds


def test_no_seeded_secret_reaches_any_log(scenario):
    logs = scenario["logs"]
    assert "worker.log" in logs and any("mwaa_ops_export" in name for name in logs), sorted(logs)[:20]
    leaks = [(name, key) for name, text in logs.items() for key, secret in mb.SECRETS.items() if secret in text]
    assert leaks == []


def test_the_cycle_fits_in_its_budget(scenario):
    assert scenario["seconds"] < 300, scenario["seconds"]
