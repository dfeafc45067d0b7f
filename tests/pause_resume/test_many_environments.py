"""One schedule pauses and resumes 20 environments at once, each on its own: the production
schedule, pause and resume state machines in moto's Step Functions (the schedule started with
the input the template's PauseSchedule and ResumeSchedule give it), their Lambda tasks served
by the real Rust handlers (step-worker), the local MWAA control plane holding 20 environments.

The DAG side is played, not run: the control plane sends every environment's InvokeRestApi to
one Airflow per version (mwaa_local.pick_airflow), so 20 real exports would be 20 copies of
one metadata database, and 20 imports would collide in it. A small stand-in Airflow answers
the REST calls, and for each `mwaa_ops_export` / `mwaa_ops_import` run it starts, answers the
run's task token the way those DAGs do: an export of that environment only (test_pause_proof.py's
shape, its own S3 prefix and manifest), or its failure. What a real export and import move is
proved per environment in test_pause_resume.py and test_pause_resume_af3.py.

Three environments fail, each differently, and alone:
  dev-07  UPDATING at the pause          -> its pause fails at once (MwaaOps.EnvironmentNotAvailable)
  dev-13  its export DAG fails           -> its pause fails with the DAG's error, environment kept
  dev-17  CREATE_FAILED at the resume    -> its resume fails (MwaaOps.CreateFailed)
The others pause (deleted) and resume (created again, imported, announced). Skipped only with
MWAA_OPS_SKIP_AIRFLOW=1 (like the other end-to-end modules, though it needs no Airflow).
"""
import datetime as dt
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

import cycle as shared
import machines
import metadata_bed as mb
from cycle import REGION

pytestmark = pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1", reason="MWAA_OPS_SKIP_AIRFLOW=1")
ENVS = [f"dev-{i:02d}" for i in range(20)]
NOT_AVAILABLE, EXPORT_FAILS, CREATE_FAILS = "dev-07", "dev-13", "dev-17"
# The machines' default poll (60 s) scaled to the bed, as machines.py scales pausing_wait_seconds.
BED_POLL = 2


