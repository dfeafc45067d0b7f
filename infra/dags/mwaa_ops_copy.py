"""mwaa-ops metadata export/import at COPY speed (PostgreSQL, Airflow 2.x).

Export: PostgreSQL renders each kept row as one JSON object (`row_to_json`) and streams it with
`COPY ... TO STDOUT`; Python only gzips bytes. Tables with secret columns (connection, variable,
trigger: a handful of rows) are read row by row instead and sealed in memory, so no secret is
ever written in the clear.
Import: each object's JSON Lines are turned into CSV a chunk at a time (while PostgreSQL parses
the previous one) and streamed with `COPY ... FROM STDIN` into a temporary staging table of the
table's own types; references are remapped there by joins with map tables (old id -> new id),
rows already present are matched by natural key, and the rest goes in with one
`INSERT ... SELECT`, all inside the caller's transaction. A table that is empty and refers to
no remapped id takes the COPY directly. Python's memory stays flat: one chunk at a time.

The JSON Lines format is the one mwaa_ops_metadata documents (json columns as their text,
binary as base64, timestamps ISO-8601 UTC), so Athena and verify-export read it as before.
"""
from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import operator
import os
import subprocess
import sys

try:
    import sqlalchemy as sa
except ImportError:  # the pure part (to_csv, CsvRows) is unit-tested without Airflow
    sa = None

import mwaa_ops_metadata as m

CHUNK = 1 << 20
# One JSON object per line, taken verbatim: COPY's text format would double every backslash of
# the JSON; CSV with a delimiter and a quote byte that JSON never contains raw (it escapes every
# control character) passes each line through unchanged, both ways.
LINES = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02', ENCODING 'UTF8')"
STAGE = "mwaa_ops_stage"


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


# ---------------------------------------------------------------- export

class _Sink:
    """File-like target of COPY TO: psycopg2 writes one row per call; this hands the gzip
    writer 1 MiB at a time and counts the lines (no raw newline is ever inside a row)."""

    def __init__(self, out):
        self.out, self.parts, self.size, self.rows = out, [], 0, 0

    def write(self, data):
        self.parts.append(data)
        self.size += len(data)
        if self.size >= CHUNK:
            self.flush()

    def flush(self):
        if self.parts:
            chunk = b"".join(self.parts)
            self.rows += chunk.count(b"\n")
            self.out.write(chunk)
            self.parts, self.size = [], 0


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


def _select(conn, schema, table, types, active, where) -> str:
    """The kept rows of `table` as they are exported: one JSON object per row."""
    kinds = schema[table]["columns"]
    to_null = {c for fk in schema[table]["fks"] if m.excluded(fk["table"]) for c in fk["cols"]}
    exprs = []
    for c in kinds:
        col = f"t.{_q(conn, c)}"
        if c in to_null:  # e.g. note.user_id -> ab_user, which is not moved
            e = "CAST(NULL AS text)"
        elif kinds[c] == "json":  # kept as its text, byte for byte (SQL NULL distinct from JSON null)
            e = f"CAST({col} AS text)"
        elif kinds[c] == "binary":  # encode() wraps lines every 76 characters
            e = f"translate(encode({col}, 'base64'), E'\\n', '')"
        elif types[c] == "interval":
            e = f"extract(epoch FROM {col})"
        elif table == "dag" and c == "is_paused" and active:  # the state before the export paused it
            ids = ", ".join("'" + d.replace("'", "''") + "'" for d in active)
            e = f"CASE WHEN t.dag_id IN ({ids}) THEN false ELSE {col} END"
        else:
            e = col
        exprs.append(f"{e} AS {_q(conn, c)}")
    return (f"SELECT row_to_json(s) FROM (SELECT {', '.join(exprs)} FROM {_q(conn, table)} t "
            f"WHERE {where}) s")


