"""The work of tests/bench/metadata.py, run by an Airflow venv's Python with AIRFLOW__
settings pointing at one metadata database. Prints one JSON line.

    seed RUNS TIS_PER_RUN SECRET    history: ~RUNS dag runs x TIS_PER_RUN task instances, an
                                    XCom for every 10th task instance, a connection and a
                                    variable holding SECRET
    ours-export BUCKET KMS_KEY      mwaa-ops' export (infra/dags), S3 and KMS on moto
    ours-import MANIFEST_URI        mwaa-ops' import
    mwaa-dr-export DIR              mwaa-dr 2.2.0's backup of every table it knows, to DIR
    mwaa-dr-import DIR              mwaa-dr 2.2.0's restore, tables in dependency order
    facts SECRET                    what a target database holds after an import
    create-database NAME            a fresh database beside this one; prints its URL
"""
import json
import os
import sys

import sqlalchemy as sa

DAG = "bench_history"


def engine():
    from airflow.settings import engine as e
    return e


def fill(conn, table, given):
    """INSERT ... SELECT for `given` column expressions; other NOT NULL columns without a
    default get a value of their type, so the seed follows whatever schema this Airflow has."""
    cols = conn.execute(sa.text(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :t "
        "AND is_nullable = 'NO' AND column_default IS NULL"), {"t": table}).fetchall()
    by_type = {"integer": "0", "bigint": "0", "smallint": "0", "boolean": "false",
               "double precision": "0", "bytea": "''::bytea", "json": "'{}'::json",
               "jsonb": "'{}'::jsonb", "timestamp with time zone": "now()"}
    exprs = dict(given)
    for name, kind in cols:
        exprs.setdefault(name, by_type.get(kind, "'x'"))
    return ", ".join(exprs), ", ".join(exprs.values())


def seed(runs, tis, secret):
    from airflow.models import Connection, Variable
    from airflow.utils.session import create_session
    with engine().begin() as conn:
        names, values = fill(conn, "dag", {"dag_id": f"'{DAG}'", "is_paused": "false",
                                           "is_active": "false", "fileloc": "'/dags/bench.py'"})
        conn.execute(sa.text(f"INSERT INTO dag ({names}) SELECT {values} ON CONFLICT DO NOTHING"))
        names, values = fill(conn, "dag_run", {
            "dag_id": f"'{DAG}'", "run_id": "'bench__' || g", "state": "'success'",
            "run_type": "'manual'", "execution_date": "timestamp '2025-01-01' + g * interval '1 minute'",
            "start_date": "now()", "end_date": "now()", "conf": "NULL",
            "clear_number": "0", "log_template_id": "NULL"})
        # Half again as many runs, then every third deleted (as `airflow db clean` does):
        # real histories have gaps in their ids.
        conn.execute(sa.text(f"INSERT INTO dag_run ({names}) SELECT {values} "
                             f"FROM generate_series(1, {runs + runs // 2}) g"))
        conn.execute(sa.text("DELETE FROM dag_run WHERE dag_id = :d AND id % 3 = 0"), {"d": DAG})
        names, values = fill(conn, "task_instance", {
            "dag_id": f"'{DAG}'", "task_id": "'task_' || t", "run_id": "r.run_id",
            "map_index": "-1", "state": "'success'", "try_number": "1", "max_tries": "0",
            "pool": "'default_pool'", "pool_slots": "1", "queue": "'default'",
            "priority_weight": "1", "operator": "'PythonOperator'",
            "start_date": "now()", "end_date": "now()", "duration": "1.5",
            "hostname": "'worker-1'", "unixname": "'airflow'", "custom_operator_name": "NULL",
            "executor_config": "NULL", "next_kwargs": "NULL", "rendered_map_index": "NULL",
            "updated_at": "now()"})
        conn.execute(sa.text(f"INSERT INTO task_instance ({names}) SELECT {values} "
                             f"FROM dag_run r, generate_series(1, {tis}) t WHERE r.dag_id = :d"),
                     {"d": DAG})
        conn.execute(sa.text(
            "INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
            "SELECT r.id, ti.task_id, -1, 'return_value', ti.dag_id, ti.run_id, "
            "convert_to('{\"rows\": 42}', 'UTF8'), now() FROM task_instance ti "
            "JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
            "WHERE ti.dag_id = :d AND substr(ti.task_id, 6)::int % 10 = 1"), {"d": DAG})
    with create_session() as s:
        s.add(Connection(conn_id="bench_warehouse", conn_type="postgres", host="db.internal",
                         login="etl", password=secret, extra=json.dumps({"token": secret})))
    Variable.set("bench_secret_key", secret)
    return facts(secret)


