"""mwaa_ops_import: verify an export made by mwaa_ops_export and merge it into this environment's
metadata database in one transaction; secrets re-encrypted with this environment's Fernet key.

conf (from the resume state machine's snapshot record; all required): manifest
("s3://bucket/.../manifest.json"), manifest_version_id, manifest_sha256, export_id,
environment, task_token (Step Functions must know it: a run triggered by hand reads nothing);
optional: region, restore_paused (true: DAGs get the paused state they had before the
export). See README.md.
On Airflow 3 it imports a 3.x REST API export (pools, variables, connections, where each DAG's
schedule stood, paused state)
through the environment's REST API (MWAA InvokeRestApi): upserts, not one transaction.
conf on 3.x also: environment (required there), dag_wait_timeout_seconds (300), poll_seconds (10).
"""
import base64
import json
import os
import tempfile
from datetime import datetime

try:  # Airflow 3: the REST API path (mwaa_ops_rest.py)
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.python import PythonOperator

import mwaa_ops_metadata as m

DAG_ID = "mwaa_ops_import"


def import_(ti=None, dag_run=None, **_):
    conf = dict(dag_run.conf or {})
    try:
        return run_import(conf)
    except BaseException as e:
        ti.xcom_push(key="error", value=m.failure_text(e))
        raise


def _missing(e) -> bool:
    code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


