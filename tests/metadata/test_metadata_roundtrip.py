"""Metadata round trip on real Airflow 2.x / PostgreSQL, moto for S3, KMS and Step Functions.
The version is MWAA_OPS_AIRFLOW_VERSION (default 2.10.3, the per-commit bed's; the others come
from scripts/metadata-matrix, which makes .bed/airflow-<version> first).

One scenario, run once per module (one Airflow at a time): history in a source environment, and
a task deferred (its trigger running in the source's triggerer) -> export (and a failing export)
-> source stopped -> a fresh environment with another Fernet key -> refused imports (tampered,
missing object, wrong version; a manifest changed after the pause, another environment's export,
sealed values swapped between rows, runs triggered by hand with a made-up token or none, an
import failing on a row) -> import -> import again -> the deferred task's trigger fires in the
new environment and the task resumes there.
The tests below check what each step left behind. Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import copy
import gzip
import json
import os
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

import iam_execution
import metadata_bed as mb
from metadata_bed import ab
from moto_bed import Moto

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1", reason="MWAA_OPS_SKIP_AIRFLOW=1")
VERSION = os.environ.get("MWAA_OPS_AIRFLOW_VERSION") or "2.10.3"
V = tuple(int(p) for p in VERSION.split("."))
assert V[0] == 2, f"the database round trip is for Airflow 2.x, not {VERSION}"
# A version the export is not from, for the "wrong version" refusal (any other 2.x MWAA offers).
OTHER_VERSION = "2.9.2" if VERSION != "2.9.2" else "2.10.3"
# Tables of the generated history that only some versions have (Airflow's migrations):
# task_instance_history (one row per earlier try) came with 2.10.0.
HISTORY_TABLES = ("dag_run", "task_instance", "xcom", "task_fail", "log", "job", "connection", "variable",
                  "slot_pool", "dataset_event", "dag_run_note", "task_instance_note",
                  "rendered_task_instance_fields", "dag_tag", "trigger") + (("task_instance_history",) if V >= (2, 10) else ())
BUCKET = "mwaa-ops-exports"
ACTIVE = ["mwaa_ops_deferred", "mwaa_ops_history"]  # the DAGs on at export time


def run_dag(info, dag_id, conf, sfn=None, sqs=None):
    """Trigger a run (with a task token when sfn is given); (run state, execution or None)."""
    execution = None
    if sfn:
        execution, token = mb.state_machine(sfn, sqs)
        conf = dict(conf, task_token=token)
    run_id = f"{dag_id}-{time.time_ns()}"
    mb.trigger(info, dag_id, run_id, conf)
    state = mb.wait_runs(info, dag_id, [run_id], timeout=180)[run_id]
    execution = mb.wait_execution(sfn, execution) if sfn else {}
    if state == "failed":  # moto keeps no cause: read the task's own (what on_failure sends)
        task = dag_id.split("_")[-1]
        execution["cause"] = mb.call(info, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}"
                                     f"/xcomEntries/error")["value"]
    return state, execution


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metadata")
    moto, pg, af = Moto(tmp), ab.Postgres(), None
    saved = dict(os.environ)
    try:
        moto.start()
        aws = {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(aws, PYTHONPATH=str(ab.boto_shim(tmp)),  # inherited by every Airflow process
                          MWAA_OPS_BULK_ROWS="5")  # bigger tables loaded without indexes and foreign keys
        clients = {s: boto3.client(s, endpoint_url=moto.url, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test")
                   for s in ("s3", "kms", "stepfunctions", "sqs")}
        s3, sfn, sqs = clients["s3"], clients["stepfunctions"], clients["sqs"]
        key = clients["kms"].create_key()["KeyMetadata"]
        kms_key = key["KeyId"]
        mb.versioned_bucket(s3, BUCKET, key["Arn"])
        out = {"s3": s3, "kms_key": kms_key}
        # Both environments are env-a's: their tasks act as its execution role (README's policy).
        execution_key = iam_execution.register_with(moto.url, "env-a", BUCKET, key["Arn"])
        pg.start(tmp / "pg")
        folder = ab.dags_folder(tmp / "dags", (ab.SUITE_DAGS, HERE / "dags"))

        # -- source environment: history, a failing export, the export
        af = ab.Airflow(VERSION, pg, folder, tmp / "source", triggerer=True, execution_key=execution_key)
        src = af.start()
        af.wait_for_dag("mwaa_ops_history")
        t0 = time.monotonic()
        out["history_states"] = mb.make_history(src)
        out["history_seconds"] = time.monotonic() - t0
        af.wait_for_dag("mwaa_ops_deferred")
        release = out["release"] = tmp / "release-d0"
        out["deferred_ti"] = mb.defer_task(src, release)
        conf = {"bucket": BUCKET, "environment": "env-a", "kms_key_id": kms_key, "poll_seconds": 1}
        out["bad_export"] = run_dag(src, "mwaa_ops_export", dict(conf, kms_key_id="alias/no-such-key"), sfn, sqs)
        out["paused_after_bad_export"] = mb.call(src, "GET", "/dags/mwaa_ops_history")["is_paused"]
        # The same export as a role whose policy lacks the statement for S3's KMS calls.
        af.use_execution_key(iam_execution.register_with(moto.url, "env-a", BUCKET, key["Arn"],
                                                         without=["ObjectsSealedByS3"]))
        out["export_without_a_statement"] = run_dag(src, "mwaa_ops_export", conf, sfn, sqs)
        out["refused_by_iam"] = json.loads(urllib.request.urlopen(
            f"{moto.url}/moto-api/bed-iam/refused").read())
        af.use_execution_key(execution_key)
        t0 = time.monotonic()
        out["export"] = run_dag(src, "mwaa_ops_export", conf, sfn, sqs)
        out["export_seconds"] = time.monotonic() - t0
        out["deferred_after_export"] = mb.call(src, "GET", "/dags/mwaa_ops_deferred/dagRuns/d0/taskInstances/wait")
        af.stop()
        out["source"] = mb.dump(VERSION, src["database_url"], src["fernet_key"])

        # -- target environment: refusals first (nothing may be written), then the import, twice
        recorded = mb.snapshot_conf(json.loads(out["export"][1]["output"]), "env-a")
        manifest_uri = out["manifest_uri"] = recorded["manifest"]
        out["recorded"] = recorded
        out["kms_other_context"] = mb.kms_refuses_another_context(clients["kms"], recorded,
                                                                   mb.read_manifest(s3, recorded))
        af = ab.Airflow(VERSION, pg, folder, tmp / "target", triggerer=True, execution_key=execution_key)
        dst = af.start()
        af.wait_for_dag("mwaa_ops_import")
        out["refused"] = {}
        bad = dict(bad_manifests(s3, recorded), **mb.binding_cases(s3, clients["kms"], recorded))
        out["refused"]["tampered"] = run_dag(dst, "mwaa_ops_import", bad.pop("tampered"), sfn, sqs)
        # Made up by hand: a run nobody's state machine waits for reads nothing.
        out["refused"]["forged"] = run_dag(dst, "mwaa_ops_import", dict(bad["made_up"], task_token="AQCEAAAAKgAAAA-made-up"))
        # A row PostgreSQL refuses: the failure must not quote it.
        out["refused"]["row"] = run_dag(dst, "mwaa_ops_import", bad.pop("row"), sfn, sqs)
        # The other refusals straight through the import code (as the task runs it), to save
        # a DAG run each: same database, same Fernet key, same AWS endpoint, a live task token.
        _, token = mb.state_machine(sfn, sqs)
        env = dict(af.env, PYTHONPATH=os.pathsep.join([str(folder), os.environ["PYTHONPATH"]]),
                   MWAA_OPS_TRY_CONF=json.dumps({"task_token": token}))
        bad["no_token"] = dict(recorded, task_token=None)
        out["refused"].update(mb.airflow_python(VERSION, HERE / "try_import.py",
                                                *(json.dumps(dict(c, case=k)) for k, c in bad.items()), env=env))
        out["before_import"] = mb.dump(VERSION, dst["database_url"], dst["fernet_key"])
        t0 = time.monotonic()
        out["import"] = run_dag(dst, "mwaa_ops_import", recorded, sfn, sqs)
        out["import_seconds"] = time.monotonic() - t0
        out["after_import"] = mb.dump(VERSION, dst["database_url"], dst["fernet_key"])
        out["reimport"] = run_dag(dst, "mwaa_ops_import", recorded, sfn, sqs)
        out["after_reimport"] = mb.dump(VERSION, dst["database_url"], dst["fernet_key"])
        out["target_dags"] = {d["dag_id"]: d["is_paused"] for d in mb.call(dst, "GET", "/dags")["dags"]}

        # -- the deferred task goes on in the target: its trigger fires once the file exists
        release.write_text("go")
        out["resumed_run"] = mb.wait_runs(dst, "mwaa_ops_deferred", ["d0"])["d0"]
        out["resumed_ti"] = mb.call(dst, "GET", "/dags/mwaa_ops_deferred/dagRuns/d0/taskInstances/wait")
        yield out
    finally:
        if af:
            af.stop()
        pg.stop()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def swap_sealed_values(text: bytes, column_names) -> bytes:
    """The variable object with the sealed values of its first two sealed rows swapped."""
    rows = [line.split(b"\t") for line in text.splitlines()]
    at = list(column_names).index("val")
    first, second = [r for r in rows if r[at] != b"\\N"][:2]
    first[at], second[at] = second[at], first[at]
    return b"".join(b"\t".join(r) + b"\n" for r in rows)


def null_connection_id(text: bytes, column_names) -> bytes:
    """The connection object with the id of the connection holding no secret set to NULL (a
    NOT NULL column): PostgreSQL refuses it quoting the whole row."""
    at = list(column_names).index("conn_id")
    rows = [line.split(b"\t") for line in text.splitlines()]
    for row in rows:
        if row[at] == b"no_secret":
            row[at] = b"\\N"
    return b"".join(b"\t".join(r) + b"\n" for r in rows)


def bad_manifests(s3, recorded):
    """Broken copies of a good export, written next to it: {case: conf naming exactly it}."""
    good = mb.read_manifest(s3, recorded)
    columns = {e["table"]: e["columns"] for e in good["tables"]}
    cases = {"swapped": mb.rewritten(s3, recorded, good, "variable",
                                     lambda t: swap_sealed_values(t, columns["variable"])),
             "row": mb.rewritten(s3, recorded, good, "connection",
                                 lambda t: null_connection_id(t, columns["connection"]))}
    tampered = copy.deepcopy(good)
    entry = next(e for e in tampered["tables"] if e["table"] == "xcom")
    entry["sha256"] = "0" * 64
    cases["tampered"] = tampered
    missing = copy.deepcopy(good)
    entry = next(e for e in missing["tables"] if e["table"] == "task_instance")
    entry["key"] += ".gone"
    cases["missing"] = missing
    cases["version"] = dict(copy.deepcopy(good), airflow_version=OTHER_VERSION)
    cases["json_lines"] = dict(copy.deepcopy(good), format="mwaa-ops-metadata/1")  # written before 2026-11-30
    old = copy.deepcopy(good)  # written before exports were sealed to their environment
    del old["data_key"]["encryption_context"]
    cases["unsealed"] = old
    return {case: mb.put_manifest(s3, recorded, body, case) for case, body in cases.items()}


def objects(s3, uri):
    bucket, key = uri[5:].split("/", 1)
    prefix = key.rsplit("/", 1)[0] + "/"
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        yield obj["Key"], s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()


# ---------------------------------------------------------------- export

def test_history_is_varied(scenario):
    states = scenario["history_states"]
    assert set(states.values()) == {"success", "failed"}
    src = scenario["source"]["tables"]
    for table in HISTORY_TABLES:
        assert src[table], f"no {table} rows in the generated history"
    # Before 2.10 the earlier tries are not kept anywhere but task_fail: the table must not exist.
    assert ("task_instance_history" in src) == (V >= (2, 10))


def test_failed_export_reenables_dags_and_fails_the_task_token(scenario):
    state, execution = scenario["bad_export"]
    assert state == "failed"
    assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ExportFailed"
    assert scenario["paused_after_bad_export"] is False  # paused by the export, re-enabled on failure


def test_an_execution_role_missing_a_documented_statement_fails_the_export_with_access_denied(scenario):
    """Without ObjectsSealedByS3, S3 may not ask KMS for the objects' data key as the role: the
    first write is refused, and the DAG fails its task token with S3's AccessDenied."""
    state, execution = scenario["export_without_a_statement"]
    assert state == "failed"
    assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ExportFailed"
    assert "AccessDenied" in execution["cause"] and "PutObject" in execution["cause"], execution["cause"]
    refused = [(r["role"], r["action"]) for r in scenario["refused_by_iam"]]
    assert refused and set(refused) == {("env-a-execution-role", "kms:GenerateDataKey")}, refused


