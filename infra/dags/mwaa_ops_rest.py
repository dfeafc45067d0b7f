"""mwaa-ops metadata export/import on Airflow 3: the environment's own REST API through MWAA
InvokeRestApi, plus the task SDK for the secret values the REST API masks.

Why: Airflow 3 tasks cannot reach the metadata database (the task SDK talks to the API server
only), and the public REST API answers `***` for passwords, sensitive extras and sensitive
variables. So the export lists what exists through REST and reads real values through the task
SDK; the import writes through REST (writes take real values). No Airflow import at module
level: the unit tests drive everything here with a fake client.
"""
from __future__ import annotations

import json
import os
import time

import mwaa_ops_metadata as m
import mwaa_ops_schedule as s

MAX_PATH = 64  # InvokeRestApi refuses a longer Path: query strings go in QueryParameters
PAGE = 100  # Airflow 3's default maximum_page_limit
BULK = 50  # entities per bulk PATCH: keeps one InvokeRestApi body small
# Throttling, MWAA's own 5xx and Airflow's 5xx (RestApiServerException: MWAA models it as a
# client error, so botocore does not retry it) are tried again: every call made here is
# idempotent (reads, PATCHes, overwriting bulk upserts, a marker POST that accepts 409).
ATTEMPTS = 5
TRANSIENT = ("ThrottlingException", "InternalServerException", "ServiceUnavailableException")
SOURCE = "api"  # manifest["source"] of a 3.x export (2.x exports have no such key)
# The 2.x export's, and deferred: a 3.x export moves no trigger, so a deferred task must finish first.
BUSY_STATES = ("running", "queued", "deferred", "restarting")
# The tables of a 3.x export: named and shaped like the 2.x tables they stand for, so the layout
# (and Athena) stays the same. Order = import order: pools before anything may run, paused last.
TABLES = {
    "slot_pool": ["pool", "slots", "description", "include_deferred"],
    "variable": ["key", "val", "description"],
    "connection": ["conn_id", "conn_type", "description", "host", "schema", "login", "password",
                   "port", "extra"],
    "dag_run": s.COLUMNS,  # each DAG's latest finished automated run: where its schedule stood
    "dag": ["dag_id", "is_paused"],
}
SECRETS = {("connection", "password"), ("connection", "extra"), ("variable", "val")}
NO_REVISION = ("not recorded: a 3.x export is read through the REST API and the task SDK, "
               "which do not expose the database's alembic revision")


class RestApiError(RuntimeError):
    """An InvokeRestApi call failed; the message names the call and Airflow's answer."""

    def __init__(self, message, method=None, path=None, status=None, response=None):
        super().__init__(message)
        self.method, self.path, self.status, self.response = method, path, status, response


# ---------------------------------------------------------------- the client

def mwaa_client(region: str | None = None):
    """boto3 MWAA client; standard retries. With an endpoint override (the local bed, a VPC
    endpoint URL) the api./env. host prefix would break the name: it is turned off then."""
    import boto3
    from botocore.config import Config
    override = os.environ.get("AWS_ENDPOINT_URL_MWAA") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(retries={"mode": "standard", "max_attempts": 5}, inject_host_prefix=not override)
    return boto3.client("mwaa", region_name=region, config=config) if region else \
        boto3.client("mwaa", config=config)


def rest_error(method: str, path: str, environment: str, error) -> RestApiError:
    """A botocore ClientError of InvokeRestApi as a RestApiError naming the call. RestApi*
    exceptions carry Airflow's status and answer; others (validation, unknown environment,
    access denied) are MWAA's own."""
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code", type(error).__name__)
    call = f"InvokeRestApi {method} {path} on {environment}"
    if code in ("RestApiClientException", "RestApiServerException"):
        status, answer = response.get("RestApiStatusCode"), response.get("RestApiResponse")
        detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
        return RestApiError(f"{call}: Airflow answered {status}: {json.dumps(scrub(detail))[:500]}",
                            method, path, status, answer)
    message = response.get("Error", {}).get("Message") or str(error)
    return RestApiError(f"{call}: {code}: {message}", method, path, None, None)


def scrub(detail):
    """Airflow's error detail without what it echoes of the request: a 422 repeats each failing
    field's `input` (a connection's password or extra, a variable's value), and the message
    goes to task logs, Step Functions and the alert email."""
    if isinstance(detail, list):
        return [scrub(d) for d in detail]
    if isinstance(detail, dict):
        return {k: scrub(v) for k, v in detail.items() if k not in ("input", "ctx")}
    return detail


