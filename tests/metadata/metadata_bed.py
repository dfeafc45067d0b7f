"""Helpers for the metadata round-trip tests: history generation over the REST API, a Step
Functions execution waiting on a task token (moto), and a normalised dump of a metadata DB
(run by the Airflow venv's Python: it needs SQLAlchemy and the Fernet key)."""
import base64
import copy
import gzip
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import airflow_bed as ab

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SECRETS = {  # plaintexts that must never appear in an exported object
    "conn_password": "pw-s3cr3t-7f2a",
    "conn_extra_token": "extra-t0ken-91bd",
    "var_secret": "var-v@lue-5c1e",
    "trigger_token": "trigger-t0ken-4d8e",  # in the kwargs of mwaa_ops_deferred's trigger
}


def call(info, method, path, body=None, ok=(200,)):
    status, answer = ab.api(info, method, path, body)
    if status not in ok:
        raise AssertionError(f"{method} {path}: {status} {answer}")
    return answer


def trigger(info, dag_id, run_id, conf=None):
    return call(info, "POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "conf": conf or {}})


def wait_runs(info, dag_id, run_ids, timeout=240):
    deadline, states = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        for run_id in run_ids:
            states[run_id] = call(info, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if all(s in ("success", "failed") for s in states.values()):
            return states
        time.sleep(1)
    raise TimeoutError(f"{dag_id} runs not finished: {states}")


def wait_task(info, dag_id, run_id, task_id, until, timeout=120):
    """The task instance (REST) once until(ti) holds."""
    deadline, ti = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        ti = call(info, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        if until(ti):
            return ti
        time.sleep(1)
    raise TimeoutError(f"{dag_id}/{run_id}/{task_id}: {ti}")


def defer_task(info, release, run_id="d0"):
    """A run of mwaa_ops_deferred whose task is deferred and its trigger taken by the triggerer
    (it fires once the file `release` exists); returns the task instance (REST)."""
    trigger(info, "mwaa_ops_deferred", run_id, {"release": str(release)})
    return wait_task(info, "mwaa_ops_deferred", run_id, "wait",
                     lambda ti: ti["state"] == "deferred" and ti.get("triggerer_job"))


def make_history(info, runs=3):
    """Settings and history through the public API, the way users make them."""
    call(info, "POST", "/pools", {"name": "history_pool", "slots": 3, "description": "moved"})
    call(info, "PATCH", "/pools/default_pool", {"name": "default_pool", "slots": 77})
    call(info, "POST", "/variables", {"key": "plain_var", "value": "hello"})
    call(info, "POST", "/variables", {"key": "secret_var", "value": SECRETS["var_secret"],
                                      "description": "sensitive"})
    call(info, "POST", "/connections", {
        "connection_id": "warehouse", "conn_type": "postgres", "host": "db.example.invalid",
        "login": "etl", "password": SECRETS["conn_password"], "port": 5432, "schema": "dw",
        "extra": json.dumps({"token": SECRETS["conn_extra_token"], "sslmode": "require"})})
    call(info, "POST", "/connections", {"connection_id": "no_secret", "conn_type": "http",
                                        "host": "example.invalid"})
    ids = [f"h{i}" for i in range(runs)]
    for i, run_id in enumerate(ids):
        trigger(info, "mwaa_ops_history", run_id, {"fail": i % 2 == 1, "n": i})
    states = wait_runs(info, "mwaa_ops_history", ids)
    call(info, "PATCH", "/dags/mwaa_ops_history/dagRuns/h0/setNote", {"note": "a note on a run"})
    call(info, "PATCH", "/dags/mwaa_ops_history/dagRuns/h1/taskInstances/doomed/setNote", {"note": "why it failed"})
    return states


def settings_af3(info, version="3.0.6"):
    """Variables, connections (secrets decrypted with the environment's Fernet key), pools and
    paused state of a 3.x environment, read from the database itself (REST masks secrets)."""
    return airflow_python(version, HERE / "read_settings.py", info["database_url"], info["fernet_key"])


def seed_af3(info, on, off, long=None):
    """The settings a user makes on 3.x, through the public API: a pool, default_pool's size,
    variables (one sensitive, one JSON text), connections (password, sensitive extra key), the
    DAG `on` switched on (created paused), `off` switched off (created unpaused), `long` on."""
    call(info, "POST", "/pools", {"name": "history_pool", "slots": 3, "description": "moved",
                                  "include_deferred": True}, ok=(201,))
    call(info, "PATCH", "/pools/default_pool?update_mask=slots", {"slots": 77})  # 3.x: mask required
    call(info, "POST", "/variables", {"key": "plain_var", "value": "hello"}, ok=(201,))
    call(info, "POST", "/variables", {"key": "secret_var", "value": SECRETS["var_secret"],
                                      "description": "sensitive"}, ok=(201,))
    call(info, "POST", "/variables", {"key": "json_var", "value": '{"a": [1, 2], "b": "é"}'}, ok=(201,))
    call(info, "POST", "/connections", {
        "connection_id": "warehouse", "conn_type": "postgres", "host": "db.example.invalid",
        "login": "etl", "password": SECRETS["conn_password"], "port": 5432, "schema": "dw",
        "description": "the warehouse",
        "extra": json.dumps({"token": SECRETS["conn_extra_token"], "sslmode": "require"})}, ok=(201,))
    call(info, "POST", "/connections", {"connection_id": "no_secret", "conn_type": "http",
                                        "host": "example.invalid"}, ok=(201,))
    call(info, "PATCH", f"/dags/{on}", {"is_paused": False})
    call(info, "PATCH", f"/dags/{off}", {"is_paused": True})
    if long:
        call(info, "PATCH", f"/dags/{long}", {"is_paused": False})


def user_settings_af3(s):
    """The settings a user made (settings_af3), without the import's own marker variable."""
    s = copy.deepcopy(s)
    s["variable"] = {k: v for k, v in s["variable"].items() if not k.startswith("mwaa_ops.imported.")}
    s.pop("counts")
    return s


def state_machine(sfn, sqs):
    """An execution waiting on .waitForTaskToken; returns (execution arn, task token)."""
    queue = sqs.create_queue(QueueName=f"tokens-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    definition = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True,
        "HeartbeatSeconds": 300, "TimeoutSeconds": 1200,  # moto defaults to 60 s
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}}}}
    machine = sfn.create_state_machine(name=f"m{time.time_ns()}", definition=json.dumps(definition),
                                       roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if msgs:
            return execution, json.loads(msgs[0]["Body"])["token"]
    raise TimeoutError("no task token reached the queue")


def wait_execution(sfn, arn, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sfn.describe_execution(executionArn=arn)
        if out["status"] != "RUNNING":
            return out
        time.sleep(0.5)
    raise TimeoutError(f"execution {arn} still running")


def airflow_python(version, script, *args, env=None):
    """Run a script with the Airflow venv's Python (SQLAlchemy, cryptography, psycopg2)."""
    py = ROOT / ".bed" / f"airflow-{version}" / "bin" / "python"
    r = subprocess.run([str(py), str(script), *args], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "infra" / "dags"), **(env or {})})
    if r.returncode != 0:
        raise AssertionError(f"{script.name} failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])  # Airflow may log before it


def dump(version, database_url, fernet_key):
    """Normalised content of every moved table (see dump_db.py)."""
    return airflow_python(version, HERE / "dump_db.py", database_url, fernet_key)


def expected_target(source, active):
    """What the target must hold: the source, minus what the import documents it changes."""
    tables = copy.deepcopy(source["tables"])
    tables["dag"] = sorted(json.dumps(dict(r, is_paused=False) if r["dag_id"] in active else r, sort_keys=True)
                           for r in map(json.loads, tables["dag"]))
    for table in ("dag_run_note", "task_instance_note"):  # user ids point at ab_user: not moved
        tables[table] = sorted(json.dumps(dict(r, user_id=None), sort_keys=True) for r in map(json.loads, tables[table]))
    # The source's triggerers do not exist in the target: the export clears whose a trigger was.
    tables["trigger"] = unassigned(tables.get("trigger", []))
    return tables


def unassigned(rows):
    """trigger rows without the triggerer that runs them (the target's own takes them on)."""
    return sorted(json.dumps(dict(r, triggerer_id=None), sort_keys=True) for r in map(json.loads, rows))


def scheduled(run):
    """A dag_run row without the scheduler's bookkeeping if the run is still going."""
    going = run["state"] in ("queued", "running")
    return {c: v for c, v in run.items() if not (going and c in ("last_scheduling_decision", "updated_at"))}


def triggerers(tables):
    """The triggerer job (normalised, as dump_db names it) of each trigger row."""
    return [json.loads(r)["triggerer_id"] for r in tables.get("trigger", [])]


def differences(source, target, active, ignore=lambda table, row: False):
    """Tables whose imported content differs from the source's, {table: (rows expected, rows
    found)}, allowing only the documented differences: the import's own marker variable, the
    target's own scheduler jobs and log events, DAGs active before the export unpaused.
    `ignore(table, row)` drops rows the caller made after the import (e.g. replayed runs)."""
    expected, got = expected_target(source, active), copy.deepcopy(target["tables"])
    for tables in (expected, got):  # the import's own marker (a source may be an import's target)
        tables["variable"] = [r for r in tables["variable"] if not json.loads(r)["key"].startswith("mwaa_ops.imported.")]
    taken = [t for t in triggerers(got) if t is not None]  # by the target's triggerer, not the source's
    assert all(json.loads(t)["job_type"] == "TriggererJob" and t not in triggerers(source["tables"])
               for t in taken), taken
    got["trigger"] = unassigned(got.get("trigger", []))
    for tables in (expected, got):  # the target's scheduler goes on with runs still going
        tables["dag_run"] = sorted(json.dumps(scheduled(r), sort_keys=True) for r in map(json.loads, tables["dag_run"]))
    for table in list(got):  # only rows the source did not have can be the caller's own
        known = set(expected.get(table, []))
        got[table] = [r for r in got[table] if r in known or not ignore(table, json.loads(r))]
    for table in ("job", "log"):  # the target keeps its own scheduler jobs and log events
        own = [r for r in got[table] if r not in expected[table]]
        assert all(json.loads(r)["dag_id"] is None for r in own), (table, own[:3])
        # the source scheduler job kept heartbeating after the snapshot: compare identities
        strip = (lambda rows: sorted(json.dumps({c: v for c, v in json.loads(r).items()
                                                 if c not in ("latest_heartbeat", "state", "end_date")})
                                     for r in rows)) if table == "job" else sorted
        src_rows, tgt_rows = strip(expected[table]), strip(got[table])
        missing = [r for r in src_rows if r not in tgt_rows]
        assert not missing if table == "job" else len(missing) <= 5, (table, missing[:3])
        expected.pop(table), got.pop(table)
    return {t: (len(expected.get(t, [])), len(got.get(t, []))) for t in set(expected) | set(got)
            if expected.get(t) != got.get(t)}


# ---------------------------------------------------------------- exports bound to their pause

def versioned_bucket(s3, bucket, key_arn=None):
    """The suite bucket as the template makes it: versioned (the import reads the version the
    snapshot recorded); with `key_arn`, also sealed by default with that key and an S3 Bucket
    Key (SSE-KMS: the bed then authorises S3's KMS calls as the caller's)."""
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if key_arn:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True}]})