def _bound_export(conf: dict) -> tuple:
    """(token, S3 client, bucket, location, manifest, envelope) of the export the pause
    recorded, or Refused: the task token first (nothing is read for a run Step Functions does
    not wait for), then exactly the recorded version of the manifest, its SHA-256, its
    environment and export id, and the data key, which KMS opens only under this
    environment's and this export's encryption context."""
    region = conf.get("region")
    token = m.TaskToken(conf.get("task_token"), region)
    token.verify()
    environment, location = m.own_environment(conf), m.require(conf, "manifest")
    version = m.require(conf, "manifest_version_id")
    bucket, key = m.parse_s3_uri(location)
    s3, kms = m.client("s3", region), m.client("kms", region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    except Exception as e:
        raise m.Refused(f"manifest {location} (version {version}) unreadable: {e}") from None
    manifest = m.bound_manifest(body, conf, environment)
    try:
        data_key = kms.decrypt(CiphertextBlob=base64.b64decode(manifest["data_key"]["ciphertext"]),
                               EncryptionContext=m.encryption_context(environment, manifest["export_id"]))
    except Exception as e:
        raise m.Refused(f"KMS refused the export's data key for environment {environment!r}, export "
                        f"{manifest['export_id']!r}: {e}") from None
    return token, s3, bucket, location, manifest, m.Envelope(data_key["Plaintext"])


def run_import(conf: dict) -> dict:
    """Verify everything first (nothing is written before the transaction), then import."""
    import airflow
    if int(airflow.__version__.split(".")[0]) >= 3:
        return run_import_api(conf, airflow.__version__)
    from airflow.models.crypto import get_fernet
    from airflow.settings import engine
    import mwaa_ops_copy as c
    import mwaa_ops_db as db

    token, s3, bucket, location, manifest, envelope = _bound_export(conf)
    with engine.connect() as conn:
        schema, _ = db.reflect(conn)
        revision = db.alembic_revision(conn)
    m.check_manifest(manifest, airflow.__version__, revision, schema)
    if [e["table"] for e in manifest["tables"]] != [t for t in m.table_order(schema) if t in
                                                      {e["table"] for e in manifest["tables"]}]:
        raise m.Refused("manifest tables are not in dependency order")

    with tempfile.TemporaryDirectory(prefix="mwaa-ops-import-") as tmp, token.beating():
        files = {}
        for entry in manifest["tables"]:  # streamed later: here only counted
            files[entry["table"]], _ = _verified_object(s3, bucket, entry, tmp, m.count_lines)
            c.open_sealed(files[entry["table"]], entry["table"], entry["columns"], envelope)

        with engine.begin() as conn:  # one transaction: all of it or nothing
            before = db.imported_before(conn, manifest["export_id"])
            stats = before["tables"] if before else db.import_tables(
                conn, schema, manifest, files, get_fernet(), envelope,
                restore_paused=conf.get("restore_paused", True))
            token.check_alive()  # raising here rolls the transaction back
    output = {"manifest": location, "export_id": manifest["export_id"], "already_imported": bool(before),
              "rows": sum(e["rows"] for e in manifest["tables"]),
              "inserted": sum(s["inserted"] for s in stats.values()),
              "remapped": sum(s["remapped"] for s in stats.values()),
              "active_dags": manifest["active_dags"]}
    token.success(output)
    return output


def _verified_object(s3, bucket, entry, tmp, read) -> tuple:
    """(local path, read(path)) of one object, after its checksum and row count match the
    manifest; `read` counts the rows, or keeps them."""
    path = os.path.join(tmp, entry["table"] + ".gz")
    where = f"object s3://{bucket}/{entry['key']} (table {entry['table']})"
    try:
        s3.download_file(bucket, entry["key"], path)
    except Exception as e:
        raise m.Refused(f"{where} {'missing' if _missing(e) else f'unreadable ({e})'}") from e
    digest = m.sha256_file(path)
    m.check_object(entry, digest, entry["rows"])  # checksum first: a damaged object is named as such
    try:
        out = read(path)
    except (OSError, EOFError, ValueError) as e:
        raise m.Refused(f"{where} is not readable gzip: {e}") from e
    m.check_object(entry, digest, out if isinstance(out, int) else len(out))
    return path, out


def _verified_rows(s3, bucket, entry, tmp) -> list:
    """The rows of one object, after its checksum and row count match the manifest."""
    return _verified_object(s3, bucket, entry, tmp, lambda path: list(m.gzip_lines(path)))[1]


def run_import_api(conf: dict, version: str) -> dict:
    """Airflow 3: verify the whole export (objects, checksums, rows, secrets decrypt) before
    the first write; then upsert pools, variables, connections, carry each DAG's schedule
    (mwaa_ops_schedule.py), restore paused state, and write the marker last (REST is not one
    transaction: a retry redoes every upsert until the marker exists)."""
    import mwaa_ops_rest as r
    import mwaa_ops_schedule as schedule

    token, s3, bucket, location, manifest, envelope = _bound_export(conf)
    environment, region = conf["environment"], conf.get("region")  # InvokeRestApi names it
    r.check_manifest(manifest, version)
    tables = {}
    with tempfile.TemporaryDirectory(prefix="mwaa-ops-import-") as tmp:
        for entry in manifest["tables"]:
            rows = _verified_rows(s3, bucket, entry, tmp)
            r.check_rows(entry["table"], rows)
            tables[entry["table"]] = r.unseal(entry["table"], rows, envelope)
            token.heartbeat()

    rest = r.Rest(environment, r.mwaa_client(region))
    output = {"manifest": location, "export_id": manifest["export_id"], "source": r.SOURCE,
              "rows": sum(e["rows"] for e in manifest["tables"]), "active_dags": manifest["active_dags"]}
    before = r.imported_before(rest, manifest["export_id"])
    if before:  # a second run: nothing is written again
        output = dict(output, already_imported=True, inserted=0, remapped=0,
                      written=before.get("written", {}), dags_missing=before.get("dags_missing", []))
        token.success(output)
        return output
    written = {"slot_pool": len(rest.bulk("/pools", r.pool_entities(tables["slot_pool"]))),
               "variable": len(rest.bulk("/variables", r.variable_entities(tables["variable"]))),
               "connection": len(rest.bulk("/connections", r.connection_entities(tables["connection"])))}
    missing, schedules = [], None
    timeout, poll = float(conf.get("dag_wait_timeout_seconds", 300)), float(conf.get("poll_seconds", 10))
    wanted = [d["dag_id"] for d in tables["dag"] if d["dag_id"] not in m.OWN_DAGS]
    present = r.wait_for_dags(rest, wanted, timeout, poll, token.heartbeat)
    if tables["dag_run"]:  # before any DAG is switched on: none may start over from its start date
        schedules = schedule.carry_all(rest, tables["dag_run"], present, timeout, poll, token.heartbeat)
        written["dag_run"] = len(schedules["created"])
    if conf.get("restore_paused", True):  # last of the user's settings: nothing runs before pools exist
        changes, missing = r.paused_changes(tables["dag"], present)
        unaddressed = []
        for paused in (True, False):  # pause first: a DAG meant to stay off never starts meanwhile
            unaddressed += r.set_paused(rest, [d for d, p in changes.items() if p is paused], paused)
        written["dag"] = len(changes) - len(unaddressed)
        missing += unaddressed
    # Missing DAGs (not parsed in time, or ids too long to address) are named in the output
    # and the marker; a second import does not retry them: the operator sets them by hand.
    record = {"manifest": location, "written": written, "dags_missing": missing}
    rest.call("POST", "/variables", body={"key": r.marker(manifest["export_id"]), "value": json.dumps(record),
                                          "description": "mwaa-ops: this export was imported"}, allow=(409,))
    output = dict(output, already_imported=False, inserted=sum(written.values()), remapped=0,
                  written=written, dags_missing=missing, schedules=schedules)
    token.success(output)
    return output


def on_failure(ti=None, dag_run=None, **_):
    conf = dict(dag_run.conf or {})
    error = ti.xcom_pull(task_ids="import", key="error") or "import task failed without a message (killed?)"
    kind = "MwaaOps.ImportRefused" if error.startswith("Refused") else "MwaaOps.ImportFailed"
    m.report_failure(conf, "Metadata Import Failed", kind, error,
                     {"environment": conf.get("environment"), "manifest": conf.get("manifest"),
                      "dag_id": DAG_ID, "run_id": dag_run.run_id})
    raise RuntimeError(error)


with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1), catchup=False, max_active_runs=1,
         is_paused_upon_creation=False, tags=["mwaa-ops"], default_args={"retries": 0},
         access_control=m.admin_only(),
         doc_md=__doc__):
    run = PythonOperator(task_id="import", python_callable=import_)
    PythonOperator(task_id="on_failure", python_callable=on_failure, trigger_rule="one_failed") << run
