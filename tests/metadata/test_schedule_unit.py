"""Unit tests of mwaa_ops_schedule.py (where each DAG's schedule stood, carried across a pause
on Airflow 3) against a fake Airflow behind a fake MWAA client. No Airflow, no network."""
import pytest

import mwaa_ops_rest as r
import mwaa_ops_schedule as s
from test_metadata_rest_unit import FakeMwaa

T = "2026-11-29T{:02}:00:00Z".format


def run(dag_id, hour, run_type="scheduled", state="success"):
    return {"dag_id": dag_id, "logical_date": T(hour), "data_interval_start": T(hour),
            "data_interval_end": T(hour + 1), "run_type": run_type, "state": state}


class FakeAirflow:
    """The few REST endpoints the module uses, over in-memory runs, backfills and next runs."""

    def __init__(self, runs=(), nexts=None, backfill_status=200, settle_after=0):
        self.runs, self.nexts = list(runs), dict(nexts or {})
        self.backfills, self.cancelled = [], []
        self.backfill_status, self.settle_after, self.listings = backfill_status, settle_after, 0

    def __call__(self, method, path, query, body):
        if (method, path) == ("POST", s.RUNS):
            found = [x for x in self.runs if x["dag_id"] in body["dag_ids"]
                     and x["state"] in body.get("states", [x["state"]])
                     and body.get("logical_date_gte", "") <= (x["logical_date"] or "")
                     and (x["logical_date"] or "") <= body.get("logical_date_lte", "9999")]
            found.sort(key=lambda x: x["logical_date"] or "", reverse=True)
            start = body.get("page_offset", 0)
            return 200, {"dag_runs": found[start:start + body["page_limit"]], "total_entries": len(found)}
        if (method, path) == ("POST", "/backfills"):
            if self.backfill_status != 200:
                return self.backfill_status, {"detail": "Another backfill is running for dag"}
            self.backfills.append(dict(body, id=len(self.backfills) + 1, completed_at=None))
            self.runs.append(dict(run(body["dag_id"], 0, "backfill", "queued"), logical_date=body["from_date"]))
            return 200, self.backfills[-1]
        if (method, path) == ("GET", "/backfills"):
            mine = [b for b in self.backfills if b["dag_id"] == query["dag_id"]]
            start = int(query["offset"])
            return 200, {"backfills": mine[start:start + int(query["limit"])], "total_entries": len(mine)}
        if method == "PUT" and path.endswith("/cancel"):
            self.cancelled.append(path)
            backfill = self.backfills[int(path.split("/")[2]) - 1]
            if backfill["completed_at"]:
                return 409, {"detail": "Backfill is already completed."}
            backfill["completed_at"] = "now"
            for x in self.runs:
                if x["run_type"] == "backfill" and x["state"] == "queued":
                    x["state"] = "failed"
            return 200, backfill
        if (method, path) == ("GET", "/dags"):
            self.listings += 1
            settled = self.listings > self.settle_after
            dags = [{"dag_id": d, "next_dagrun_logical_date": (n if settled else T(0))} for d, n in self.nexts.items()]
            return 200, {"dags": dags, "total_entries": len(dags)}
        return 404, {"detail": f"no {method} {path}"}


def rest(airflow):
    return r.Rest("env", FakeMwaa(airflow), sleep=lambda _: None)


def test_the_export_keeps_the_latest_finished_automated_run_of_each_dag():
    airflow = FakeAirflow([
        run("hourly", 3), run("hourly", 5, state="failed"), run("hourly", 6, state="queued"),
        run("hourly", 7, "manual"), run("hourly", 4, "backfill"),
        {**run("hourly", 9, "manual"), "logical_date": None},
        run("manual_only", 2, "manual"), run("mwaa_ops_import", 1)])
    rows = s.schedule_rows(rest(airflow), ["manual_only", "hourly", "mwaa_ops_import", "never_ran"])
    assert rows == [{"dag_id": "hourly", "logical_date": T(5), "data_interval_start": T(5),
                     "data_interval_end": T(6), "state": "failed"}]
    assert list(rows[0]) == s.COLUMNS == r.TABLES["dag_run"]


