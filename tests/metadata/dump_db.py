"""Normalised dump of a metadata DB, for comparing two databases row by row.

    <airflow venv>/bin/python dump_db.py DATABASE_URL FERNET_KEY
      ->  JSON {"tables": {table: [row, ...]}, "sequences_behind": {...}, "ddl": [index/constraint, ...]}

Written apart from the import code on purpose: a surrogate id is replaced by the identity of
the row it names (dag_run -> dag_id/run_id, job -> its immutable columns, other rows -> their
own normalised content), so two databases compare equal whatever ids the import chose.
Secrets are decrypted with the given Fernet key. Rows of the export/import DAGs are left out.
"""
import json
import sys
import warnings

import sqlalchemy as sa
from cryptography.fernet import Fernet

import mwaa_ops_metadata as m  # only for the documented table exclusions and order

OWN = {"mwaa_ops_export", "mwaa_ops_import"}
JOB_IDENTITY = ["job_type", "dag_id", "hostname", "start_date", "executor_class", "unixname"]
ID_REFS = {"job_id": "job", "queued_by_job_id": "job", "creating_job_id": "job", "triggerer_id": "job",
           "dag_run_id": "dag_run"}
TIMESTAMPS_OF_PARSING = {"created_at", "updated_at"}  # rows the new environment's parser made


def value(v):
    if isinstance(v, bytes) or isinstance(v, memoryview):
        return bytes(v).hex()
    return m.encode("value", v)


def main(url, fernet_key):
    fernet = Fernet(fernet_key.encode())
    engine = sa.create_engine(url)
    md = sa.MetaData()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md.reflect(engine)
    fks = {t.name: {fk.column_keys[0]: fk.referred_table.name for fk in t.foreign_key_constraints
                    if len(fk.column_keys) == 1} for t in md.tables.values()}
    schema = {t.name: {"columns": {c.name: "value" for c in t.columns},
                       "pk": [c.name for c in t.primary_key.columns],
                       "serial": "id" if "id" in t.c and [c.name for c in t.primary_key.columns] == ["id"] else None,
                       "uniques": [], "fks": [{"cols": list(fk.column_keys), "table": fk.referred_table.name,
                                               "ref": [e.column.name for e in fk.elements]}
                                              for fk in t.foreign_key_constraints]}
              for t in md.tables.values()}
    identity, out = {}, {}
    with engine.connect() as conn:
        own_runs = set(conn.execute(sa.text("SELECT id FROM dag_run WHERE dag_id IN :own").bindparams(
            sa.bindparam("own", expanding=True)), {"own": sorted(OWN)}).scalars())
        for table in m.table_order(schema):
            t, rows = md.tables[table], []
            identity[table] = {}
            for rec in conn.execute(sa.select(t)):
                row = {c: value(v) for c, v in rec._mapping.items()}
                if row.get("dag_id") in OWN or row.get("dag_run_id") in own_runs:
                    continue
                for (tab, col), flag in m.SECRET_COLUMNS.items():
                    if tab == table and isinstance(row.get(col), dict):  # a json column (trigger.kwargs < 2.9)
                        row[col] = json.dumps(row[col], sort_keys=True)
                    if tab == table and row.get(col) is not None and (row[flag] if flag else not row[col].startswith("{")):
                        row[col] = fernet.decrypt(row[col].encode()).decode()
                rid = row.pop("id", None) if schema[table]["serial"] else None
                for col in list(row):
                    target = fks[table].get(col) or ID_REFS.get(col)
                    if target in identity and row[col] is not None and target != table:
                        row[col] = identity[target].get(row[col], f"<dangling {target} {row[col]}>")
                if table == "dag":  # the rest of a dag row comes from the new environment's parser
                    row = {c: row[c] for c in ("dag_id", "is_paused", "is_active")}
                if table.startswith(("dataset", "dag_schedule", "task_outlet")) and table != "dataset_event":
                    row = {c: v for c, v in row.items() if c not in TIMESTAMPS_OF_PARSING}
                if table == "log_template":  # migration writes its own: matched by content
                    row.pop("created_at")
                ident = {c: row[c] for c in JOB_IDENTITY} if table == "job" else row
                if table == "trigger":  # whose triggerer runs it is not what the trigger is
                    ident = {c: v for c, v in row.items() if c != "triggerer_id"}
                if table == "dag_run":  # a run still going changes (its scheduling): not what it is
                    ident = {c: row[c] for c in ("dag_id", "run_id")}
                if rid is not None:
                    identity[table][rid] = json.dumps(ident, sort_keys=True)
                rows.append(json.dumps(row, sort_keys=True))
            out[table] = sorted(rows)
        # Every sequence must be past the ids in its table, or the next insert fails.
        behind = {}
        for table, info in schema.items():
            if info["serial"]:
                seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
                if seq is None:
                    continue
                last = conn.execute(sa.text("SELECT COALESCE(pg_sequence_last_value(CAST(:s AS regclass)), 0)"),
                                    {"s": seq}).scalar()
                top = conn.execute(sa.select(sa.func.max(md.tables[table].c.id))).scalar() or 0
                if last < top:
                    behind[table] = [last, top]
        # Every index and constraint as PostgreSQL would create it again (the import drops and
        # recreates some of them for speed).
        ddl = sorted(conn.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' UNION ALL "
            "SELECT format('%s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace")).scalars())
    json.dump({"tables": out, "sequences_behind": behind, "ddl": ddl}, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:3])
