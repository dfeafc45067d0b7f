"""mwaa-ops metadata export/import at COPY speed (PostgreSQL, Airflow 2.x).

Objects are in PostgreSQL's own text format of COPY (the one pg_dump writes): one row per line,
a tab between columns, `\\N` for NULL, backslash escapes for backslash, tab, newline and carriage
return inside values. Every type round-trips exactly through it when both ends render values the
same way (SETTINGS: UTC, ISO dates, hex bytea, shortest exact floats), so neither end converts
anything: the export streams `COPY (SELECT ...) TO STDOUT` into gzip, the import streams the
gunzipped bytes into `COPY ... FROM STDIN`. Tables with secret columns (connection, variable,
trigger: a handful of rows) are rewritten line by line on the way, in memory: their secrets are
sealed per value on export and opened and encrypted with the new Fernet key on import, so no
secret is ever written in the clear.
Import: a table that is empty and refers to no remapped id takes the COPY directly; any other
goes into a temporary staging table of the table's own types, where references are remapped by
joins with map tables (old id -> new id) and rows already present are matched by natural key,
then the rest goes in with one `INSERT ... SELECT`, all inside the caller's transaction. Python's
memory stays flat: one chunk at a time.
"""
from __future__ import annotations

import gzip
import os
import re

try:
    import sqlalchemy as sa
except ImportError:  # the pure part (escape, Rows) is unit-tested without Airflow
    sa = None

import mwaa_ops_metadata as m

CHUNK = 1 << 20
TEXT = "(FORMAT text, ENCODING 'UTF8')"
# How values are rendered, set by both ends for their transaction: the text of a value must not
# depend on the server's or the session's defaults (time zone, date order, float digits).
SETTINGS = {"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres",
            "extra_float_digits": "3", "bytea_output": "hex"}