def test_the_export_pages_past_manual_runs():
    airflow = FakeAirflow([run("d", h, "manual") for h in range(10, 20)] + [run("d", 2)])
    assert s.last_done_run(rest(airflow), "d", page=3)["logical_date"] == T(2)


def test_the_import_creates_a_backfill_run_cancels_it_and_waits_for_the_next_run_to_move():
    airflow = FakeAirflow(nexts={"hourly": T(6)}, settle_after=2)
    rows = [{"dag_id": "hourly", "logical_date": T(5), "data_interval_start": T(5),
             "data_interval_end": T(6), "state": "success"}]
    report = s.carry_all(rest(airflow), rows, {"hourly": True}, timeout=60, poll=1)
    assert report == {"created": ["hourly"], "present": [], "refused": {}, "missing": []}
    assert airflow.backfills == [{"dag_id": "hourly", "from_date": T(5), "to_date": T(5), "max_active_runs": 1,
                                  "run_backwards": False, "reprocess_behavior": "none", "dag_run_conf": {},
                                  "id": 1, "completed_at": "now"}]
    assert airflow.cancelled == ["/backfills/1/cancel"]
    assert [x["state"] for x in airflow.runs] == ["failed"], "the carried run ran no task"
    assert airflow.listings == 3, "waited until the DAG processor moved the next run past it"
    again = s.carry_all(rest(airflow), rows, {"hourly": True}, timeout=60, poll=1)
    assert again["present"] == ["hourly"] and len(airflow.backfills) == 1, "a retried import creates nothing"
    assert airflow.cancelled == ["/backfills/1/cancel"], "nor cancels again"


def test_a_retry_after_an_interrupted_import_cancels_the_run_it_left_queued():
    airflow = FakeAirflow(nexts={"hourly": T(6)})
    airflow.backfills.append({"id": 1, "dag_id": "hourly", "completed_at": None})
    airflow.runs.append(run("hourly", 5, "backfill", "queued"))  # made, then the import died
    rows = [{"dag_id": "hourly", "logical_date": T(5), "data_interval_start": None,
             "data_interval_end": None, "state": "success"}]
    report = s.carry_all(rest(airflow), rows, {"hourly": True}, timeout=60, poll=1)
    assert report["present"] == ["hourly"] and airflow.cancelled == ["/backfills/1/cancel"]
    assert [x["state"] for x in airflow.runs] == ["failed"] and len(airflow.backfills) == 1


def test_a_dag_the_processor_does_not_reschedule_in_time_fails_the_import():
    airflow = FakeAirflow(nexts={"hourly": T(0)}, settle_after=10**6)
    clock = iter(range(0, 1000, 30))
    rows = [{"dag_id": "hourly", "logical_date": T(5), "data_interval_start": None,
             "data_interval_end": None, "state": "success"}]
    with pytest.raises(TimeoutError, match="did not reschedule hourly .* they stay paused"):
        s.carry_all(rest(airflow), rows, {"hourly": True}, timeout=60, poll=1, clock=lambda: next(clock),
                    sleep=lambda _: None)


def test_missing_dags_and_refused_backfills_are_reported_not_fatal():
    airflow = FakeAirflow(backfill_status=409)
    airflow.runs.append(run("taken", 5, "manual"))
    rows = [{"dag_id": d, "logical_date": T(5), "data_interval_start": None, "data_interval_end": None,
             "state": "success"} for d in ("gone", "busy", "taken")]
    report = s.carry_all(rest(airflow), rows, {"busy": True, "taken": True}, timeout=1, poll=1)
    assert report["missing"] == ["gone"] and report["created"] == []
    assert "409" in report["refused"]["busy"] and "manual run holds" in report["refused"]["taken"]


def test_a_dag_without_a_next_run_is_settled_and_an_earlier_next_run_is_not():
    rows = [{"dag_id": "ended", "logical_date": T(5)}, {"dag_id": "stale", "logical_date": T(5)},
            {"dag_id": "moved", "logical_date": T(5)}]
    assert s.settled(rows, {"ended": None, "stale": T(5), "moved": T(6)}) == ["stale"]
