"""mwaa_ops_export: pause the environment's DAGs, wait until nothing runs, and write the metadata
database to S3 (gzip JSON Lines per table, secrets envelope-encrypted with KMS, manifest last).
On Airflow 3 (no database access from tasks) it writes what the REST API and the task SDK can
read instead: pools, variables, connections and paused state.

conf: bucket, environment, kms_key_id (required); prefix ("metadata", the one the
execution role's documented policy allows), task_token,
region, wait_timeout_seconds (1800), poll_seconds (10). See README.md.
"""
import base64
import datetime as dt
import hashlib
import json
import os
import tempfile
import traceback
import uuid
from datetime import datetime

try:  # Airflow 3: the REST API / task SDK path (mwaa_ops_rest.py)
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.python import PythonOperator

import mwaa_ops_metadata as m

DAG_ID = "mwaa_ops_export"


def _major() -> int:
    import airflow
    return int(airflow.__version__.split(".")[0])


def _airflow2():
    import airflow
    if _major() >= 3:
        raise RuntimeError("Airflow 3 tasks cannot reach the metadata database: "
                           "the database export works on Airflow 2.x only (see README.md)")
    return airflow.__version__


def _destination(kms_key, region, prefix, environment, export_id):
    """Where an export goes and how it is sealed: (S3 client, one KMS data key per export, its
    envelope, the SSE-KMS arguments, the time, the date-partitioned root). The data key is
    sealed to this environment and this export (KMS encryption context)."""
    kms, s3 = m.client("kms", region), m.client("s3", region)
    data_key = kms.generate_data_key(KeyId=kms_key, KeySpec="AES_256",
                                     EncryptionContext=m.encryption_context(environment, export_id))
    now = dt.datetime.now(dt.timezone.utc)
    return (s3, data_key, m.Envelope(data_key["Plaintext"]),
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key}, now,
            m.export_root(prefix, environment, now))


def _sealed_key(data_key, environment, export_id) -> dict:
    """The manifest's data key: only KMS's ciphertext of it (the plaintext never leaves memory)."""
    return {"kms_key_id": data_key["KeyId"], "ciphertext": base64.b64encode(data_key["CiphertextBlob"]).decode(),
            "encryption_context": m.encryption_context(environment, export_id),
            "algorithm": "AES-256-GCM", "aad": "<table>.<column>.<row key>", "row_keys": m.ROW_KEYS}


def _publish(s3, bucket, root, sse, manifest) -> dict:
    """Writes the manifest, last of the export; returns what Step Functions is sent."""
    body = json.dumps(manifest, indent=1).encode()
    key = f"{root}/manifest.json"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **sse)
    entries = manifest["tables"]
    # The version and the SHA-256 go into the snapshot record: the import reads exactly this.
    return {"manifest": manifest["location"], "bucket": bucket, "manifest_key": key,
            "manifest_sha256": hashlib.sha256(body).hexdigest(),
            "manifest_version_id": put.get("VersionId"), "export_id": manifest["export_id"],
            "airflow_version": manifest["airflow_version"], "alembic_revision": manifest["alembic_revision"],
            "tables": len(entries), "rows": sum(e["rows"] for e in entries),
            "active_dags": manifest["active_dags"]}


def export(ti=None, dag_run=None, **_):
    conf = dict(dag_run.conf or {})
    try:
        return _export(conf, ti)
    except BaseException as e:  # the failure task reports it and re-enables the DAGs
        ti.xcom_push(key="error", value=m.failure_text(e))
        raise


def _export(conf: dict, ti) -> dict:
    bucket, environment = m.require(conf, "bucket"), m.own_environment(conf)
    kms_key = m.require(conf, "kms_key_id")  # secrets are never written without it
    prefix, region = conf.get("prefix", "metadata"), conf.get("region")
    token = m.TaskToken(conf.get("task_token"), region)
    token.verify()  # before any DAG is paused: only the pause starts an export
    if _major() >= 3:
        return _export_api(conf, ti, bucket, environment, kms_key, prefix, region, token)
    version = _airflow2()
    from airflow.models.crypto import get_fernet
    from airflow.settings import engine
    import mwaa_ops_db as db

    with engine.begin() as conn:
        active = db.pause_active_dags(conn)
    ti.xcom_push(key="paused_dags", value=active)  # at once: the failure task needs it
    db.wait_until_idle(engine, float(conf.get("wait_timeout_seconds", 1800)),
                       float(conf.get("poll_seconds", 10)), token.heartbeat)

    export_id = str(uuid.uuid4())
    s3, data_key, envelope, sse, now, root = _destination(kms_key, region, prefix, environment, export_id)
    fernet = get_fernet()

    with tempfile.TemporaryDirectory(prefix="mwaa-ops-export-") as tmp:
        def write_table(table, dump):
            path = os.path.join(tmp, table + "." + m.DATABASE_SUFFIX)
            count, max_id = m.write_gz(path, dump)
            key = m.object_key(root, table, m.DATABASE_SUFFIX)
            s3.upload_file(path, bucket, key, ExtraArgs=sse)
            entry = {"table": table, "key": key, "rows": count, "max_id": max_id,
                     "sha256": m.sha256_file(path), "bytes": os.path.getsize(path),
                     "columns": m.exported_columns(schema, table)}
            os.remove(path)
            token.heartbeat()
            return entry

        # One snapshot for every table: rows that reference each other stay consistent.
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                schema, _ = db.reflect(conn)
                revision = db.alembic_revision(conn)
                entries = db.export_tables(conn, schema, fernet, envelope, active, write_table)

    manifest = {
        "format": m.DATABASE_FORMAT, "export_id": export_id, "environment": environment,
        "created_at": now.isoformat(), "airflow_version": version, "alembic_revision": revision,
        "location": f"s3://{bucket}/{root}/manifest.json",
        "active_dags": active, "excluded_tables": sorted(t for t in schema if m.excluded(t)),
        "data_key": _sealed_key(data_key, environment, export_id),
        "secret_columns": sorted(f"{t}.{c}" for t, c in m.SECRET_COLUMNS),
        "tables": entries,
    }
    output = _publish(s3, bucket, root, sse, manifest)
    token.success(output)
    return output