def snapshot_conf(export_output: dict, environment: str) -> dict:
    """The import's conf as the resume passes it from the snapshot record."""
    return {"manifest": export_output["manifest"], "manifest_sha256": export_output["manifest_sha256"],
            "manifest_version_id": export_output["manifest_version_id"],
            "export_id": export_output["export_id"], "environment": environment}


def read_manifest(s3, conf: dict) -> dict:
    bucket, key = conf["manifest"][5:].split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=conf["manifest_version_id"])["Body"].read())


def put_manifest(s3, conf: dict, manifest: dict, name: str | None) -> dict:
    """Writes `manifest` next to the recorded one (`manifest-<name>.json`, or over it when name
    is None); returns the conf of a snapshot record naming exactly what was written, as a
    forger who could also write the record would."""
    bucket, key = conf["manifest"][5:].split("/", 1)
    if name:
        key = key.replace("manifest.json", f"manifest-{name}.json")
    body = json.dumps(manifest).encode()
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return dict(conf, manifest=f"s3://{bucket}/{key}", manifest_sha256=hashlib.sha256(body).hexdigest(),
                manifest_version_id=version)


def rewritten(s3, conf: dict, manifest: dict, table: str, change) -> dict:
    """A copy of `manifest` whose `table` object is change(its gunzipped bytes), written next to
    the original with a matching SHA-256 and row count: only the sealed values can tell."""
    bucket = conf["manifest"][5:].split("/", 1)[0]
    manifest = copy.deepcopy(manifest)
    entry = next(e for e in manifest["tables"] if e["table"] == table)
    text = change(gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()))
    body = gzip.compress(text)
    entry.update(key=entry["key"] + ".changed", sha256=hashlib.sha256(body).hexdigest(),
                 rows=len(text.splitlines()))
    s3.put_object(Bucket=bucket, Key=entry["key"], Body=body)
    return manifest