class PlayedDags:
    """A stand-in Airflow 2 REST API: DAGs exist and can be switched; a run of the export or
    import DAG is answered on its task token from a thread, as the DAGs answer."""

    def __init__(self, cycle, moto_url):
        self.cycle, self.lock, self.runs, self.answers = cycle, threading.Lock(), set(), []
        self.sfn = boto3.client("stepfunctions", endpoint_url=moto_url, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test")
        played = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self):
                dag = urllib.parse.urlparse(self.path).path.split("/")[4]
                self._answer(200, {"dag_id": dag, "is_paused": False})

            def do_PATCH(self):
                dag = urllib.parse.urlparse(self.path).path.split("/")[4]
                self._answer(200, {"dag_id": dag, "is_paused": self._body().get("is_paused", False)})

            def do_POST(self):
                parts = urllib.parse.urlparse(self.path).path.split("/")  # /api/v1/dags/<dag>/dagRuns
                dag, body = parts[4], self._body()
                with played.lock:
                    if body["dag_run_id"] in played.runs:
                        return self._answer(409, {"title": "DAGRun already exists"})
                    played.runs.add(body["dag_run_id"])
                if dag in ("mwaa_ops_export", "mwaa_ops_import"):
                    threading.Thread(target=played.answer, args=(dag, body["conf"]), daemon=True).start()
                self._answer(200, {"dag_id": dag, "dag_run_id": body["dag_run_id"], "state": "queued"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.info = {"version": "2.10.3", "major": 2, "base_url": f"http://127.0.0.1:{self.server.server_port}",
                     "api_prefix": "/api/v1", "username": "admin", "password": "admin"}

    def answer(self, dag, conf):
        env, token = conf["environment"], conf["task_token"]
        if dag == "mwaa_ops_export" and env == EXPORT_FAILS:
            self.sfn.send_task_failure(taskToken=token, error="MwaaOps.ExportFailed",
                                       cause=f"the export of {env} failed (played)")
        elif dag == "mwaa_ops_export":
            out = shared.write_export(self.cycle, env, dt.datetime.now(dt.timezone.utc))
            self.sfn.send_task_success(taskToken=token, output=json.dumps(out))
        else:
            self.sfn.send_task_success(taskToken=token, output=json.dumps(
                {"manifest": conf["manifest"], "export_id": conf["export_id"], "already_imported": False,
                 "rows": 1, "inserted": 1, "remapped": 0, "active_dags": []}))
        with self.lock:
            self.answers.append((dag, env))

    def stop(self):
        self.server.shutdown()


def scheduled(cycle, schedule_arn, action, machine, timeout=600):
    """Fires the template's PauseSchedule or ResumeSchedule (its Input, its role's key:
    machines.fire); waits for it and for every execution it started. Returns the schedule's
    status and {environment: (status, error)}."""
    t0 = time.monotonic()
    schedule = {"pause": "PauseSchedule", "resume": "ResumeSchedule"}[action]
    arn = machines.fire(cycle.moto_url, schedule, *scheduler_setting(schedule_arn))
    schedule = mb.wait_execution(cycle.sfn, arn, timeout=timeout)
    started = cycle.sfn.list_executions(stateMachineArn=cycle.machines[machine], maxResults=1000)["executions"]
    ends = {}
    for e in started:
        env = json.loads(cycle.sfn.describe_execution(executionArn=e["executionArn"])["input"])["environment"]
        end = mb.wait_execution(cycle.sfn, e["executionArn"], timeout=max(10, timeout - (time.monotonic() - t0)))
        assert env not in ends, f"two {action}s of {env}"
        ends[env] = (end["status"], end.get("error"))
    return schedule["status"], ends, time.monotonic() - t0


def scheduler_setting(schedule_arn):
    """The parameters and resources the template's schedules and ScheduleRole resolve with."""
    return {"PausedEnvironments": ",".join(ENVS)}, {"ScheduleStateMachine": schedule_arn}


def refused_to_scheduler(cycle, schedule_arn, machine_arn):
    """The error a start of `machine_arn` signed with ScheduleRole's key (the role as deployed
    with this schedule machine) ends in (None: started)."""
    key = machines.scheduler_key(cycle.moto_url, *scheduler_setting(schedule_arn))
    sfn = boto3.client("stepfunctions", endpoint_url=cycle.moto_url, region_name=REGION,
                       aws_access_key_id=key, aws_secret_access_key="bed")
    try:
        sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps({"environment": ENVS[0]}))
    except sfn.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("many-environments")
    out = {}
    with shared.without_airflow(tmp, ENVS[0]) as cycle:
        played = PlayedDags(cycle, cycle.moto_url)
        try:
            cycle.admin("airflows", [played.info])
            cycle.deploy([], poll_seconds=BED_POLL)
            machines.schedule_key(cycle.moto_url, cycle.machines, shared.ACCOUNT)
            schedule = cycle.sfn.create_state_machine(
                name="mwaa-ops-schedule", roleArn=machines.role_arn(shared.ACCOUNT, "mwaa-ops", "schedule"),
                definition=json.dumps(machines.definition("schedule", {
                    "PauseStateMachineArn": cycle.machines["pause"],
                    "ResumeStateMachineArn": cycle.machines["resume"]}, cycle.tasks)))["stateMachineArn"]
            for env in ENVS:
                cycle.env = env
                cycle.create_environment("2.10.3")
            cycle.admin("status", {"name": NOT_AVAILABLE, "status": "UPDATING"})

            # The scheduler's role may start the fan-out and nothing else.
            out["scheduler_direct_pause"] = refused_to_scheduler(cycle, schedule, cycle.machines["pause"])
            out["pause"] = scheduled(cycle, schedule, "pause", "pause")
            out["after_pause"] = {env: status_of(cycle, env) for env in ENVS}
            out["snapshots"] = sorted(k.split("/")[1] for k in cycle.keys("snapshots/") if k.endswith("/latest.json"))
            out["marks_after_pause"] = sorted(k.split("/")[1] for k in cycle.keys("pausing/"))

            cycle.admin("status", {"name": NOT_AVAILABLE, "status": "AVAILABLE"})
            cycle.admin("fail", {"name": CREATE_FAILS, "status": "CREATE_FAILED"})
            out["resume"] = scheduled(cycle, schedule, "resume", "resume")
            out["after_resume"] = {env: status_of(cycle, env) for env in ENVS}
            out["restored"] = sorted(k.split("/")[1] for k in cycle.keys("snapshots/") if k.endswith("/restored.json"))
            out["marks_after_resume"] = sorted(k.split("/")[1] for k in cycle.keys("pausing/"))
            out["answers"] = sorted(played.answers)
            out["events"] = cycle.suite_events()
            out["worker_log"] = (tmp / "worker.log").read_text(errors="replace")
            yield out
        finally:
            played.stop()


def status_of(cycle, env):
    cycle.env = env
    return cycle.status()


def test_one_schedule_pauses_each_environment_on_its_own(scenario):
    status, ends, seconds = scenario["pause"]
    assert status == "SUCCEEDED", "one environment's failure does not fail the others' schedule"
    assert sorted(ends) == ENVS, "one pause per environment, no more"
    assert scenario["scheduler_direct_pause"] == "AccessDeniedException", \
        "Scheduler's role may start the schedule's fan-out only, not a pause itself"
    assert ends.pop(NOT_AVAILABLE) == ("FAILED", "MwaaOps.EnvironmentNotAvailable")
    assert ends.pop(EXPORT_FAILS) == ("FAILED", "MwaaOps.ExportFailed")
    assert set(ends.values()) == {("SUCCEEDED", None)}, (ends, scenario["worker_log"][-3000:])
    after = scenario["after_pause"]
    # Left as they were found: the one not AVAILABLE still UPDATING, the other up.
    assert (after.pop(NOT_AVAILABLE), after.pop(EXPORT_FAILS)) == ("UPDATING", "AVAILABLE")
    assert set(after.values()) == {"NOT_FOUND"}, after
    paused = sorted(set(ENVS) - {NOT_AVAILABLE, EXPORT_FAILS})
    assert scenario["snapshots"] == paused
    # A failed pause ended its own mark (its arrivals flow again); a paused environment keeps
    # its mark until its resume.
    assert scenario["marks_after_pause"] == paused


def test_one_schedule_resumes_each_environment_on_its_own(scenario):
    status, ends, seconds = scenario["resume"]
    assert status == "SUCCEEDED"
    assert sorted(ends) == ENVS
    assert ends.pop(CREATE_FAILS) == ("FAILED", "MwaaOps.CreateFailed")
    # Never paused by a verified pause: nothing to resume from, said by each on its own.
    assert ends.pop(NOT_AVAILABLE) == ("FAILED", "MwaaOps.NoSnapshot")
    assert ends.pop(EXPORT_FAILS) == ("FAILED", "MwaaOps.NoSnapshot")
    assert set(ends.values()) == {("SUCCEEDED", None)}, (ends, scenario["worker_log"][-3000:])
    resumed = sorted(set(ENVS) - {NOT_AVAILABLE, EXPORT_FAILS, CREATE_FAILS})
    assert scenario["restored"] == resumed
    assert scenario["after_resume"][CREATE_FAILS] == "CREATE_FAILED"
    assert all(scenario["after_resume"][env] == "AVAILABLE" for env in resumed)
    # The environment that failed to come back keeps its mark: its arrivals stay held.
    assert scenario["marks_after_resume"] == [CREATE_FAILS]


def test_each_export_and_import_was_its_environments_own(scenario):
    exported = sorted(set(ENVS) - {NOT_AVAILABLE})
    imported = sorted(set(ENVS) - {NOT_AVAILABLE, EXPORT_FAILS, CREATE_FAILS})
    assert scenario["answers"] == sorted([("mwaa_ops_export", e) for e in exported]
                                         + [("mwaa_ops_import", e) for e in imported])


def test_each_environment_is_announced_on_its_own(scenario):
    by_kind = {}
    for event in scenario["events"]:
        by_kind.setdefault(event["detail-type"], []).append(event["detail"]["environment"])
    assert sorted(by_kind.pop("Environment Paused")) == sorted(set(ENVS) - {NOT_AVAILABLE, EXPORT_FAILS})
    assert sorted(by_kind.pop("Environment Resumed")) == sorted(set(ENVS) - {NOT_AVAILABLE, EXPORT_FAILS,
                                                                              CREATE_FAILS})