def transient(error: RestApiError, code: str) -> bool:
    return code in TRANSIENT or (error.status is not None and error.status >= 500) or error.status == 429


class Rest:
    """Airflow's REST API (v2 on 3.x) of one environment through MWAA InvokeRestApi."""

    def __init__(self, environment: str, client, sleep=time.sleep):
        self.environment, self.client, self.sleep = environment, client, sleep

    def call(self, method: str, path: str, query: dict | None = None, body=None, allow=()):
        """Airflow's answer; None when its status is one of `allow` (e.g. 409 = already there)."""
        if len(path) > MAX_PATH:
            raise RestApiError(f"InvokeRestApi {method} {path[:40]}... on {self.environment}: the path "
                               f"has {len(path)} characters, MWAA allows {MAX_PATH}", method, path)
        kwargs = {"Name": self.environment, "Method": method, "Path": path}
        if query:
            kwargs["QueryParameters"] = query
        if body is not None:
            kwargs["Body"] = body
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self.client.invoke_rest_api(**kwargs).get("RestApiResponse")
            except Exception as e:  # botocore's ClientError: its class is made per client
                if not hasattr(e, "response"):
                    raise
                error = rest_error(method, path, self.environment, e)
                if error.status is not None and error.status in allow:
                    return None
                code = (e.response.get("Error") or {}).get("Code", "")
                if attempt == ATTEMPTS or not transient(error, code):
                    raise error from e
                self.sleep(min(2 ** attempt, 20))

    def pages(self, path: str, field: str, query: dict | None = None) -> list:
        """Every item of a list endpoint, by limit/offset until total_entries."""
        items, offset = [], 0
        while True:
            answer = self.call("GET", path, dict(query or {}, limit=PAGE, offset=offset))
            page = answer.get(field) or []
            items.extend(page)
            offset += len(page)
            if not page or offset >= answer.get("total_entries", 0):
                return items

    def bulk(self, path: str, entities: list) -> list:
        """Upsert through the bulk endpoint (create, overwrite when present); returns the keys
        written. The bulk answer is 200 even when entities failed: its errors are raised."""
        written = []
        for i in range(0, len(entities), BULK):
            action = {"action": "create", "action_on_existence": "overwrite", "entities": entities[i:i + BULK]}
            answer = self.call("PATCH", path, body={"actions": [action]}) or {}
            result = answer.get("create") or {}
            if result.get("errors"):
                raise RestApiError(f"InvokeRestApi PATCH {path} on {self.environment}: "
                                   f"{json.dumps(scrub(result['errors']))[:500]}", "PATCH", path)
            written.extend(result.get("success") or [])
        return written


# ---------------------------------------------------------------- DAGs: list, pause, wait

def dag_path(dag_id: str) -> str:
    return f"/dags/{dag_id}"  # DAG ids are [A-Za-z0-9_.-]: nothing to quote


def list_dags(rest: Rest) -> list:
    """[{dag_id, is_paused}] of the DAGs the environment knows now (not stale), by id."""
    dags = rest.pages("/dags", "dags", {"exclude_stale": "true"})
    return sorted(({"dag_id": d["dag_id"], "is_paused": bool(d["is_paused"])} for d in dags),
                  key=lambda d: d["dag_id"])


def set_paused(rest: Rest, dag_ids, paused: bool) -> list:
    """Pauses or unpauses each DAG; returns the ids it cannot address (reported by the
    callers, as the Rust enable-dags step does, rather than failing the whole export/import
    for one DAG)."""
    not_addressable = []
    for dag_id in dag_ids:
        if len(dag_path(dag_id)) <= MAX_PATH:
            rest.call("PATCH", dag_path(dag_id), {"update_mask": "is_paused"}, {"is_paused": paused})
        elif not _set_paused_by_pattern(rest, dag_id, paused):
            not_addressable.append(dag_id)
    return not_addressable


def _set_paused_by_pattern(rest: Rest, dag_id: str, paused: bool) -> bool:
    """A DAG id over 58 characters does not fit in the path: PATCH /dags (many DAGs) with
    dag_id_pattern, which Airflow matches as a case-insensitive substring (`_` is a wildcard
    there) -- so only when listing shows the pattern matches this one DAG and no other."""
    query = {"dag_id_pattern": dag_id, "exclude_stale": "false"}
    matched = [d["dag_id"] for d in rest.pages("/dags", "dags", query)]
    if matched != [dag_id]:
        return False
    rest.call("PATCH", "/dags", dict(query, update_mask="is_paused"), {"is_paused": paused})
    return True