def _export_api(conf, ti, bucket, environment, kms_key, prefix, region, token) -> dict:
    """Airflow 3: the environment's REST API (through MWAA InvokeRestApi) lists and pauses;
    the task SDK reads the real secret values the REST API masks."""
    import airflow
    from airflow.sdk import Connection, Variable
    import mwaa_ops_rest as r
    import mwaa_ops_schedule as schedule

    rest = r.Rest(environment, r.mwaa_client(region))
    dags = r.list_dags(rest)
    active = r.active_dags(dags)
    ti.xcom_push(key="paused_dags", value=active)  # before pausing: REST pauses one by one
    # A DAG whose id cannot be addressed stays on: its runs are not exported on 3.x anyway.
    ti.xcom_push(key="not_addressable", value=r.set_paused(rest, active, True))
    r.wait_until_idle(rest, float(conf.get("wait_timeout_seconds", 1800)),
                      float(conf.get("poll_seconds", 10)), token.heartbeat)

    export_id = str(uuid.uuid4())
    s3, data_key, envelope, sse, now, root = _destination(kms_key, region, prefix, environment, export_id)
    tables = {"slot_pool": r.pool_rows(rest),
              "variable": r.variable_rows(rest, Variable.get, envelope),
              "connection": r.connection_rows(rest, Connection.get, envelope),
              "dag_run": schedule.schedule_rows(rest, [d["dag_id"] for d in dags]),
              "dag": r.dag_rows(dags)}
    entries = []
    with tempfile.TemporaryDirectory(prefix="mwaa-ops-export-") as tmp:
        for table, columns in r.TABLES.items():
            path = os.path.join(tmp, table + ".jsonl.gz")
            count, _ = m.write_jsonl_gz(path, tables[table])
            key = m.object_key(root, table)
            s3.upload_file(path, bucket, key, ExtraArgs=sse)
            entries.append({"table": table, "key": key, "rows": count, "max_id": None,
                            "sha256": m.sha256_file(path), "bytes": os.path.getsize(path),
                            "columns": {c: "value" for c in columns}})
            token.heartbeat()

    version = airflow.__version__
    manifest = {
        "format": m.FORMAT, "source": r.SOURCE, "export_id": export_id, "environment": environment,
        "created_at": now.isoformat(), "airflow_version": version,
        "alembic_revision": None, "alembic_revision_note": r.NO_REVISION,
        "location": f"s3://{bucket}/{root}/manifest.json", "active_dags": active,
        "excluded_tables": [],  # the rest of the database is out of reach, see not_moved
        "not_moved": "run and task instance history (but each DAG's latest finished scheduled run: "
                     "where its schedule stood), XComs, logs, jobs, triggers, asset events, notes",
        "data_key": _sealed_key(data_key, environment, export_id),
        "secret_columns": sorted(f"{t}.{c}" for t, c in r.SECRETS),
        "tables": entries,
    }
    output = dict(_publish(s3, bucket, root, sse, manifest), source=r.SOURCE)
    token.success(output)
    return output


def _reenable(conf, paused) -> None:
    if _major() >= 3:
        import mwaa_ops_rest as r
        r.set_paused(r.Rest(conf["environment"], r.mwaa_client(conf.get("region"))), paused, False)
        return
    from airflow.settings import engine
    import mwaa_ops_db as db
    with engine.begin() as conn:
        db.set_paused(conn, paused, False)


def on_failure(ti=None, dag_run=None, **_):
    """Runs only when the export failed (or was killed): re-enable what it paused, tell Step
    Functions, and fail so the run shows as failed."""
    conf = dict(dag_run.conf or {})
    error = ti.xcom_pull(task_ids="export", key="error") or "export task failed without a message (killed?)"
    paused = ti.xcom_pull(task_ids="export", key="paused_dags") or []
    problems = []
    try:
        if paused:
            _reenable(conf, paused)
    except Exception:
        problems.append("re-enabling the paused DAGs failed: " + traceback.format_exc())
    message = f"{error}; re-enabled {len(paused)} DAGs" + "".join("; " + p for p in problems)
    m.report_failure(conf, "Metadata Export Failed", "MwaaOps.ExportFailed", message,
                     {"environment": conf.get("environment"), "dag_id": DAG_ID,
                      "run_id": dag_run.run_id, "dags_reenabled": [] if problems else paused})
    raise RuntimeError(message)


with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1), catchup=False, max_active_runs=1,
         is_paused_upon_creation=False, tags=["mwaa-ops"], default_args={"retries": 0},
         access_control=m.admin_only(),
         doc_md=__doc__):
    run = PythonOperator(task_id="export", python_callable=export)
    PythonOperator(task_id="on_failure", python_callable=on_failure, trigger_rule="one_failed") << run