def export_table(conn, schema, table, active, dropped, fernet, envelope, out) -> tuple:
    """Writes the table's kept rows to `out` (binary, JSON Lines); returns (rows, max id).
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
    query = _select(conn, schema, table, types, active, where)
    secrets = {col: flag for (tab, col), flag in m.SECRET_COLUMNS.items() if tab == table}
    sink = _Sink(out)
    if secrets:  # few rows: sealed one by one, in memory
        cur = conn.connection.cursor(name="mwaa_ops_secrets")  # server-side: streamed
        cur.execute(query)
        for (text,) in cur:
            row = text if isinstance(text, dict) else json.loads(text)
            for col, flag in secrets.items():
                if row.get(col) is not None:
                    row[col] = envelope.encrypt(_plain(fernet, row, col, flag), f"{table}.{col}")
            sink.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        cur.close()
    else:
        _cursor(conn).copy_expert(f"COPY ({query}) TO STDOUT WITH {LINES}", sink)
    sink.flush()
    max_id = None
    if types.get("id") in ("integer", "bigint"):
        max_id = conn.execute(sa.text(f"SELECT max(t.id) FROM {_q(conn, table)} t WHERE {where}")).scalar()
    return sink.rows, max_id


def _plain(fernet, row, col, flag) -> str:
    value = row[col]
    encrypted = row[flag] if flag else not value.startswith("{")
    return fernet.decrypt(value.encode()).decode() if encrypted else value


# ---------------------------------------------------------------- import

# A JSON null *value* is a key's closing quote then `:null` then `,` or `}`; inside a string
# (e.g. a JSON column's text) the quote is escaped, `\":null`, and is put back after the plain
# replace. It becomes a marker string that the CSV writer writes as "\x01N" and that is then cut
# to an unquoted empty field: PostgreSQL's CSV NULL (Python's csv writes None and "" alike; the
# marker keeps them apart). A chunk whose data holds \x01 itself is formatted value by value.
NULL = '":null'
MARKED = '":"\\u0001N"'  # JSON text of the string "\x01N"
MARK = '"\x01N"'
# A table this big is converted by two worker processes (tests lower it to cover that path).
PARALLEL_ROWS = int(os.environ.get("MWAA_OPS_PARALLEL_ROWS") or 100_000)


def to_csv(text: str, columns: list, binary: list, secrets=None) -> bytes:
    """JSON Lines (whole lines) -> CSV rows in `columns` order; binary (base64) as bytea hex;
    secrets(row) reseals a row in place. Pure: runs in a worker process too."""
    exact = "\\u0001" in text
    if not exact:
        text = text.replace(NULL + ",", MARKED + ",").replace(NULL + "}", MARKED + "}")
        if "\\" + MARKED in text:  # an escaped quote inside a string: not a value, put it back
            text = text.replace("\\" + MARKED + ",", "\\" + NULL + ",").replace(
                "\\" + MARKED + "}", "\\" + NULL + "}")
    rows = json.loads("[" + text.rstrip("\n").replace("\n", ",") + "]")  # one call per chunk
    null = None if exact else "\x01N"
    for row in rows if binary or secrets else ():
        for col in binary:
            if row[col] is not None and row[col] != null:
                row[col] = "\\x" + base64.b64decode(row[col]).hex()
        if secrets:
            secrets(row, null)
    get = operator.itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    if exact:  # rare: data holding \x01; None -> unquoted empty, everything else quoted
        return "".join(",".join("" if v is None else '"' + str(v).replace('"', '""') + '"'
                                for v in get(row)) + "\n" for row in rows).encode()
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(map(get, rows))
    return out.getvalue().replace(MARK, "").encode()


class Workers:
    """Two helper processes (`python -m mwaa_ops_copy`) running to_csv on alternate chunks:
    JSON parsing is the import's CPU cost, and this spreads it over both cores. Plain
    subprocesses, not multiprocessing: Airflow runs tasks in daemonic processes, which may not
    have multiprocessing children. Each has at most one chunk in flight and reads it whole
    before answering, so the pipes cannot deadlock; secrets never go to them."""

    def __init__(self, columns, binary, n=2):
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
        spec = json.dumps([columns, binary])
        self.procs = [subprocess.Popen([sys.executable, "-m", "mwaa_ops_copy", spec], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=env) for _ in range(n)]
        self.sent = self.received = 0

    def busy(self) -> bool:
        return self.sent > self.received

    def free(self) -> bool:
        return self.sent - self.received < len(self.procs)

    def send(self, text: str) -> None:
        data = text.encode()
        pipe = self.procs[self.sent % len(self.procs)].stdin
        pipe.write(len(data).to_bytes(8, "big") + data)
        pipe.flush()
        self.sent += 1

    def receive(self) -> bytes:
        pipe = self.procs[self.received % len(self.procs)].stdout
        head = pipe.read(8)
        data = pipe.read(int.from_bytes(head, "big")) if len(head) == 8 else b""
        if len(head) != 8 or len(data) != int.from_bytes(head, "big"):
            raise RuntimeError("a CSV worker process ended early (see its error above)")
        self.received += 1
        return data

    def close(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _work() -> None:
    """A Workers process: length-prefixed JSON Lines chunks in, CSV out, until stdin ends."""
    columns, binary = json.loads(sys.argv[1])
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while len(head := source.read(8)) == 8:
        data = to_csv(source.read(int.from_bytes(head, "big")).decode(), columns, binary)
        sink.write(len(data).to_bytes(8, "big") + data)
        sink.flush()


class CsvRows:
    """File-like source of `COPY ... FROM STDIN (FORMAT csv)`: the object's JSON Lines as CSV
    (to_csv), a 1 MiB chunk at a time, converted while PostgreSQL inserts the previous chunks.
    Secret values are opened and encrypted again with this environment's Fernet key here, in
    memory (few rows); a big table without secrets (`parallel`) is converted by Workers."""

    def __init__(self, path, table, kinds, fernet, envelope, parallel=False):
        self.path, self.table, self.columns = path, table, list(kinds)
        self.binary = [c for c in kinds if kinds[c] == "binary"]
        self.secrets = {col: flag for (tab, col), flag in m.SECRET_COLUMNS.items() if tab == table}
        self.fernet, self.envelope = fernet, envelope
        self.parallel, self.workers = parallel and not self.secrets, None
        self.rows, self.buf, self.file, self.rest = 0, b"", None, b""

    def __enter__(self):
        self.file = gzip.open(self.path, "rb")
        if self.parallel:
            self.workers = Workers(self.columns, self.binary)
        return self

    def __exit__(self, *exc):
        self.file.close()
        if self.workers:
            self.workers.close()

    def _lines(self) -> str:
        """The next ~1 MiB of whole lines ("" at the end); counts them."""
        data = self.rest
        while True:
            more = self.file.read(CHUNK)
            data += more
            cut = data.rfind(b"\n") + 1
            if not more:  # the end: a last line without its newline counts too
                cut = len(data)
                break
            if cut:  # else one line longer than a chunk: read on
                break
        lines, self.rest = data[:cut], data[cut:]
        self.rows += lines.count(b"\n") + (bool(lines) and not lines.endswith(b"\n"))
        return lines.decode()

    def _reseal(self, row, null):
        for col, flag in self.secrets.items():
            if row[col] is not None and row[col] != null:
                secret = self.envelope.decrypt(row[col], f"{self.table}.{col}")
                row[col] = self.fernet.encrypt(secret.encode()).decode()
                if flag:
                    row[flag] = bool(self.fernet.is_encrypted)

    def _next(self):
        """The next converted chunk, b"" at the end."""
        if self.workers:
            self._feed()
            if not self.workers.busy():
                return b""
            out = self.workers.receive()
            self._feed()  # the worker just read from works on while PostgreSQL takes `out`
            return out
        text = self._lines()
        return to_csv(text, self.columns, self.binary, self._reseal if self.secrets else None) if text else b""

    def _feed(self):
        while self.workers.free():
            text = self._lines()
            if not text:
                break
            self.workers.send(text)

    def read(self, size=-1):
        while size < 0 or len(self.buf) < size:
            chunk = self._next()
            if not chunk:
                break
            self.buf += chunk
        out, self.buf = (self.buf, b"") if size < 0 else (self.buf[:size], self.buf[size:])
        return out


def copy_in(conn, target, rows: CsvRows) -> int:
    """COPY the object into `target` (the table itself, or the staging table); returns rows."""
    cols = ", ".join(_q(conn, c) for c in rows.columns)
    cur = _cursor(conn)
    with rows:
        cur.copy_expert(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')", rows, size=CHUNK)
    return rows.rows


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


if __name__ == "__main__":
    _work()
