"""mwaa-ops metadata export/import: the database side (SQLAlchemy Core over a reflected schema,
PostgreSQL). Runs inside Airflow 2.x tasks; no Airflow import here, so tests can drive it too."""
from __future__ import annotations

import json
import time
import warnings

import sqlalchemy as sa

import mwaa_ops_copy as c
import mwaa_ops_metadata as m

# Still working: the export waits for them. A deferred task is not among them: all of it is in
# the database (its task instance's next_method / next_kwargs, its trigger row), so it is moved
# as it is and the new environment's triggerer resumes it -- waiting instead could take as long
# as the trigger does (a sensor waiting for tomorrow's file), past any pause window.
BUSY_STATES = ("running", "queued", "restarting")


def reflect(conn):
    """(schema dict as the manifest records it, SQLAlchemy MetaData)."""
    md = sa.MetaData()
    with warnings.catch_warnings():  # expression indexes of ab_user: irrelevant here
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        md.reflect(conn)
    schema = {}
    for t in md.tables.values():
        pk = [c.name for c in t.primary_key.columns]
        first = t.c[pk[0]] if len(pk) == 1 else None
        serial = pk[0] if (first is not None and isinstance(first.type, sa.Integer)
                           and first.server_default is not None
                           and "nextval" in str(first.server_default.arg)) else None
        uniques = {tuple(c.name for c in u.columns) for u in t.constraints if isinstance(u, sa.UniqueConstraint)}
        uniques |= {tuple(c.name for c in i.columns) for i in t.indexes if i.unique and len(i.columns)}
        fks = {(tuple(fk.column_keys), fk.referred_table.name, tuple(e.column.name for e in fk.elements))
               for fk in t.foreign_key_constraints}
        schema[t.name] = {
            "columns": {c.name: kind(c.type) for c in t.columns},
            "pk": pk, "serial": serial, "uniques": sorted(list(u) for u in uniques),
            "fks": [{"cols": list(c), "table": r, "ref": list(rc)} for c, r, rc in sorted(fks)],
        }
    return schema, md


def kind(type_) -> str:
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.LargeBinary):
        return "binary"
    return "value"


def alembic_revision(conn) -> str:
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


# ---------------------------------------------------------------- pause / wait

def pause_active_dags(conn) -> list:
    """Pause every active, unpaused DAG but ours; returns their ids (to re-enable later)."""
    rows = conn.execute(sa.text("SELECT dag_id FROM dag WHERE NOT is_paused AND is_active "
                                "AND dag_id NOT IN :own ORDER BY dag_id").bindparams(
        sa.bindparam("own", expanding=True)), {"own": list(m.OWN_DAGS)}).scalars().all()
    set_paused(conn, rows, True)
    return rows


def set_paused(conn, dag_ids, paused: bool) -> None:
    if dag_ids:
        conn.execute(sa.text("UPDATE dag SET is_paused = :p WHERE dag_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"p": paused, "ids": list(dag_ids)})


def busy_task_instances(conn) -> list:
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT dag_id, run_id, task_id, map_index, state FROM task_instance "
        "WHERE state IN :busy AND dag_id NOT IN :own ORDER BY 1, 2, 3, 4").bindparams(
        sa.bindparam("busy", expanding=True), sa.bindparam("own", expanding=True)),
        {"busy": list(BUSY_STATES), "own": list(m.OWN_DAGS)})]


