"""Metadata round trip on real Airflow 3.0.6 / PostgreSQL: the REST API path. moto for S3, KMS
and Step Functions; the local MWAA control plane forwards the DAGs' InvokeRestApi calls to the
Airflow in place (the tasks find it through AWS_ENDPOINT_URL_MWAA, as a bed stand-in for MWAA).

One scenario per module: settings in a source environment -> a failing export -> the export ->
source stopped -> a fresh environment with another Fernet key -> refused imports -> import ->
import again. Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import copy
import gzip
import hashlib
import json
import os
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import iam_execution
import metadata_bed as mb
import mwaa_local
from metadata_bed import ab
from moto_bed import Moto

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1", reason="MWAA_OPS_SKIP_AIRFLOW=1")
# 3.0.6 per commit (3.2.1's settings round trip runs in tests/pause_resume per commit);
# scripts/metadata-matrix runs this module on every 3.x MWAA offers.
VERSION = os.environ.get("MWAA_OPS_AIRFLOW_VERSION") or "3.0.6"
BUCKET, ENV, REGION = "mwaa-ops-exports", "env-af3", "us-east-1"
OWN = ("mwaa_ops_export", "mwaa_ops_import")
LONG = "mwaa_ops_af3_long_id_past_the_invoke_rest_api_path_limit_of_64"  # /dags/<it> > 64
TEST_DAGS = ("mwaa_ops_af3_on", "mwaa_ops_af3_off", LONG)


def settings(info):
    return mb.settings_af3(info)


def seed(info):
    mb.seed_af3(info, on="mwaa_ops_af3_on", off="mwaa_ops_af3_off", long=LONG)


def run_dag(info, dag_id, conf, sfn, sqs):
    """Trigger a run with a task token (none when sfn is None: conf may bring a made-up one);
    (run state, execution). 3.x needs logical_date."""
    execution, token = mb.state_machine(sfn, sqs) if sfn else (None, conf.get("task_token"))
    run_id = f"{dag_id}-{time.time_ns()}"
    mb.call(info, "POST", f"/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf, task_token=token)})
    state = mb.wait_runs(info, dag_id, [run_id], timeout=180)[run_id]
    execution = mb.wait_execution(sfn, execution) if sfn else {}
    if state == "failed":  # moto keeps no cause: read the task's own
        task = dag_id.split("_")[-1]
        answer = mb.call(info, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/error")
        execution["cause"] = answer["value"]
    return state, execution


def start_airflow(pg, folder, workdir, plane_url, execution_key):
    af = ab.Airflow(VERSION, pg, folder, workdir, execution_key=execution_key)
    info = af.start()
    admin(plane_url, "airflows", [info])  # InvokeRestApi on ENV now reaches this Airflow
    for dag in OWN + TEST_DAGS:
        af.wait_for_dag(dag)
    return af, info


def admin(url, what, body):
    request = urllib.request.Request(f"{url}/_bed/{what}", method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read() or b"null")


def create_environment(mwaa):
    mwaa.create_environment(
        Name=ENV, AirflowVersion=VERSION, ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa-exec",
        SourceBucketArn="arn:aws:s3:::mwaa-ops-dags", DagS3Path="dags",
        NetworkConfiguration={"SubnetIds": ["subnet-0a1", "subnet-0b2"], "SecurityGroupIds": ["sg-0c3"]})
    deadline = time.monotonic() + 30
    while mwaa.get_environment(Name=ENV)["Environment"]["Status"] != "AVAILABLE":
        assert time.monotonic() < deadline, "the local MWAA environment never became AVAILABLE"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metadata-af3")
    moto, pg, af, plane = Moto(tmp), ab.Postgres(), None, None
    saved = dict(os.environ)
    try:
        moto.start()
        plane = mwaa_local.serve(moto_url=moto.url, airflows=[], region=REGION)
        # Inherited by every Airflow process, so by the tasks: S3/KMS/SFN in moto, MWAA in the plane.
        os.environ.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ENDPOINT_URL_MWAA": plane.url,
                           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": REGION}, PYTHONPATH=str(ab.boto_shim(tmp)))
        kw = dict(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        s3, kms, sfn, sqs = (boto3.client(s, endpoint_url=moto.url, **kw) for s in ("s3", "kms", "stepfunctions", "sqs"))
        mwaa = boto3.client("mwaa", endpoint_url=plane.url, config=Config(inject_host_prefix=False), **kw)
        key = kms.create_key()["KeyMetadata"]
        kms_key = key["KeyId"]
        mb.versioned_bucket(s3, BUCKET, key["Arn"])
        # Both Airflows are ENV's: their tasks act as its execution role (README's policy).
        execution_key = iam_execution.register_with(moto.url, ENV, BUCKET, key["Arn"], REGION)
        create_environment(mwaa)
        out = {"s3": s3, "plane": plane}
        pg.start(tmp / "pg")
        folder = ab.dags_folder(tmp / "dags", (ab.SUITE_DAGS, HERE / "dags3"))

        # -- source: settings, a failing export, the export
        t0 = time.monotonic()
        af, src = start_airflow(pg, folder, tmp / "source", plane.url, execution_key)
        out["start_seconds"] = time.monotonic() - t0
        seed(src)
        out["source"] = settings(src)
        conf = {"bucket": BUCKET, "environment": ENV, "kms_key_id": kms_key, "poll_seconds": 1}
        out["bad_export"] = run_dag(src, "mwaa_ops_export", dict(conf, kms_key_id="alias/no-such-key"), sfn, sqs)
        out["after_bad_export"] = settings(src)["dag"]
        t0 = time.monotonic()
        out["export"] = run_dag(src, "mwaa_ops_export", conf, sfn, sqs)
        out["export_seconds"] = time.monotonic() - t0
        out["after_export"] = settings(src)["dag"]
        af.stop()

        # -- target: refusals (nothing written), the import, the import again
        recorded = mb.snapshot_conf(json.loads(out["export"][1]["output"]), ENV)
        out["manifest_uri"], out["recorded"] = recorded["manifest"], recorded
        af, dst = start_airflow(pg, folder, tmp / "target", plane.url, execution_key)
        out["fernet_changed"] = dst["fernet_key"] != src["fernet_key"]
        out["fresh"] = settings(dst)
        bad = dict(bad_manifests(s3, recorded), **mb.binding_cases(s3, kms, recorded))
        out["refused"] = {"tampered": run_dag(dst, "mwaa_ops_import", bad.pop("tampered"), sfn, sqs),
                          "forged": run_dag(dst, "mwaa_ops_import",
                                            dict(bad["made_up"], task_token="AQCEAAAAKgAAAA-made-up"), None, None)}
        # The other refusals straight through the import code, as the task runs it (a DAG run each
        # would cost ~10 s): same Airflow settings, same AWS endpoints, a live task token.
        _, token = mb.state_machine(sfn, sqs)
        env = dict(af.env, PYTHONPATH=os.pathsep.join([str(folder), os.environ["PYTHONPATH"]]),
                   MWAA_OPS_TRY_CONF=json.dumps({"task_token": token}))
        bad["no_token"] = dict(recorded, task_token=None)
        out["refused"].update(mb.airflow_python(VERSION, HERE / "try_import.py",
                                                *(json.dumps(dict(c, case=k)) for k, c in bad.items()), env=env))
        out["before_import"] = settings(dst)
        t0 = time.monotonic()
        out["import"] = run_dag(dst, "mwaa_ops_import", recorded, sfn, sqs)
        out["import_seconds"] = time.monotonic() - t0
        out["after_import"] = settings(dst)
        out["reimport"] = run_dag(dst, "mwaa_ops_import", recorded, sfn, sqs)
        out["after_reimport"] = settings(dst)
        out["calls"] = list(plane.plane.calls)
        yield out
    finally:
        if af:
            af.stop()
        pg.stop()
        if plane:
            plane.shutdown()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def swap_between_rows(text: bytes) -> bytes:
    """The variable object with the sealed values of plain_var and secret_var swapped."""
    rows = [json.loads(x) for x in text.splitlines()]
    by_key = {r["key"]: r for r in rows}
    by_key["plain_var"]["val"], by_key["secret_var"]["val"] = by_key["secret_var"]["val"], by_key["plain_var"]["val"]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def bad_manifests(s3, recorded):
    """Broken copies of a good export, written next to it: {case: conf naming exactly it}."""
    uri = recorded["manifest"]
    bucket, key = uri[5:].split("/", 1)
    good = mb.read_manifest(s3, recorded)
    cases = {"rows_swapped": mb.rewritten(s3, recorded, good, "variable", swap_between_rows)}
    tampered = copy.deepcopy(good)  # the manifest lies about an object
    next(e for e in tampered["tables"] if e["table"] == "variable")["sha256"] = "0" * 64
    cases["tampered"] = tampered
    damaged = copy.deepcopy(good)  # an object changed after the export (sealed values still valid)
    entry = next(e for e in damaged["tables"] if e["table"] == "connection")
    rows = gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()).splitlines()
    entry["key"] += ".damaged"
    s3.put_object(Bucket=bucket, Key=entry["key"], Body=gzip.compress(b"\n".join(rows[:-1]) + b"\n"))
    cases["object"] = damaged
    missing = copy.deepcopy(good)
    next(e for e in missing["tables"] if e["table"] == "slot_pool")["key"] += ".gone"
    cases["missing"] = missing
    cases["version"] = dict(copy.deepcopy(good), airflow_version="3.0.2")
    cases["database_export"] = {k: v for k, v in copy.deepcopy(good).items() if k != "source"}
    swapped = copy.deepcopy(good)  # sealed values moved between columns: the AAD catches it
    entry = next(e for e in swapped["tables"] if e["table"] == "variable")
    lines = [json.loads(x) for x in gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()).splitlines()]
    conn_entry = next(e for e in swapped["tables"] if e["table"] == "connection")
    conns = [json.loads(x) for x in gzip.decompress(s3.get_object(Bucket=bucket, Key=conn_entry["key"])["Body"].read()).splitlines()]
    sealed_password = next(c["password"] for c in conns if c["password"])
    lines = [dict(v, val=sealed_password) if v["key"] == "plain_var" else v for v in lines]
    body = gzip.compress(b"".join(json.dumps(v).encode() + b"\n" for v in lines))
    entry.update(key=entry["key"] + ".swapped", sha256=hashlib.sha256(body).hexdigest())
    s3.put_object(Bucket=bucket, Key=entry["key"], Body=body)
    cases["swapped"] = swapped
    return {case: mb.put_manifest(s3, recorded, content, case) for case, content in cases.items()}


def objects(s3, uri):
    bucket, key = uri[5:].split("/", 1)
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=key.rsplit("/", 1)[0] + "/")["Contents"]:
        yield obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()


user_settings = mb.user_settings_af3


# ---------------------------------------------------------------- export

def test_failed_export_reenables_dags_and_fails_the_task_token(scenario):
    state, execution = scenario["bad_export"]
    assert state == "failed"
    assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ExportFailed"
    assert "no-such-key" in execution["cause"] or "KMS" in execution["cause"], execution["cause"]
    # paused by the export through REST, re-enabled by its failure task through REST
    assert scenario["after_bad_export"]["mwaa_ops_af3_on"] is False
    assert scenario["after_bad_export"]["mwaa_ops_af3_off"] is True
    assert scenario["after_bad_export"][LONG] is False


def test_export_sends_manifest_to_step_functions(scenario):
    state, execution = scenario["export"]
    assert state == "success" and execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["active_dags"] == [LONG, "mwaa_ops_af3_on"]
    assert output["airflow_version"] == VERSION and output["alembic_revision"] is None
    s3, uri = scenario["s3"], scenario["manifest_uri"]
    bucket, key = uri[5:].split("/", 1)
    assert key == output["manifest_key"] and f"/{ENV}/dt=" in key
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=output["manifest_version_id"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == output["manifest_sha256"]
    manifest = json.loads(body)
    assert manifest["source"] == "api" and manifest["format"] == "mwaa-ops-metadata/1"
    assert manifest["alembic_revision"] is None and manifest["alembic_revision_note"]
    assert [e["table"] for e in manifest["tables"]] == ["slot_pool", "variable", "connection", "dag_run", "dag"]
    source = scenario["source"]
    expected_rows = {"slot_pool": len(source["slot_pool"]), "variable": len(source["variable"]),
                     "connection": len(source["connection"]), "dag_run": 0,  # no scheduled DAG here
                     "dag": len([d for d in source["dag"]])}
    for entry in manifest["tables"]:
        data = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        head = s3.head_object(Bucket=bucket, Key=entry["key"])
        assert head["ServerSideEncryption"] == "aws:kms", entry["table"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["table"]
        assert len(gzip.decompress(data).splitlines()) == entry["rows"] == expected_rows[entry["table"]], entry
    # the export left its DAGs paused (the environment is about to be deleted)
    assert scenario["after_export"]["mwaa_ops_af3_on"] is True and scenario["after_export"][LONG] is True


def test_no_secret_in_plaintext_in_any_exported_object(scenario):
    seen = 0
    for key, data in objects(scenario["s3"], scenario["manifest_uri"]):
        text = gzip.decompress(data) if key.endswith(".gz") else data
        for name, secret in mb.SECRETS.items():
            assert secret.encode() not in text, f"{name} in plaintext in {key}"
        assert b"***" not in text, f"a masked value was exported in {key}"
        seen += 1
    assert seen >= 5  # four tables and the manifest


def test_tasks_went_through_invoke_rest_api_within_its_limits(scenario):
    calls = [c for c in scenario["calls"] if c["operation"] == "InvokeRestApi"]
    assert calls and all(len(c["path"]) <= 64 for c in calls)
    paths = {(c["method"], c["path"]) for c in calls}
    assert ("PATCH", "/dags/mwaa_ops_af3_on") in paths  # paused by the export
    assert ("PATCH", "/dags") in paths  # the long id: by pattern
    assert {("PATCH", "/pools"), ("PATCH", "/variables"), ("PATCH", "/connections")} <= paths  # bulk upserts


# ---------------------------------------------------------------- import

@pytest.mark.parametrize("case,needle", [
    ("tampered", "table variable"), ("object", "table connection"), ("missing", "table slot_pool) missing"),
    ("version", "Airflow 3.0.2"), ("database_export", "Airflow 2.x database export"),
    ("swapped", "table variable, column val, row 2: the sealed value does not open"),
    ("rows_swapped", "table variable, column val, row 2: the sealed value does not open"),
    ("changed", "it changed after the pause"),
    ("other_environment", f"an export of environment 'env-b', not of '{ENV}'"),
    ("other_environments_key", f"KMS refused the export's data key for environment '{ENV}'"),
    ("made_up", "is not the one the pause recorded"), ("no_token", "conf has no task_token"),
    ("forged", "Step Functions refused the task token (InvalidToken)")])
def test_import_refuses_bad_exports_and_writes_nothing(scenario, case, needle):
    if case == "tampered":  # through the DAG: Step Functions hears of it
        state, execution = scenario["refused"][case]
        assert state == "failed"
        assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ImportRefused"
        error = execution["cause"]
    elif case == "forged":  # triggered by hand with a made-up token: refused before reading
        state, run = scenario["refused"][case]
        assert state == "failed"
        error = run["cause"]
    else:
        error = scenario["refused"][case]
    assert error.startswith("Refused") and needle in error, error
    assert scenario["before_import"] == scenario["fresh"]  # not one write
    assert not {k for k in scenario["before_import"]["variable"]}
    assert scenario["before_import"]["slot_pool"]["default_pool"]["slots"] == 128


def test_import_reports_to_step_functions(scenario):
    state, execution = scenario["import"]
    assert state == "success" and execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["already_imported"] is False and output["dags_missing"] == []
    assert output["written"] == {"slot_pool": 2, "variable": 3, "connection": 2, "dag": 3}


def test_settings_are_equal_to_the_source(scenario):
    assert scenario["fernet_changed"]
    source, target = user_settings(scenario["source"]), user_settings(scenario["after_import"])
    assert target["slot_pool"] == source["slot_pool"]
    assert target["slot_pool"]["default_pool"]["slots"] == 77
    assert target["variable"] == source["variable"]
    assert target["connection"] == source["connection"]
    # read_settings decrypts with the target's key: a value left under the old key would fail
    assert target["connection"]["warehouse"]["password"] == mb.SECRETS["conn_password"]
    assert json.loads(target["connection"]["warehouse"]["extra"])["token"] == mb.SECRETS["conn_extra_token"]
    assert target["variable"]["secret_var"]["val"] == mb.SECRETS["var_secret"]
    assert target["variable"]["json_var"]["val"] == '{"a": [1, 2], "b": "é"}'  # a string stays a string


def test_paused_state_restored(scenario):
    fresh, dags = scenario["fresh"]["dag"], scenario["after_import"]["dag"]
    assert (fresh["mwaa_ops_af3_on"], fresh["mwaa_ops_af3_off"]) == (True, False)  # the new environment's own
    assert (dags["mwaa_ops_af3_on"], dags["mwaa_ops_af3_off"]) == (False, True)  # the source's
    assert (fresh[LONG], dags[LONG]) == (True, False)  # patched through PATCH /dags?dag_id_pattern=


def test_importing_twice_writes_nothing(scenario):
    state, execution = scenario["reimport"]
    assert state == "success" and json.loads(execution["output"])["already_imported"] is True
    first, second = scenario["after_import"], scenario["after_reimport"]
    assert first == second
    assert [k for k in second["variable"] if k.startswith("mwaa_ops.imported.")] == [
        "mwaa_ops.imported." + json.loads(execution["output"])["export_id"]]