def binding_cases(s3, kms, conf: dict) -> dict:
    """{case: conf} of exports the import must refuse however well-formed they are:
    - changed: the manifest rewritten in place after the pause (a new S3 version at the same
      key); the conf names that version with the recorded SHA-256;
    - other_environment: another environment's export put in place (its manifest names it);
    - other_environments_key: a manifest claiming this environment whose data key KMS made for
      another one (the encryption context differs: KMS refuses);
    - made_up: a manifest and record nobody recorded (export id and digest invented)."""
    good = read_manifest(s3, conf)
    cases = {}
    changed = put_manifest(s3, conf, dict(good, active_dags=["someone_elses_dag"]), None)
    cases["changed"] = dict(conf, manifest_version_id=changed["manifest_version_id"])
    cases["other_environment"] = put_manifest(s3, conf, dict(good, environment="env-b"), "other-environment")
    key = kms.generate_data_key(KeyId=good["data_key"]["kms_key_id"], KeySpec="AES_256",
                                EncryptionContext={"mwaa-ops:environment": "env-b",
                                                   "mwaa-ops:export-id": good["export_id"]})
    foreign = copy.deepcopy(good)
    foreign["data_key"]["ciphertext"] = base64.b64encode(key["CiphertextBlob"]).decode()
    cases["other_environments_key"] = put_manifest(s3, conf, foreign, "other-key")
    cases["made_up"] = dict(conf, manifest_sha256="0" * 64, export_id="made-up")
    return cases


def kms_refuses_another_context(kms, conf, manifest) -> str:
    """The bed's KMS is as strict as AWS: the export's data key, asked for under another
    environment's encryption context, is refused (the error code)."""
    import botocore.exceptions
    blob = base64.b64decode(manifest["data_key"]["ciphertext"])
    try:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"mwaa-ops:environment": "env-b",
                                                            "mwaa-ops:export-id": conf["export_id"]})
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return "decrypted"