def facts(secret):
    from airflow.models import Connection, Variable
    with engine().connect() as conn:
        count = lambda t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
        orphans = conn.execute(sa.text(
            "SELECT count(*) FROM xcom x LEFT JOIN dag_run r ON r.id = x.dag_run_id "
            "WHERE r.id IS NULL OR r.run_id <> x.run_id")).scalar()
        # Would Airflow's next dag run get an id that is already taken?
        seq = conn.execute(sa.text(
            "SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM dag_run_id_seq")).scalar()
        taken = conn.execute(sa.text("SELECT count(*) FROM dag_run WHERE id = :i"), {"i": seq}).scalar()
        counts = {t: count(t) for t in ("dag_run", "task_instance", "xcom")}
    try:
        password = Connection.get_connection_from_secrets("bench_warehouse").password
    except Exception as e:  # noqa: BLE001 - reported as a fact
        password = f"unreadable: {type(e).__name__}"
    variable = Variable.get("bench_secret_key", default_var=None)
    return {**counts, "xcom_pointing_elsewhere": orphans,
            "next_dag_run_id_taken": bool(taken),
            "connection_password_ok": password == secret, "variable_ok": variable == secret}


def create_database(name):
    """A fresh database beside this one (same server and user); returns its URL."""
    import psycopg2
    url = engine().url
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username,
                            password=url.password, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return {"url": url.set(database=name).render_as_string(hide_password=False)}


class FakeTaskInstance:
    def xcom_push(self, key, value):
        pass


def ours_export(bucket, kms_key, task_token):
    import mwaa_ops_export
    return mwaa_ops_export._export({"bucket": bucket, "environment": "bench", "kms_key_id": kms_key,
                                    "poll_seconds": 1, "task_token": task_token}, FakeTaskInstance())


def ours_import(conf):
    """conf: the import's conf as JSON (the snapshot record's fields and a live task token)."""
    import mwaa_ops_import
    return mwaa_ops_import.run_import(json.loads(conf))


def mwaa_dr_tables(directory):
    """mwaa-dr's tables for this Airflow, storing under AIRFLOW_HOME/dags/<prefix>."""
    from mwaa_dr.v_2_10.dr_factory import DRFactory_2_10
    home = os.environ["AIRFLOW_HOME"]
    os.makedirs(os.path.join(home, "dags"), exist_ok=True)
    link = os.path.join(home, "dags", "mwaa-dr")
    if not os.path.exists(link):
        os.symlink(directory, link)
    factory = DRFactory_2_10(dag_id="bench", path_prefix="mwaa-dr", storage_type="LOCAL")
    return factory, factory.tables()


def mwaa_dr_export(directory):
    os.makedirs(directory, exist_ok=True)
    _, tables = mwaa_dr_tables(directory)
    for table in tables:
        table.backup()
    return {"tables": [t.name for t in tables]}


def mwaa_dr_import(directory):
    factory, tables = mwaa_dr_tables(directory)
    done, order = set(), []
    # The restore DAG runs a table after its "dependents" (DependencyModel.apply makes
    # node >> dependency): dag_run before task_instance.
    while len(order) < len(tables):
        ready = [t for t in tables if t not in done
                 and all(d in done for d in factory.model.dependents(t))]
        if not ready:
            raise SystemExit("mwaa-dr's table dependencies have a cycle")
        for t in ready:
            t.restore()
            done.add(t)
            order.append(t.name)
    return {"order": order}


def main():
    command, args = sys.argv[1], sys.argv[2:]
    out = {
        "seed": lambda: seed(int(args[0]), int(args[1]), args[2]),
        "ours-export": lambda: ours_export(*args),
        "ours-import": lambda: ours_import(*args),
        "mwaa-dr-export": lambda: mwaa_dr_export(*args),
        "mwaa-dr-import": lambda: mwaa_dr_import(*args),
        "facts": lambda: facts(*args),
        "create-database": lambda: create_database(*args),
    }[command]()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
