"""The real-Airflow part of the bed works: every per-commit version starts on PostgreSQL, answer the
REST API the way MWAA's InvokeRestApi will relay it, run a task, and stop cleanly.

Run: .bed/venv/bin/python -m pytest tests/bed/test_airflow_bed.py   (needs scripts/install)
Skipped only with MWAA_OPS_SKIP_AIRFLOW=1.
"""
import os
import time
from urllib.parse import urlsplit

import pytest

import airflow_bed as ab

pytestmark = pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1",
                                reason="MWAA_OPS_SKIP_AIRFLOW=1")

VERSIONS = ab.per_commit_versions()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pg = ab.Postgres()  # one cluster; every Airflow gets a fresh database in it
    try:
        pg.start(tmp_path_factory.mktemp("postgres"))
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=VERSIONS)
def airflow(request, postgres, tmp_path):
    af = ab.Airflow(request.param, postgres, ab.DAGS, tmp_path)
    try:
        af.start()
        yield af
    finally:
        af.stop()


def wait_for_state(info, headers, run_id, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, run = ab.api(info, "GET", f"/dags/bed_smoke/dagRuns/{run_id}", headers=headers)
        assert status == 200, run
        if run["state"] in ("success", "failed"):
            return run["state"]
        time.sleep(1)
    return run["state"]


def test_airflow_rest_api_and_clean_stop(airflow):
    info = airflow.info()
    assert info["api_prefix"] == ("/api/v1" if info["major"] == 2 else "/api/v2")
    headers = ab.auth_headers(info)
    assert airflow.wait_for_dag("bed_smoke")["is_paused"] is False

    conf = {"bucket": "b", "key": "in/x y.csv", "n": 1}
    body = {"dag_run_id": "bed-run-1", "conf": conf}
    if info["major"] == 3:
        body["logical_date"] = None  # required key on 3.x (missing -> 422)
    status, run = ab.api(info, "POST", "/dags/bed_smoke/dagRuns", body, headers)
    assert status == 200, run
    status, _ = ab.api(info, "POST", "/dags/bed_smoke/dagRuns", body, headers)
    assert status == 409
    status, _ = ab.api(info, "POST", "/dags/no_such_dag/dagRuns", body, headers)
    assert status == 404
    status, run = ab.api(info, "GET", "/dags/bed_smoke/dagRuns/bed-run-1", headers=headers)
    assert status == 200 and run["conf"] == conf

    # The body MWAA callers send must differ per major version:
    other = {"dag_run_id": "bed-run-2", "conf": {}}
    if info["major"] == 2:  # 2.10.3 refuses an explicit null: "Field may not be null."
        status, err = ab.api(info, "POST", "/dags/bed_smoke/dagRuns", dict(other, logical_date=None), headers)
        assert status == 400 and "logical_date" in str(err)
    else:  # 3.0.6 refuses a body without the key
        status, _ = ab.api(info, "POST", "/dags/bed_smoke/dagRuns", other, headers)
        assert status == 422

    assert wait_for_state(info, headers, "bed-run-1") == "success"  # the task really ran
    assert airflow.wait_for_dag("bed_paused")["is_paused"] is True

    port = urlsplit(info["base_url"]).port
    assert airflow.pids()
    airflow.stop()
    assert airflow.pids() == []
    assert ab.port_is_free(port)
    airflow.stop()  # idempotent