NULL = b"\\N"
STAGE = "mwaa_ops_stage"
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _q(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def pg_types(conn, table: str) -> dict:
    """column -> PostgreSQL type as written in DDL (typmods included), in column order."""
    rows = conn.execute(sa.text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(quote_ident(:t) AS regclass) AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum"), {"t": table}).all()
    return dict(rows)


def _cursor(conn):
    return conn.connection.cursor()  # the DBAPI cursor of the same transaction (psycopg2)


def render_settings(conn) -> None:
    """SETTINGS for the rest of the transaction."""
    for name, value in SETTINGS.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def unescape(field: bytes) -> str:
    """One field of the text format as its value (not NULL: callers check for it)."""
    return re.sub(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", lambda g: (
        chr(int(g[1], 8)) if g[1] else chr(int(g[2], 16)) if g[2] else _ESCAPES.get(g[3], g[3])),
        field.decode())


def escape(value: str) -> bytes:
    """A value as one field of the text format."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t").encode())


def _secret_fields(table, columns) -> list:
    """[(index of a secret column, index of the column saying it is Fernet-encrypted or None)]."""
    return [(columns.index(col), columns.index(flag) if flag else None)
            for (tab, col), flag in m.SECRET_COLUMNS.items() if tab == table and col in columns]


def _sealed_as(table, columns, fields, at) -> str:
    """The associated data of the secret at `at` in this row: the row key as exported."""
    key = fields[columns.index(m.ROW_KEYS[table])]
    return m.sealed_as(table, columns[at], "" if key == NULL else unescape(key))


def open_sealed(path, table, columns, envelope) -> int:
    """Opens every sealed value of an object (tables with secrets are a handful of rows) before
    anything is written: one that does not open here (another key, column or row: swapped
    between rows) is Refused naming table, column and row number, never the value. Returns
    the values opened."""
    columns = list(columns)
    secrets, opened = _secret_fields(table, columns), 0
    if not secrets:
        return 0
    with gzip.open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip(b"\n").split(b"\t")
            for at, _ in secrets:
                if fields[at] == NULL:
                    continue
                try:
                    envelope.decrypt(unescape(fields[at]), _sealed_as(table, columns, fields, at))
                except Exception as e:  # noqa: BLE001 - InvalidTag says nothing more
                    raise m.Refused(f"table {table}, column {columns[at]}, row {number}: the sealed value "
                                    f"does not open in this row ({type(e).__name__}: sealed for another "
                                    "row, column or export)") from None
                opened += 1
    return opened


# ---------------------------------------------------------------- export

class _Sink:
    """File-like target of COPY TO: hands the gzip writer ~1 MiB of whole lines at a time
    (rewritten by `line` if given) and counts them (no raw newline is ever inside a row)."""

    def __init__(self, out, line=None):
        self.out, self.line, self.parts, self.size, self.rows = out, line, [], 0, 0

    def write(self, data):
        self.parts.append(data)
        self.size += len(data)
        if self.size >= CHUNK:
            self.flush()

    def flush(self, end=False):
        chunk = b"".join(self.parts)
        cut = len(chunk) if end else chunk.rfind(b"\n") + 1
        chunk, rest = chunk[:cut], chunk[cut:]
        self.parts, self.size = [rest] if rest else [], len(rest)
        if chunk and self.line:
            chunk = b"\n".join(self.line(x) if x else x for x in chunk.split(b"\n"))
        self.rows += chunk.count(b"\n")
        self.out.write(chunk)


def _kept(conn, schema, table, alias, dropped) -> str:
    """SQL condition: the row is not one of the export's / import's own (their runs and
    everything that refers to them, transitively through the tables already planned)."""
    cols, conds = schema[table]["columns"], []
    if "dag_id" in cols:
        own = ", ".join(f"'{d}'" for d in m.OWN_DAGS)
        conds.append(f"COALESCE({alias}.dag_id NOT IN ({own}), true)")
    for ref_cols, target, target_cols in m.refs(schema, table):
        if target in dropped and set(target_cols) <= set(dropped[target][1]):
            on = " AND ".join(f"d.{_q(conn, tc)} = {alias}.{_q(conn, c)}"
                              for c, tc in zip(ref_cols, target_cols))
            conds.append(f"NOT EXISTS (SELECT 1 FROM {dropped[target][0]} d WHERE {on})")
    return " AND ".join(conds) or "true"


def _select(conn, schema, table, active, where) -> str:
    """The kept rows of `table` as they are exported, columns in the manifest's order."""
    to_null = {c for fk in schema[table]["fks"] if m.excluded(fk["table"]) for c in fk["cols"]}
    exprs = []
    for c in m.exported_columns(schema, table):
        col = f"t.{_q(conn, c)}"
        if c in to_null or (table, c) in m.PROCESS_COLUMNS:  # e.g. note.user_id -> ab_user, not moved
            col = "NULL"
        elif table == "dag" and c == "is_paused" and active:  # the state before the export paused it
            ids = ", ".join("'" + d.replace("'", "''") + "'" for d in active)
            col = f"CASE WHEN t.dag_id IN ({ids}) THEN false ELSE {col} END"
        exprs.append(col)
    return f"SELECT {', '.join(exprs)} FROM {_q(conn, table)} t WHERE {where}"


def export_table(conn, schema, table, active, dropped, fernet, envelope, out) -> tuple:
    """Writes the table's kept rows to `out` (binary, COPY text format); returns (rows, max id).
    `dropped` (table -> (temp table, columns)) grows with this table's own rows."""
    types = pg_types(conn, table)
    where = _kept(conn, schema, table, "t", dropped)
    watched = sorted({c for t in schema if not m.excluded(t)
                      for _, target, cols in m.refs(schema, t) if target == table for c in cols})
    if watched:  # rows left out here take their children with them
        name = f"mwaa_ops_drop_{len(dropped)}"
        made = conn.execute(sa.text(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT DISTINCT "
            f"{', '.join('t.' + _q(conn, c) for c in watched)} FROM {_q(conn, table)} t WHERE NOT ({where})"))
        if made.rowcount:
            dropped[table] = (name, watched)
        else:
            conn.execute(sa.text(f"DROP TABLE {name}"))
    columns = list(m.exported_columns(schema, table))
    secrets = _secret_fields(table, columns)

    def seal(line: bytes) -> bytes:  # few rows (connection, variable, trigger), in memory
        fields = line.split(b"\t")
        for at, flag in secrets:
            if fields[at] != NULL:
                value = unescape(fields[at])
                encrypted = fields[flag] == b"t" if flag is not None else not value.startswith("{")
                plain = fernet.decrypt(value.encode()).decode() if encrypted else value
                fields[at] = escape(envelope.encrypt(plain, _sealed_as(table, columns, fields, at)))
        return b"\t".join(fields)
    sink = _Sink(out, seal if secrets else None)
    query = _select(conn, schema, table, active, where)
    _cursor(conn).copy_expert(f"COPY ({query}) TO STDOUT WITH {TEXT}", sink)
    sink.flush(end=True)
    max_id = None
    if types.get("id") in ("integer", "bigint"):
        max_id = conn.execute(sa.text(f"SELECT max(t.id) FROM {_q(conn, table)} t WHERE {where}")).scalar()
    return sink.rows, max_id


# ---------------------------------------------------------------- import

# A table this big has its plain indexes and its foreign keys dropped while it is loaded and
# recreated (checked) afterwards: building an index once is several times cheaper than
# maintaining it row by row, and one join checks a foreign key faster than a trigger per row
# (1M task instances: 13.5 s instead of 24 s, measured 2026-11-30). Tests lower it.
BULK_ROWS = int(os.environ.get("MWAA_OPS_BULK_ROWS") or 10_000)


class Rows:
    """File-like source of `COPY ... FROM STDIN`: the object's bytes as exported (PostgreSQL's
    text format), gunzipped a chunk at a time, counting rows. Secret values are opened and
    encrypted again with this environment's Fernet key here, in memory (few rows), unless
    Airflow `airflow_version` keeps that column as plain JSON (trigger kwargs before 2.9)."""

    def __init__(self, path, table, columns, fernet, envelope, airflow_version):
        self.path, self.table, self.columns = path, table, list(columns)
        self.secrets = [(at, flag, flag is not None or m.fernet_encrypted(table, self.columns[at], airflow_version))
                        for at, flag in _secret_fields(table, self.columns)]
        self.fernet, self.envelope = fernet, envelope
        self.rows, self.file, self.rest, self.buf = 0, None, b"", b""

    def __enter__(self):
        self.file = gzip.open(self.path, "rb")
        return self

    def __exit__(self, *exc):
        self.file.close()

    def _reseal(self, line: bytes) -> bytes:
        fields = line.split(b"\t")
        for at, flag, encrypt in self.secrets:
            if fields[at] != NULL:
                secret = self.envelope.decrypt(unescape(fields[at]),
                                               _sealed_as(self.table, self.columns, fields, at))
                fields[at] = escape(self.fernet.encrypt(secret.encode()).decode() if encrypt else secret)
                if flag is not None:
                    fields[flag] = b"t" if self.fernet.is_encrypted else b"f"
        return b"\t".join(fields)

    def _lines(self) -> bytes:
        """The next ~1 MiB of whole lines, secrets resealed (b"" at the end)."""
        while True:
            more = self.file.read(CHUNK)
            data = self.rest + more
            cut = data.rfind(b"\n") + 1 if more else len(data)
            if cut or not more:
                data, self.rest = data[:cut], data[cut:]
                return b"\n".join(self._reseal(x) if x else x for x in data.split(b"\n"))
            self.rest = data  # one line longer than a chunk: read on

    def read(self, size=-1):
        data = self._lines() if self.secrets else self.file.read(CHUNK if size < 0 else size)
        self.rows += data.count(b"\n")
        return data


def copy_in(conn, target, rows: Rows) -> int:
    """COPY the object into `target` (the table itself, or the staging table); returns rows."""
    cols = ", ".join(_q(conn, c) for c in rows.columns)
    with rows:
        _cursor(conn).copy_expert(f"COPY {target} ({cols}) FROM STDIN WITH {TEXT}", rows, size=CHUNK)
    return rows.rows


def defer_checks(conn, table) -> list:
    """Drops the table's plain indexes (not unique, backing no constraint) and its foreign keys;
    returns the statements that put them back, exactly as they were (PostgreSQL's own DDL)."""
    found = conn.execute(sa.text(
        "SELECT format('DROP INDEX %I.%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.indrelid = CAST(quote_ident(:t) AS regclass) AND NOT i.indisunique "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "UNION ALL SELECT format('ALTER TABLE %I DROP CONSTRAINT %I', :t, conname), "
        "format('ALTER TABLE %I ADD CONSTRAINT %I ', :t, conname) || pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE conrelid = CAST(quote_ident(:t) AS regclass) AND contype = 'f'"),
        {"t": table}).all()
    run_all(conn, [drop for drop, _ in found])
    return [create for _, create in found]


def run_all(conn, statements) -> None:
    """PostgreSQL's own DDL as it is: no bind parameters read into it."""
    cur = _cursor(conn)
    for statement in statements:
        cur.execute(statement)


def remapped_refs(schema, table, maps) -> list:
    """[(column, map table)]: single-column references to rows whose id changed on import."""
    return [(cols[0], maps[target]) for cols, target, _ in m.refs(schema, table)
            if len(cols) == 1 and maps.get(target)]


def merge(conn, schema, table, maps, paused) -> dict:
    """Moves STAGE (the object, typed) into `table`: references rewritten by joins with the
    maps (old id -> new id) of their tables; rows already there (natural key) recognised (their
    ids mapped; connection / variable / slot_pool take the exported values); exported ids the
    table already uses get fresh ones from its sequence; the rest inserted in one statement."""
    info = schema[table]
    serial, key, q = info["serial"], m.natural_key(schema, table), (lambda c: _q(conn, c))
    tab, cols = q(table), ", ".join(q(c) for c in info["columns"])
    stats = {"inserted": 0, "existing": 0, "updated": 0, "remapped": 0}
    for col, mapping in remapped_refs(schema, table, maps):
        conn.execute(sa.text(f"UPDATE {STAGE} s SET {q(col)} = m.new FROM {mapping} m WHERE m.old = s.{q(col)}"))
    conn.execute(sa.text(f"ANALYZE {STAGE}"))
    if table == "dag":
        paused.extend(conn.execute(sa.text(f"SELECT dag_id, is_paused FROM {STAGE}")).all())
    if serial and not maps.get(table):
        maps[table] = f"mwaa_ops_map_{table}"
        conn.execute(sa.text(f"CREATE TEMP TABLE {maps[table]} (old bigint PRIMARY KEY, new bigint) "
                             "ON COMMIT DROP"))
    if key:
        same = " AND ".join(f"s.{q(c)} = t.{q(c)}" for c in key)
        if serial:  # the row exists under another id: its references follow it
            conn.execute(sa.text(
                f"INSERT INTO {maps[table]} (old, new) SELECT s.{q(serial)}, min(t.{q(serial)}) "
                f"FROM {STAGE} s JOIN {tab} t ON {same} GROUP BY s.{q(serial)} "
                f"HAVING min(t.{q(serial)}) <> s.{q(serial)}"))
        if table in m.SOURCE_WINS:  # the user's settings replace the new environment's defaults
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in info["columns"] if c != serial and c not in key)
            stats["updated"] = conn.execute(sa.text(
                f"UPDATE {tab} t SET {sets} FROM {STAGE} s WHERE {same}")).rowcount
        stats["existing"] = conn.execute(sa.text(
            f"DELETE FROM {STAGE} s USING {tab} t WHERE {same}")).rowcount
    if serial:  # ids the new environment already used: fresh ones from the sequence
        seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": serial}).scalar()
        clash = conn.execute(sa.text(
            f"INSERT INTO {maps[table]} (old, new) SELECT s.{q(serial)}, nextval(CAST(:seq AS regclass)) "
            f"FROM {STAGE} s WHERE EXISTS (SELECT 1 FROM {tab} t WHERE t.{q(serial)} = s.{q(serial)}) "
            f"RETURNING old"), {"seq": seq}).scalars().all()
        if clash:
            stats["remapped"] = len(clash)
            conn.execute(sa.text(f"UPDATE {STAGE} s SET {q(serial)} = m.new FROM {maps[table]} m "
                                 f"WHERE m.old = s.{q(serial)} AND m.old = ANY(:ids)"), {"ids": clash})
    stats["inserted"] = conn.execute(sa.text(f"INSERT INTO {tab} ({cols}) SELECT {cols} FROM {STAGE}")).rowcount
    if serial and not conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {maps[table]})")).scalar():
        conn.execute(sa.text(f"DROP TABLE {maps[table]}"))  # nothing to rewrite: no join later
        maps[table] = None
    return stats