def test_export_sends_manifest_to_step_functions(scenario):
    state, execution = scenario["export"]
    assert state == "success" and execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["active_dags"] == ACTIVE
    assert output["airflow_version"] == VERSION
    s3, uri = scenario["s3"], scenario["manifest_uri"]
    bucket, key = uri[5:].split("/", 1)
    assert "/env-a/dt=" in key
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=output["manifest_version_id"])["Body"].read()
    manifest = json.loads(body)
    import hashlib
    assert hashlib.sha256(body).hexdigest() == output["manifest_sha256"]
    assert manifest["active_dags"] == ACTIVE
    source = scenario["source"]["tables"]
    for entry in manifest["tables"]:
        data = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["table"]
        assert len(gzip.decompress(data).splitlines()) == entry["rows"], entry["table"]
        if entry["table"] not in ("job", "log"):  # the source kept logging after the export
            assert entry["rows"] == len(source[entry["table"]]), entry["table"]
    moved = {e["table"] for e in manifest["tables"]}
    assert not moved & {"serialized_dag", "dag_code", "session", "alembic_version", "ab_user"}


def test_export_moves_exactly_this_versions_tables(scenario):
    """By reflection: what the source's migrations made, not a list in the code. 2.10.0 added
    try history, dataset aliases and parsing requests (the latter regenerated: not moved)."""
    manifest = mb.read_manifest(scenario["s3"], scenario["recorded"])
    moved, left = {e["table"] for e in manifest["tables"]}, set(manifest["excluded_tables"])
    assert moved == set(scenario["source"]["tables"])  # the dump reflects the source on its own
    new_in_2_10 = {"task_instance_history", "dataset_alias", "dataset_alias_dataset",
                   "dataset_alias_dataset_event", "dag_schedule_dataset_alias_reference"}
    assert (moved & new_in_2_10) == (new_in_2_10 if V >= (2, 10) else set())
    assert ("dag_priority_parsing_request" in left) == (V >= (2, 10))
    assert {"task_fail", "dag_run_note", "task_instance_note", "dataset_event", "trigger"} <= moved