def active_dags(dags: list) -> list:
    """The unpaused DAGs the export pauses (and the resume re-enables): all but ours."""
    return [d["dag_id"] for d in dags if not d["is_paused"] and d["dag_id"] not in m.OWN_DAGS]


def busy_task_instances(rest: Rest) -> list:
    """(dag_id, run_id, task_id, map_index, state) still working, ours aside. The batch
    endpoint takes the states in its body (no repeated query parameter needed)."""
    busy, offset = [], 0
    while True:
        answer = rest.call("POST", "/dags/~/dagRuns/~/taskInstances/list",
                           body={"state": list(BUSY_STATES), "page_limit": PAGE, "page_offset": offset})
        page = answer.get("task_instances") or []
        busy.extend((t["dag_id"], t["dag_run_id"], t["task_id"], t["map_index"], t["state"])
                    for t in page if t["dag_id"] not in m.OWN_DAGS)
        offset += len(page)
        if not page or offset >= answer.get("total_entries", 0):
            return sorted(busy)


def wait_until_idle(rest: Rest, timeout: float, poll: float, heartbeat=lambda: None,
                    clock=time.monotonic, sleep=time.sleep) -> None:
    """As the 2.x export: wait, heartbeat, and after the timeout name up to 20 busy ones."""
    deadline = clock() + timeout
    while True:
        busy = busy_task_instances(rest)
        if not busy:
            return
        if clock() >= deadline:
            listed = ", ".join(f"{d}/{r}/{t}[{i}]={s}" for d, r, t, i, s in busy[:20])
            raise TimeoutError(f"{len(busy)} task instances still busy after {timeout:.0f} s: {listed}")
        heartbeat()
        sleep(poll)


# ---------------------------------------------------------------- export: rows per table

def pool_rows(rest: Rest) -> list:
    return [{"pool": p["name"], "slots": p["slots"], "description": p.get("description"),
             "include_deferred": bool(p.get("include_deferred"))}
            for p in sorted(rest.pages("/pools", "pools"), key=lambda p: p["name"])]


def variable_rows(rest: Rest, get_value, envelope) -> list:
    """Keys and descriptions from REST (its values may be masked), values from get_value (the
    task SDK's Variable.get), sealed at once."""
    rows = []
    for v in sorted(rest.pages("/variables", "variables"), key=lambda v: v["key"]):
        value = get_value(v["key"])
        rows.append({"key": v["key"], "val": None if value is None else envelope.encrypt(value, m.sealed_as("variable", "val", v["key"])),
                     "description": v.get("description")})
    return rows


def connection_rows(rest: Rest, get_connection, envelope) -> list:
    """Ids and descriptions from REST, every field from get_connection (the task SDK's
    Connection.get: real password and extra); password and extra sealed at once."""
    rows = []
    for c in sorted(rest.pages("/connections", "connections"), key=lambda c: c["connection_id"]):
        conn = get_connection(c["connection_id"])
        row = {"conn_id": c["connection_id"], "conn_type": conn.conn_type,
               "description": c.get("description"), "host": conn.host, "schema": conn.schema,
               "login": conn.login, "password": conn.password, "port": conn.port, "extra": conn.extra}
        for col in ("password", "extra"):
            if row[col] is not None:
                row[col] = envelope.encrypt(row[col], m.sealed_as("connection", col, row["conn_id"]))
        rows.append(row)
    return rows


def dag_rows(dags: list) -> list:
    """Paused state as it was before the export paused anything."""
    return [{"dag_id": d["dag_id"], "is_paused": d["is_paused"]} for d in dags]


# ---------------------------------------------------------------- import: checks

