"""mwaa-ops on Airflow 3: where each DAG's schedule stood, carried across a pause, so that the
resumed environment neither repeats an interval nor backfills what was done before.

Why this works with the REST API alone: Airflow 3's scheduler (and its DAG processor) puts a
DAG's next run after its latest *automated* run -- the greatest logical date among its
`scheduled` and `backfill` runs. A new environment has none, so a catchup DAG starts over at
its start date and any other DAG runs its latest interval, again when it ran it before the
pause. The REST API cannot write a scheduled run, but it can create a backfill
(`POST /backfills`), and backfill runs count. On a DAG that is still paused (the import runs
before the DAGs are switched on) the backfill's run stays queued: the scheduler starts no run
of a paused DAG. Cancelling the backfill (`PUT /backfills/{id}/cancel`) then ends that run as
failed without one task having run. Once the DAG processor has parsed the DAG again,
`GET /dags` shows its next run after the carried one; only then is it safe to switch it on.
(`PATCH /dags/{id}/dagRuns/{run_id}` could mark it success instead, but a backfill run id is
35 characters: with the DAG id the path passes InvokeRestApi's 64 for most DAGs.)

No Airflow import: the unit tests drive this with a fake client.
"""
from __future__ import annotations

import time
from datetime import datetime

import mwaa_ops_metadata as m

COLUMNS = ["dag_id", "logical_date", "data_interval_start", "data_interval_end", "state"]
FINISHED = ("success", "failed")
AUTOMATED = ("scheduled", "backfill")
RUNS = "/dags/~/dagRuns/list"  # the batch list: its body names the DAG, whatever its id's length
EPOCH = "1970-01-01T00:00:00Z"  # logical_date_gte: leaves out manual runs without a logical date


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def last_done_run(rest, dag_id: str, page: int = 100) -> dict | None:
    """The DAG's latest finished scheduled or backfill run as a row of COLUMNS, or None. A run
    still queued or running at export was not done: the resumed environment runs it."""
    offset = 0
    while True:
        answer = rest.call("POST", RUNS, body={
            "dag_ids": [dag_id], "states": list(FINISHED), "order_by": "-logical_date",
            "logical_date_gte": EPOCH, "page_limit": page, "page_offset": offset}) or {}
        runs = answer.get("dag_runs") or []
        for run in runs:
            if run.get("run_type") in AUTOMATED and run.get("logical_date"):
                return {"dag_id": dag_id, "logical_date": run["logical_date"],
                        "data_interval_start": run.get("data_interval_start"),
                        "data_interval_end": run.get("data_interval_end"), "state": run["state"]}
        offset += len(runs)
        if not runs or offset >= answer.get("total_entries", 0):
            return None


def schedule_rows(rest, dag_ids, own=m.OWN_DAGS) -> list:
    """One row per DAG that had an automated run done: the `dag_run` table of a 3.x export."""
    rows = []
    for dag_id in sorted(dag_ids):
        if dag_id not in own:
            row = last_done_run(rest, dag_id)
            if row:
                rows.append(row)
    return rows


def _run_at(rest, dag_id: str, logical_date: str) -> dict | None:
    answer = rest.call("POST", RUNS, body={"dag_ids": [dag_id], "logical_date_gte": logical_date,
                                           "logical_date_lte": logical_date, "page_limit": 1}) or {}
    runs = answer.get("dag_runs") or []
    return runs[0] if runs else None


def carry(rest, row: dict) -> str:
    """Makes the carried run exist in this environment as an automated run: "created",
    "present" (an earlier import made it, or the environment ran it), or "refused: ..."
    when Airflow will not backfill this DAG (no schedule, depends_on_past, a backfill of
    its own already running). Idempotent: a retried import finds the run, cancels what an
    interrupted attempt left queued, and creates nothing."""
    dag_id, when = row["dag_id"], row["logical_date"]
    there = _run_at(rest, dag_id, when)
    if there and there.get("run_type") not in AUTOMATED:
        return f"refused: a {there.get('run_type')} run holds logical date {when}"
    if not there:
        try:
            rest.call("POST", "/backfills", body={
                "dag_id": dag_id, "from_date": when, "to_date": when, "max_active_runs": 1,
                "run_backwards": False, "reprocess_behavior": "none", "dag_run_conf": {}})
        except Exception as e:  # RestApiError: Airflow's 4xx names the reason (409, 400, 422)
            status = getattr(e, "status", None)
            if status is None or status >= 500:
                raise
            return f"refused: {e}"
    if not there or there.get("state") not in FINISHED:
        cancel_backfills(rest, dag_id)
    return "present" if there else "created"


def cancel_backfills(rest, dag_id: str) -> None:
    """Cancels the DAG's unfinished backfills: their queued runs end as failed, no task runs.
    In the new environment, before its DAGs are switched on, the only ones are ours."""
    for backfill in rest.pages("/backfills", "backfills", {"dag_id": dag_id}):
        if backfill.get("completed_at") is None:
            rest.call("PUT", f"/backfills/{backfill['id']}/cancel", allow=(409,))


def next_runs(rest, page: int = 100) -> dict:
    """{dag_id: next_dagrun_logical_date or None} of every DAG (one paged listing)."""
    out, offset = {}, 0
    while True:
        answer = rest.call("GET", "/dags", {"exclude_stale": "true", "limit": page, "offset": offset}) or {}
        dags = answer.get("dags") or []
        out.update({d["dag_id"]: d.get("next_dagrun_logical_date") for d in dags})
        offset += len(dags)
        if not dags or offset >= answer.get("total_entries", 0):
            return out


def settled(rows: list, nexts: dict) -> list:
    """The DAG ids whose next run is not yet after their carried run (the DAG processor has not
    parsed them since). A DAG without a next run (its end date passed) is settled."""
    waiting = []
    for row in rows:
        upcoming = nexts.get(row["dag_id"])
        if upcoming is not None and _when(upcoming) <= _when(row["logical_date"]):
            waiting.append(row["dag_id"])
    return waiting


def carry_all(rest, rows: list, present, timeout: float, poll: float, heartbeat=lambda: None,
              clock=time.monotonic, sleep=time.sleep) -> dict:
    """Carries every row whose DAG is here, then waits until each carried DAG's next run moved
    past it (TimeoutError naming the others). Returns {"created", "present", "refused":
    {dag: why}, "missing"}."""
    report = {"created": [], "present": [], "refused": {}, "missing": []}
    mine = []
    for row in rows:
        if row["dag_id"] not in present:
            report["missing"].append(row["dag_id"])
            continue
        outcome = carry(rest, row)
        if outcome.startswith("refused"):
            report["refused"][row["dag_id"]] = outcome[len("refused: "):]
        else:
            report[outcome].append(row["dag_id"])
            mine.append(row)
        heartbeat()
    deadline = clock() + timeout
    while mine:
        waiting = settled(mine, next_runs(rest))
        if not waiting:
            break
        if clock() >= deadline:
            # Switched on now, these would run their intervals again from the start date.
            raise TimeoutError(f"the DAG processor did not reschedule {', '.join(waiting)} after "
                               f"their carried runs within {timeout:.0f} s: they stay paused")
        heartbeat()
        sleep(poll)
    return report