def test_no_secret_in_plaintext_in_any_exported_object(scenario):
    seen = 0
    for key, data in objects(scenario["s3"], scenario["manifest_uri"]):
        text = gzip.decompress(data) if key.endswith(".gz") else data
        for name, secret in mb.SECRETS.items():
            assert secret.encode() not in text, f"{name} in plaintext in {key}"
        seen += 1
    assert seen >= 20


# ---------------------------------------------------------------- import

def user_rows(dump):
    """Rows of tables a refused import could have written (the target's own logs aside)."""
    t = dump["tables"]
    return {k: t[k] for k in ("connection", "variable", "dag_run", "task_instance", "xcom", "slot_pool",
                              "dataset_event", "trigger") + (("task_instance_history",) if V >= (2, 10) else ())}


@pytest.mark.parametrize("case,needle", [
    ("tampered", "table xcom"), ("missing", "table task_instance"),
    ("version", f"Airflow {OTHER_VERSION}, this is {VERSION}"),
    ("json_lines", "JSON Lines database export written by an earlier"),
    ("unsealed", "no KMS encryption context: an export written before exports were bound"),
    ("changed", "it changed after the pause"),
    ("other_environment", "an export of environment 'env-b', not of 'env-a'"),
    ("other_environments_key", "KMS refused the export's data key for environment 'env-a'"),
    ("swapped", "table variable, column val, row 1: the sealed value does not open in this row"),
    ("made_up", "is not the one the pause recorded"),
    ("no_token", "conf has no task_token"),
    ("forged", "Step Functions refused the task token (InvalidToken)")])