def wait_until_idle(engine, timeout: float, poll: float, heartbeat=lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            busy = busy_task_instances(conn)
        if not busy:
            return
        if time.monotonic() >= deadline:
            listed = ", ".join(f"{d}/{r}/{t}[{i}]={s}" for d, r, t, i, s in busy[:20])
            raise TimeoutError(f"{len(busy)} task instances still busy after {timeout:.0f} s: {listed}")
        heartbeat()
        time.sleep(poll)


# ---------------------------------------------------------------- export

def export_tables(conn, schema, fernet, envelope, active_dags, write_table) -> list:
    """Every moved table, in dependency order, through write_table(table, dump) which calls
    dump(binary file) -> (rows, max id) and returns the manifest entry. conn should hold one
    REPEATABLE READ snapshot (its temporary tables are dropped at commit)."""
    c.render_settings(conn)
    dropped, entries = {}, []
    for table in m.table_order(schema):
        entries.append(write_table(table, lambda out, t=table: c.export_table(
            conn, schema, t, list(active_dags), dropped, fernet, envelope, out)))
    return entries


# ---------------------------------------------------------------- import

def imported_before(conn, export_id: str):
    value = conn.execute(sa.text("SELECT val FROM variable WHERE key = :k"),
                         {"k": m.MARKER_PREFIX + export_id}).scalar()
    return json.loads(value) if value else None


def import_tables(conn, schema, manifest, files, fernet, envelope, restore_paused=True,
                  heartbeat=lambda: None) -> dict:
    """Everything in one transaction (conn is inside begin()). files: table -> local path of
    the verified object, whose fields are in the order of the manifest's columns (checked to be
    this table's). Returns per-table counts. Paused state is written last."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": manifest["export_id"]})
    conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))  # hash joins of staged rows in memory
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '128MB'"))  # index builds of bulk tables
    c.render_settings(conn)
    bulk = [e["table"] for e in manifest["tables"] if e["rows"] >= c.BULK_ROWS]
    lock_tables(conn, [e["table"] for e in manifest["tables"]] + ["variable"], bulk)
    maps, stats, paused = {}, {}, []
    for entry in manifest["tables"]:
        table = entry["table"]
        _move_sequence(conn, schema, table, entry)
        stats[table] = _merge(conn, schema, table, entry["rows"], maps, paused, table in bulk,
                              lambda: c.Rows(files[table], table, entry["columns"], fernet, envelope,
                                             manifest["airflow_version"]))
        heartbeat()
    for dag_id, is_paused in paused if restore_paused else ():  # last: nothing may run before pools and history are in
        conn.execute(sa.text("UPDATE dag SET is_paused = :p WHERE dag_id = :d"), {"p": is_paused, "d": dag_id})
    conn.execute(sa.text("INSERT INTO variable (key, val, description, is_encrypted) VALUES (:k, :v, :d, false)"),
                 {"k": m.MARKER_PREFIX + manifest["export_id"], "d": "mwaa-ops: this export was imported",
                  "v": json.dumps({"manifest": manifest.get("location"), "tables": stats})})
    return stats


def lock_tables(conn, tables, bulk, attempts=3) -> None:
    """Takes every lock the import needs before its first write: the bulk tables (whose indexes
    it drops) exclusively, the others against writes (reads go on). The live environment's
    scheduler then waits for the import instead of holding a row the import needs later while
    waiting for a table the import holds (a deadlock PostgreSQL would end by failing one of
    them). A deadlock while taking the locks themselves is tried again."""
    names = lambda ts: ", ".join(f'"{t}"' for t in ts)
    rest = [t for t in dict.fromkeys(tables) if t not in bulk]
    for attempt in range(attempts):
        try:
            with conn.begin_nested():
                if bulk:
                    conn.execute(sa.text(f"LOCK TABLE {names(bulk)} IN ACCESS EXCLUSIVE MODE"))
                if rest:
                    conn.execute(sa.text(f"LOCK TABLE {names(rest)} IN EXCLUSIVE MODE"))
            return
        except sa.exc.OperationalError as e:
            if getattr(e.orig, "pgcode", None) != "40P01" or attempt == attempts - 1:
                raise


def _move_sequence(conn, schema, table, entry) -> None:
    """Moves the table's sequence past every id the import might keep, before inserting, so
    neither the live scheduler nor a fresh id given on a clash can take one of them."""
    serial = schema[table]["serial"]
    if not serial:
        return
    seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": serial}).scalar()
    current = conn.execute(sa.text(f'SELECT max("{serial}") FROM "{table}"')).scalar() or 0
    last = conn.execute(sa.text("SELECT COALESCE(pg_sequence_last_value(CAST(:s AS regclass)), 0)"),
                        {"s": seq}).scalar()
    conn.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"),
                 {"s": seq, "v": max(entry.get("max_id") or 0, current, last, 1)})


def _direct(conn, schema, table, maps) -> bool:
    """Whether the COPY may go straight into the table: nothing in it to rewrite, and a row
    already present could only break a unique key -- the table is empty, or its rows have no
    surrogate id (which could clash) and a unique key is their natural key (task_instance: the
    import's own task instance is there, and stays apart)."""
    if table == "dag" or c.remapped_refs(schema, table, maps):
        return False
    info, key = schema[table], m.natural_key(schema, table)
    if not info["serial"] and key and (key == info["pk"] or key in info["uniques"]):
        return True
    return not conn.execute(sa.text(f'SELECT EXISTS (SELECT 1 FROM "{table}")')).scalar()


def _merge(conn, schema, table, rows, maps, paused, bulk, source_rows) -> dict:
    """One table, in a savepoint. A table that _direct allows takes the COPY directly; a row
    already present (the live environment's scheduler or DAG processor may write one meanwhile)
    breaks a unique key, and then the savepoint is rolled back and the table goes through
    staging instead.
    A bulk table is loaded without its plain indexes and foreign keys, which are put back (and
    checked) before the savepoint ends."""
    for fast in ((True, False) if _direct(conn, schema, table, maps) else (False,)):
        saved_maps, saved_paused = dict(maps), list(paused)
        try:
            with conn.begin_nested():
                source = source_rows()
                restore = c.defer_checks(conn, table) if bulk else []
                if fast:
                    stats = {"inserted": c.copy_in(conn, f'"{table}"', source), "existing": 0,
                             "updated": 0, "remapped": 0}
                else:
                    conn.execute(sa.text(f'CREATE TEMP TABLE {c.STAGE} (LIKE "{table}") ON COMMIT DROP'))
                    c.copy_in(conn, c.STAGE, source)
                    stats = c.merge(conn, schema, table, maps, paused)
                    conn.execute(sa.text(f"DROP TABLE {c.STAGE}"))
                if source.rows != rows:  # verified before; a difference now is a bug, not a refusal
                    raise RuntimeError(f"table {table}: read {source.rows} rows, the manifest says {rows}")
                c.run_all(conn, restore)
                return dict(stats, rebuilt=len(restore))  # indexes and foreign keys put back
        except Exception as e:  # SQLAlchemy's errors wrap the driver's; COPY raises the driver's own
            maps.clear(), maps.update(saved_maps)
            paused[:] = saved_paused
            orig = getattr(e, "orig", None) or e
            if fast and getattr(orig, "pgcode", None) == "23505":  # unique violation: stage it
                continue
            if isinstance(e, RuntimeError):
                raise
            raise RuntimeError(f"import of table {table} failed: {orig}") from e
