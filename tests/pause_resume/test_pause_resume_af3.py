"""Pause and resume, end to end, on Airflow 3.0.6: the production state machines
(infra/statemachines) in moto's Step Functions, their Lambda tasks served by the real Rust
handlers (step-worker), the local MWAA control plane, and a real Airflow 3.0.6 on PostgreSQL
running the export and import DAGs. On 3.x the DAGs reach their settings through MWAA
InvokeRestApi (forwarded by the control plane: the tasks find it through AWS_ENDPOINT_URL_MWAA)
and the task SDK; variables, connections, pools and paused state carry over, run history does
not (infra/dags/README.md, "Airflow 3").

One scenario per module (one Airflow at a time on this machine), in this order:
  1. settings: a pool, default_pool's size, variables (one sensitive), connections (a password,
     a sensitive key in extra), a DAG switched on, a DAG switched off, a DAG whose id is too long
     for an InvokeRestApi path switched on
  2. pause         -> configuration saved, export verified, environment DELETED
  3. MWAA's part: the environment's Airflow is gone; a new one, empty, with another Fernet key
  4. resume        -> same configuration, settings imported, DAGs as they were
  5. resume again  -> succeeds, changes nothing: that snapshot was restored already
Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import gzip
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
VERSION = "3.0.6"
ENV = "prod-af3"
ON, OFF = "mwaa_ops_af3_on", "mwaa_ops_af3_off"
LONG = "mwaa_ops_af3_long_id_past_the_invoke_rest_api_path_limit_of_64"  # /dags/<it> > 64
ROUTES = [{"name": "landing", "bucket": LANDING, "prefix": "in/", "environment": ENV, "dag": ON}]


def start_airflow(pg, folder, workdir, cycle):
    airflow = ab.Airflow(VERSION, pg, folder, workdir)
    info = airflow.start()
    cycle.admin("airflows", [info])  # InvokeRestApi on ENV now reaches this Airflow
    for dag in ("mwaa_ops_export", "mwaa_ops_import", ON, OFF, LONG):
        airflow.wait_for_dag(dag)
    return airflow, info


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


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pause-resume-af3")
    moto, pg, airflow, plane, cycle = Moto(tmp), ab.Postgres(), None, None, None
    saved = dict(os.environ)
    out = {}
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
        folder = ab.dags_folder(tmp / "dags", (ab.SUITE_DAGS, ROOT / "tests" / "metadata" / "dags3"))
        airflow, source = start_airflow(pg, folder, tmp / "source", cycle)

        # 1. the environment and its settings
        cycle.create_environment(VERSION)
        out["before"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]
        mb.seed_af3(source, on=ON, off=OFF, long=LONG)
        out["source"] = mb.settings_af3(source, VERSION)

        # 2. pause
        out["pause"] = cycle.run("pause")
        out["pause_output"], out["pause_steps"] = execution(cycle, out["pause"][3])
        out["after_pause"] = cycle.status()
        out["snapshot"] = json.loads(cycle.s3.get_object(Bucket=SUITE, Key=f"snapshots/{ENV}/latest.json")["Body"].read())
        out["objects"] = suite_objects(cycle)
        out["source_after_pause"] = mb.settings_af3(source, VERSION)

        # 3. the environment is gone, and its Airflow with it: a new, empty one takes its place
        airflow.stop()
        airflow, target = start_airflow(pg, folder, tmp / "target", cycle)
        out["fernet_changed"] = target["fernet_key"] != source["fernet_key"]
        out["fresh"] = mb.settings_af3(target, VERSION)

        # 4. resume
        out["resume"] = cycle.run("resume")
        out["resume_output"], out["resume_steps"] = execution(cycle, out["resume"][3])
        out["after"] = cycle.mwaa.get_environment(Name=ENV)["Environment"]
        out["target"] = mb.settings_af3(target, VERSION)

        # 5. resume again
        out["resume_again"] = cycle.run("resume")
        out["resume_again_output"], _ = execution(cycle, out["resume_again"][3])
        out["target_again"] = mb.settings_af3(target, VERSION)

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
    assert ENV in text and '"3.0.6"' in text, text[:500]
    assert "core.default_task_retries" in text and "subnet-0b2" in text


def test_the_export_is_an_api_export_and_was_verified(scenario):
    output = scenario["pause_output"]
    export, snapshot = output["export"], scenario["snapshot"]
    assert export["source"] == "api" and export["airflow_version"] == VERSION
    assert snapshot["manifest"] == export["manifest"] and snapshot["manifest"].startswith(f"s3://{SUITE}/metadata/")
    assert sorted(snapshot["active_dags"]) == sorted([ON, LONG]), "the DAGs on before the export paused them"
    manifest = json.loads(scenario["objects"][export["manifest_key"]])
    assert [e["table"] for e in manifest["tables"]] == ["slot_pool", "variable", "connection", "dag"]
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
    assert after["AirflowVersion"] == VERSION and scenario["after"]["Status"] == "AVAILABLE"
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
    assert enabled["enabled"] == [ON] and enabled["missing"] == [], enabled
    # too long for /dags/{id}: enable-dags says so; the import switched it on by pattern
    assert [d["dag"] for d in enabled["not_addressable"]] == [LONG], enabled


def test_the_dags_reached_airflow_3_through_invoke_rest_api(scenario):
    calls = [c for c in scenario["calls"] if c.get("operation") == "InvokeRestApi"]
    assert calls and {c.get("airflow") for c in calls} == {VERSION}
    paths = {(c.get("method"), c.get("path")) for c in calls}
    assert {("PATCH", "/pools"), ("PATCH", "/variables"), ("PATCH", "/connections")} <= paths  # the import
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