def test_import_refuses_bad_exports_and_writes_nothing(scenario, case, needle):
    if case == "tampered":  # through the DAG: Step Functions hears of it
        state, execution = scenario["refused"][case]
        assert state == "failed"
        assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ImportRefused"
        error = execution["cause"]
    elif case == "forged":  # triggered by hand: refused before anything is read
        state, run = scenario["refused"][case]
        assert state == "failed"
        error = run["cause"]
    else:
        error = scenario["refused"][case]
    assert error.startswith("Refused") and needle in error, error
    before = user_rows(scenario["before_import"])
    assert not any(before[t] for t in ("connection", "variable", "dag_run", "task_instance", "xcom"))
    assert [json.loads(r)["slots"] for r in before["slot_pool"]] == [128]  # default_pool untouched


def test_a_failing_row_reaches_step_functions_as_table_column_and_row_only(scenario):
    """PostgreSQL refuses a NULL connection id quoting the row ("Failing row contains (...)",
    with the connection's host): XCom, the task token's failure and the email carry only
    the error's class, table, column, constraint and row; nothing was written."""
    state, execution = scenario["refused"]["row"]
    assert state == "failed"
    assert execution["status"] == "FAILED" and execution["error"] == "MwaaOps.ImportFailed"
    cause = execution["cause"]
    assert "NotNullViolation" in cause and "table connection" in cause and "column conn_id" in cause, cause
    assert "example.invalid" not in cause and "Failing row" not in cause and "no_secret" not in cause, cause
    before = user_rows(scenario["before_import"])
    assert not any(before[t] for t in ("connection", "variable", "dag_run", "task_instance", "xcom"))