def check_manifest(manifest: dict, airflow_version: str) -> None:
    """Refuse (naming what is wrong) unless this is a 3.x API export of this Airflow version
    with exactly the 3.x tables, in import order, with their columns."""
    if manifest.get("format") != m.FORMAT:
        raise m.Refused(f"manifest format {manifest.get('format')!r}, expected {m.FORMAT!r}")
    if manifest.get("source") != SOURCE:
        raise m.Refused("the export is an Airflow 2.x database export: Airflow "
                        f"{airflow_version} imports only the REST API exports of Airflow 3")
    if manifest.get("airflow_version") != airflow_version:
        raise m.Refused(f"export is from Airflow {manifest.get('airflow_version')}, this is {airflow_version}")
    tables = [e.get("table") for e in manifest.get("tables", [])]
    if tables != list(TABLES):
        raise m.Refused(f"manifest tables {tables}, expected {list(TABLES)}")
    for entry in manifest["tables"]:
        if list(entry.get("columns") or {}) != TABLES[entry["table"]]:
            raise m.Refused(f"table {entry['table']}: columns {list(entry.get('columns') or {})}, "
                            f"expected {TABLES[entry['table']]}")
    for name in ("export_id", "active_dags", "data_key"):
        if name not in manifest:
            raise m.Refused(f"manifest has no {name}")


def check_rows(table: str, rows: list) -> None:
    """Every row has exactly the table's columns (a hand-edited object would fail here)."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or sorted(row) != sorted(TABLES[table]):
            raise m.Refused(f"table {table}: row {i + 1} does not have the columns {TABLES[table]}")


def unseal(table: str, rows: list, envelope) -> list:
    """Rows with their secrets decrypted; Refused when one does not decrypt (wrong key,
    moved to another column, damaged), before anything is written."""
    out = []
    for number, row in enumerate(rows, 1):
        row = dict(row)
        for tab, col in SECRETS:
            if tab == table and row.get(col) is not None:
                try:
                    row[col] = envelope.decrypt(row[col], m.sealed_as(tab, col, row[m.ROW_KEYS[tab]]))
                except Exception as e:  # noqa: BLE001 - InvalidTag says nothing more
                    raise m.Refused(f"table {table}, column {col}, row {number}: the sealed value does not "
                                    f"open in this row ({type(e).__name__}: sealed for another row, "
                                    "column or export)") from None
        out.append(row)
    return out


# ---------------------------------------------------------------- import: writes (upserts)

def pool_entities(rows) -> list:
    return [{"name": r["pool"], "slots": r["slots"], "description": r["description"],
             "include_deferred": r["include_deferred"]} for r in rows]


def variable_entities(rows) -> list:
    # A string value stays a string (a dict would be JSON-serialised by the bulk create).
    return [{"key": r["key"], "value": r["val"], "description": r["description"]} for r in rows]


def connection_entities(rows) -> list:
    return [{"connection_id": r["conn_id"], "conn_type": r["conn_type"], "description": r["description"],
             "host": r["host"], "schema": r["schema"], "login": r["login"], "password": r["password"],
             "port": r["port"], "extra": r["extra"]} for r in rows]


def paused_changes(rows: list, present: dict) -> tuple:
    """({dag_id: wanted is_paused} to PATCH, [dag ids not in this environment]): DAGs already
    in the wanted state are left alone, so a retried import writes nothing twice."""
    changes, missing = {}, []
    for row in rows:
        if row["dag_id"] in m.OWN_DAGS:
            continue
        if row["dag_id"] not in present:
            missing.append(row["dag_id"])
        elif present[row["dag_id"]] != row["is_paused"]:
            changes[row["dag_id"]] = row["is_paused"]
    return changes, missing


def marker(export_id: str) -> str:
    return m.MARKER_PREFIX + export_id


def imported_before(rest: Rest, export_id: str):
    """The marker variable's value, or None. Listed by pattern, not GET /variables/<key>: the
    marker's path would be 65 characters, one over InvokeRestApi's limit. (Its value is plain
    JSON without a sensitive key name, so REST does not mask it.)"""
    key = marker(export_id)
    for v in rest.pages("/variables", "variables", {"variable_key_pattern": export_id}):
        if v["key"] == key:
            try:
                return json.loads(v["value"])
            except (TypeError, ValueError):
                return {"value": v["value"]}
    return None


def wait_for_dags(rest: Rest, wanted: list, timeout: float, poll: float, heartbeat=lambda: None,
                  clock=time.monotonic, sleep=time.sleep) -> dict:
    """{dag_id: is_paused} once every wanted DAG is known (a new environment parses its DAG
    folder after it is AVAILABLE), or what is known at the timeout."""
    deadline = clock() + timeout
    while True:
        present = {d["dag_id"]: d["is_paused"] for d in list_dags(rest)}
        if all(d in present for d in wanted) or clock() >= deadline:
            return present
        heartbeat()
        sleep(poll)
