"""mwaa-ops metadata export/import: the database side (SQLAlchemy Core over a reflected schema,
PostgreSQL). Runs inside Airflow 2.x tasks; no Airflow import here, so tests can drive it too."""
from __future__ import annotations

import json
import time
import warnings

import sqlalchemy as sa

import mwaa_ops_metadata as m

BATCH = 2000
# A table holding at most this many rows before the import has them all read once (natural
# keys and ids) instead of being asked per batch: in a new environment most tables are empty
# or nearly so, and a join per batch against a table the import itself is filling made the
# import of 1M task instances quadratic in practice (every batch scanned the growing table).
PRELOAD_ROWS = 200_000
BUSY_STATES = ("running", "queued", "deferred", "restarting")  # still working: wait for them


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

def export_tables(conn, schema, md, fernet, envelope, active_dags, write_table) -> list:
    """Stream every moved table, in dependency order, through write_table(table, rows iterator)
    which returns the manifest entry. conn should hold one REPEATABLE READ snapshot."""
    order = m.table_order(schema)
    watched = {}  # referred table -> referred column tuples that some table points at
    for t in order:
        for _, target, ref_cols in m.refs(schema, t):
            watched.setdefault(target, set()).add(ref_cols)
    dropped = {}  # table -> {column tuple -> set of value tuples} of rows left out
    entries = []
    for table in order:
        entries.append(write_table(table, _rows(conn, schema, md, table, fernet, envelope,
                                                set(active_dags), watched, dropped)))
    return entries


def _rows(conn, schema, md, table, fernet, envelope, active, watched, dropped):
    t, kinds = md.tables[table], schema[table]["columns"]
    cols = [sa.cast(c, sa.Text).label(c.name) if kinds[c.name] == "json" else c for c in t.columns]
    query = sa.select(*cols).order_by(*t.primary_key.columns)
    table_refs = m.refs(schema, table)
    to_null = [c for fk in schema[table]["fks"] if m.excluded(fk["table"]) for c in fk["cols"]]
    mine = dropped.setdefault(table, {c: set() for c in watched.get(table, ())})
    result = conn.execution_options(stream_results=True).execute(query)
    for rec in result:
        row = dict(rec._mapping)
        own = row.get("dag_id") in m.OWN_DAGS or any(
            tuple(row[c] for c in cols_) in dropped.get(target, {}).get(ref_cols, ())
            for cols_, target, ref_cols in table_refs)
        if own:  # the export's / import's own runs: remember them so their children go too
            for ref_cols, values in mine.items():
                values.add(tuple(row[c] for c in ref_cols))
            continue
        for c in to_null:  # e.g. note.user_id -> ab_user, which is not moved
            row[c] = None
        if table == "dag" and row["dag_id"] in active:
            row["is_paused"] = False  # the state before the export paused it
        for (tab, col), flag in m.SECRET_COLUMNS.items():
            if tab == table and row.get(col) is not None:
                row[col] = envelope.encrypt(_plain(fernet, row, col, flag), f"{tab}.{col}")
        yield {c: m.encode(kinds[c], v) for c, v in row.items()}


def _plain(fernet, row, col, flag) -> str:
    value = row[col]
    encrypted = row[flag] if flag else not value.startswith("{")
    return fernet.decrypt(value.encode()).decode() if encrypted else value


write_jsonl_gz = m.write_jsonl_gz  # pure: lives with the other format code (3.x uses it too)


# ---------------------------------------------------------------- import

def imported_before(conn, export_id: str):
    value = conn.execute(sa.text("SELECT val FROM variable WHERE key = :k"),
                         {"k": m.MARKER_PREFIX + export_id}).scalar()
    return json.loads(value) if value else None