def test_the_beds_kms_refuses_a_data_key_under_another_environments_context(scenario):
    assert scenario["kms_other_context"] == "InvalidCiphertextException"


def test_the_import_reads_the_recorded_version_not_what_lies_at_the_key_now(scenario):
    """After the pause the manifest was rewritten in place (case `changed`); the import of the
    recorded version went ahead and imported what the export wrote."""
    s3, recorded = scenario["s3"], scenario["recorded"]
    bucket, key = recorded["manifest"][5:].split("/", 1)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["active_dags"] == ["someone_elses_dag"]
    state, execution = scenario["import"]
    assert state == "success" and sorted(json.loads(execution["output"])["active_dags"]) == sorted(ACTIVE)


def test_import_reports_to_step_functions(scenario):
    state, execution = scenario["import"]
    assert state == "success" and execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["already_imported"] is False and output["inserted"] > 100
    assert output["remapped"] > 0  # the target's own dag run / jobs / logs took some ids


def test_round_trip_is_identical_except_documented_differences(scenario):
    source, target = scenario["source"], scenario["after_import"]
    assert target["sequences_behind"] == {}
    assert mb.differences(source, target, active=ACTIVE) == {}


def test_the_import_leaves_every_index_and_constraint_as_it_found_them(scenario):
    """Bulk tables (MWAA_OPS_BULK_ROWS is lowered here) lose their plain indexes and foreign keys
    while they load; every one must be back, with the same name and definition."""
    before, after = scenario["before_import"]["ddl"], scenario["after_import"]["ddl"]
    [marker] = [json.loads(r) for r in scenario["after_import"]["tables"]["variable"]
                if json.loads(r)["key"].startswith("mwaa_ops.imported.")]
    rebuilt = {t: s["rebuilt"] for t, s in json.loads(marker["val"])["tables"].items()}
    assert rebuilt["task_instance"] >= 8, rebuilt  # 7 plain indexes and its foreign keys
    assert 0 in rebuilt.values(), rebuilt  # smaller tables keep theirs
    assert any("ti_state_lkp" in d for d in after) and any("FOREIGN KEY" in d for d in after)
    assert after == before


def test_secrets_are_readable_with_the_new_fernet_key(scenario):
    # dump_db decrypts with the target's key: a value left under the old key would have failed.
    rows = {json.loads(r)["conn_id"]: json.loads(r) for r in scenario["after_import"]["tables"]["connection"]}
    assert rows["warehouse"]["password"] == mb.SECRETS["conn_password"]
    assert json.loads(rows["warehouse"]["extra"])["token"] == mb.SECRETS["conn_extra_token"]
    assert rows["warehouse"]["is_encrypted"] is True
    variables = {json.loads(r)["key"]: json.loads(r)["val"] for r in scenario["after_import"]["tables"]["variable"]}
    assert variables["secret_var"] == mb.SECRETS["var_secret"]


def test_paused_state_restored(scenario):
    dags = scenario["target_dags"]
    assert dags["mwaa_ops_history"] is False and dags["mwaa_ops_history_paused"] is True


def test_importing_twice_duplicates_nothing(scenario):
    state, execution = scenario["reimport"]
    assert state == "success" and json.loads(execution["output"])["already_imported"] is True
    first, second = scenario["after_import"]["tables"], scenario["after_reimport"]["tables"]
    for table in first:
        if table not in ("job", "log", "trigger", "dag_run"):  # the target's own scheduler/API keep writing those
            assert first[table] == second[table], table
    assert mb.unassigned(first["trigger"]) == mb.unassigned(second["trigger"])  # its triggerer may take it meanwhile
    runs = lambda tables: [mb.scheduled(json.loads(r)) for r in tables["dag_run"]]
    assert runs(first) == runs(second)  # the deferred task's run goes on being scheduled
    assert len(second["dag_run"]) == len(scenario["history_states"]) + 1  # and the deferred task's


# ---------------------------------------------------------------- a task deferred at export time

def _rows(dump, table, **match):
    return [r for r in map(json.loads, dump["tables"][table]) if all(r.get(k) == v for k, v in match.items())]


def test_export_does_not_wait_for_a_deferred_task_and_moves_it_as_it_is(scenario):
    """The export ran while the task was deferred (its trigger taken by the source's triggerer)
    and left it so; the exported task instance names its trigger, its method and kwargs."""
    assert scenario["deferred_ti"]["triggerer_job"]  # the source's triggerer had taken it
    assert scenario["deferred_after_export"]["state"] == "deferred"
    [ti] = _rows(scenario["source"], "task_instance", dag_id="mwaa_ops_deferred")
    assert ti["state"] == "deferred" and ti["next_method"] == "resume"
    kwargs = json.loads(ti["next_kwargs"]) if isinstance(ti["next_kwargs"], str) else ti["next_kwargs"]
    assert kwargs["__var"]["started"]  # BaseSerialization's form of the task's kwargs
    [trigger] = _rows(scenario["source"], "trigger")
    assert trigger["classpath"] == "mwaa_ops_deferred.ReleaseTrigger" and ti["trigger_id"] is not None
    assert mb.SECRETS["trigger_token"] in trigger["kwargs"]  # dump_db decrypted it with the source's key


def test_deferred_task_instance_and_its_trigger_round_trip_table_by_table(scenario):
    """task_instance.next_method / next_kwargs / trigger_id and the trigger row (kwargs decrypted
    with the target's Fernet key; plain JSON before 2.9) are the source's, the trigger free for
    the target's triggerer (the source's is gone)."""
    source, target = scenario["source"], scenario["after_import"]
    assert _rows(target, "task_instance", dag_id="mwaa_ops_deferred") == \
        _rows(source, "task_instance", dag_id="mwaa_ops_deferred")  # trigger_id: the same trigger
    assert mb.unassigned(target["tables"]["trigger"]) == mb.unassigned(source["tables"]["trigger"])
    [moved] = _rows(target, "trigger")
    assert moved["triggerer_id"] is None or json.loads(moved["triggerer_id"])["job_type"] == "TriggererJob"
    assert moved["triggerer_id"] not in mb.triggerers(source["tables"])


def test_deferred_task_resumes_in_the_new_environment_without_starting_over(scenario):
    """The target's triggerer ran the moved trigger (its secret kwarg intact), and the task went
    on with the method and kwargs it deferred with: execute ran once, in the source."""
    assert scenario["resumed_run"] == "success" and scenario["resumed_ti"]["state"] == "success"
    release = scenario["release"]
    executions = release.with_name(release.name + ".executions").read_text().split()
    result = json.loads(release.with_name(release.name + ".result").read_text())
    assert len(executions) == 1, executions
    assert result == {"event": {"released": release.name, "token_ok": True},
                      "started_kwarg": executions[0], "started_xcom": executions[0]}