def import_tables(conn, schema, md, manifest, files, fernet, envelope, restore_paused=True) -> dict:
    """Everything in one transaction (conn is inside begin()). files: table -> local path.
    Returns per-table counts. Paused state is written last."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": manifest["export_id"]})
    idmaps, stats, paused = {}, {}, []
    for entry in manifest["tables"]:
        table = entry["table"]
        stats[table] = _load(conn, schema, md, table, entry, m.gzip_lines(files[table]),
                             fernet, envelope, idmaps, paused)
    for dag_id, is_paused in paused if restore_paused else ():  # last: nothing may run before pools and history are in
        conn.execute(sa.text("UPDATE dag SET is_paused = :p WHERE dag_id = :d"), {"p": is_paused, "d": dag_id})
    conn.execute(sa.text("INSERT INTO variable (key, val, description, is_encrypted) VALUES (:k, :v, :d, false)"),
                 {"k": m.MARKER_PREFIX + manifest["export_id"], "d": "mwaa-ops: this export was imported",
                  "v": json.dumps({"manifest": manifest.get("location"), "tables": stats})})
    return stats


def _sequence(conn, table, column):
    return conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()


def _load(conn, schema, md, table, entry, rows, fernet, envelope, idmaps, paused) -> dict:
    info, t = schema[table], md.tables[table]
    kinds, serial, key = info["columns"], info["serial"], m.natural_key(schema, table)
    table_refs = m.refs(schema, table)
    plain = sa.table(table, *[sa.column(c) for c in kinds])  # untyped: PostgreSQL parses the text
    seq = None
    if serial:  # move the sequence past every id we might keep, so concurrent inserts can't take one
        seq = _sequence(conn, table, serial)
        current = conn.execute(sa.select(sa.func.max(t.c[serial]))).scalar() or 0
        last = conn.execute(sa.text("SELECT COALESCE(pg_sequence_last_value(CAST(:s AS regclass)), 0)"),
                            {"s": seq}).scalar()
        conn.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v)"),
                     {"s": seq, "v": max(entry.get("max_id") or 0, current, last, 1)})
    stats = {"inserted": 0, "existing": 0, "updated": 0, "remapped": 0}
    # Exported rows are unique (one snapshot): only rows the table held before the import can
    # match them, so those are what is looked up.
    before = _before(conn, t, kinds, key, serial)
    batch = []
    for row in rows:
        row = {c: m.decode(kinds[c], v) for c, v in row.items()}
        m.remap(row, table_refs, idmaps)
        _reseal(table, row, fernet, envelope)
        if table == "dag":
            paused.append((row["dag_id"], row["is_paused"]))
        batch.append(row)
        if len(batch) >= BATCH:
            _flush(conn, t, plain, table, kinds, serial, key, seq, batch, idmaps, stats, before)
            batch = []
    if batch:
        _flush(conn, t, plain, table, kinds, serial, key, seq, batch, idmaps, stats, before)
    return stats


def _reseal(table, row, fernet, envelope):
    for (tab, col), flag in m.SECRET_COLUMNS.items():
        if tab == table and row.get(col) is not None:
            secret = envelope.decrypt(row[col], f"{tab}.{col}")
            row[col] = fernet.encrypt(secret.encode()).decode()
            if flag:
                row[flag] = bool(fernet.is_encrypted)


def _in(columns, values):
    if len(columns) == 1:
        return columns[0].in_([v[0] for v in values])
    return sa.tuple_(*columns).in_(values)


def _existing(conn, t, key, serial, wanted):
    """Rows of t whose natural key is one of `wanted` (text forms): (key..., serial) records.
    The keys go in as one array per column and are joined, not listed in a row IN (...):
    PostgreSQL then hashes them instead of comparing every row with every key (quadratic:
    100k task instances took minutes), and nothing is compiled per value."""
    names = [f"k{i}" for i in range(len(key))]
    arrays = {n: [None if w[i] is None else str(w[i]) for w in wanted] for i, n in enumerate(names)}
    unnest = ", ".join(f"CAST(:{n} AS text[])" for n in names)
    keys = (sa.text(f"SELECT * FROM unnest({unnest}) AS wanted({', '.join(names)})")
            .bindparams(**arrays).columns(*[sa.column(n) for n in names]).subquery("wanted"))
    on = sa.and_(*[t.c[c] == sa.cast(keys.c[n], t.c[c].type) for c, n in zip(key, names)])
    keycols = [t.c[c] for c in key]
    query = sa.select(*keycols, t.c[serial] if serial else sa.null()).select_from(t.join(keys, on))
    return conn.execute(query)


def _before(conn, t, kinds, key, serial):
    """What the table held before the import, when small enough to keep: (natural key (text
    forms) -> id, ids); None: ask the database per batch."""
    if conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() > PRELOAD_ROWS:
        return None
    cols = [t.c[c] for c in key or ()] + ([t.c[serial]] if serial else [])
    if not cols:
        return {}, set()
    keys, ids = {}, set()
    for rec in conn.execute(sa.select(*cols)):
        if key and None not in rec[:len(key)]:  # SQL's = never matches NULL: neither does this
            keys[tuple(m.encode(kinds[c], v) for c, v in zip(key, rec[:len(key)]))] = rec[-1] if serial else None
        if serial:
            ids.add(rec[-1])
    return keys, ids


def _flush(conn, t, plain, table, kinds, serial, key, seq, batch, idmaps, stats, before):
    """Writes one batch. Against what the table held before the import when that was read;
    if the live environment wrote a colliding row since (its scheduler, its DAG processor),
    the batch is rolled back to a savepoint and looked up in the database instead."""
    args = (conn, t, plain, table, kinds, serial, key, seq)
    if before is None:
        return _write(*args, batch, idmaps, stats, None)
    original, counts = [dict(r) for r in batch], dict(stats)
    try:
        with conn.begin_nested():
            return _write(*args, batch, idmaps, stats, before)
    except RuntimeError as e:
        if not isinstance(e.__cause__, sa.exc.IntegrityError):
            raise
        stats.update(counts)
        return _write(*args, original, idmaps, stats, None)


def _write(conn, t, plain, table, kinds, serial, key, seq, batch, idmaps, stats, before):
    if key:
        wanted = [tuple(r[c] for c in key) for r in batch]
        if before is not None:
            found = {k: before[0][k] for k in wanted if k in before[0]}
        else:
            found = {tuple(m.encode(kinds[c], v) for c, v in zip(key, rec[:len(key)])): rec[-1]
                     for rec in _existing(conn, t, key, serial, wanted)}
        fresh = []
        for row, k in zip(batch, wanted):
            if k not in found:
                fresh.append(row)
                continue
            stats["existing"] += 1
            if serial and found[k] != row[serial]:
                idmaps.setdefault(table, {})[row[serial]] = found[k]
            if table in m.SOURCE_WINS:  # the user's settings replace the new environment's defaults
                values = {c: v for c, v in row.items() if c != serial and c not in key}
                conn.execute(plain.update().where(_in([plain.c[c] for c in key], [k])).values(**values))
                stats["updated"] += 1
        batch = fresh
    if serial and batch:
        ids = [r[serial] for r in batch]
        if before is not None:
            taken = before[1].intersection(ids)
        else:
            taken = set(conn.execute(sa.select(t.c[serial]).where(t.c[serial].in_(ids))).scalars())
        clash = [r for r in batch if r[serial] in taken]
        if clash:  # the new environment already used these ids: take fresh ones
            new_ids = conn.execute(sa.text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                                   {"s": seq, "n": len(clash)}).scalars().all()
            for row, new in zip(clash, new_ids):
                idmaps.setdefault(table, {})[row[serial]] = new
                row[serial] = new
            stats["remapped"] += len(clash)
    if batch:
        try:
            conn.execute(sa.insert(plain), batch)
        except sa.exc.DBAPIError as e:
            raise RuntimeError(f"import of table {table} failed: {e.orig}") from e
        stats["inserted"] += len(batch)
