"""What the pause/resume end-to-end modules share (test_pause_resume.py on Airflow 2.10.3,
test_pause_resume_af3.py on 3.0.6): the step-worker, the suite in moto (buckets,
KMS key, Lambda-task queue, the production state machines, the suite-event queue) and the
clients and helpers of one scenario."""
import contextlib
import gzip
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

import iam_execution
import machines
import metadata_bed as mb


ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
SUITE, LANDING = "mwaa-ops-suite", "landing-zone"
# Set by MWAA, not by the user: may differ between the environment before and after.
SERVER_ASSIGNED = {"Arn", "CreatedAt", "LastUpdate", "Status", "WebserverUrl", "ServiceRoleArn",
                   "CeleryExecutorQueue", "DatabaseVpcEndpointService", "WebserverVpcEndpointService",
                   "LoggingConfiguration"}


def worker_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "mwaa-ops" / "target"))
    binary = target / "debug" / "step-worker"
    assert binary.exists(), f"{binary} is missing: `cargo test --workspace` builds it (scripts/test does)"
    return binary


@contextlib.contextmanager
def aws_variables(moto_url):
    """The AWS SDK's standard variables pointing at moto while the block runs (the step-worker
    started in it builds its clients from them, as in Lambda); the environment as it was after."""
    saved = dict(os.environ)
    os.environ.update(AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def without_airflow(tmp, env):
    """moto, the local MWAA control plane (no Airflow behind it) and a Cycle for `env`, the
    SDK's variables pointing at moto; all stopped after the block, whatever it raised."""
    import mwaa_local
    from moto_bed import Moto
    moto, plane, cycle = Moto(tmp), None, None
    try:
        moto.start()
        with aws_variables(moto.url):
            execute_state_machines(moto.url)
            plane = mwaa_local.serve(moto_url=moto.url, airflows=[], region=REGION, account=ACCOUNT)
            cycle = Cycle(moto.url, plane.url, tmp, env)
            try:
                yield cycle
            finally:
                cycle.stop_worker()
    finally:
        if plane:
            plane.shutdown()
        moto.stop()


def write_export(cycle, env, created_at) -> dict:
    """An export of `env` as `mwaa_ops_export` writes it (one table, its manifest last), for
    the tests that play the export DAG; returns what the DAG sends to its task token."""
    stamp = created_at.strftime("%Y%m%dT%H%M%SZ")
    root = f"metadata/{env}/dt={created_at:%Y-%m-%d}/{stamp}"
    body = gzip.compress(b'{"key": "a", "val": "1"}\n')
    table_key = f"{root}/variable/variable.jsonl.gz"
    cycle.s3.put_object(Bucket=SUITE, Key=table_key, Body=body)
    manifest = {"format": "mwaa-ops-metadata/1", "export_id": f"export-{stamp}", "environment": env,
                "created_at": created_at.isoformat(), "airflow_version": "2.10.3",
                "location": f"s3://{SUITE}/{root}/manifest.json", "active_dags": [],
                "tables": [{"table": "variable", "key": table_key, "rows": 1, "max_id": None,
                            "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
                            "columns": ["key", "val"]}]}
    text = json.dumps(manifest, indent=1).encode()
    put = cycle.s3.put_object(Bucket=SUITE, Key=f"{root}/manifest.json", Body=text)
    return {"manifest": manifest["location"], "bucket": SUITE, "manifest_key": f"{root}/manifest.json",
            "manifest_sha256": hashlib.sha256(text).hexdigest(), "manifest_version_id": put["VersionId"],
            "export_id": manifest["export_id"],
            "airflow_version": "2.10.3", "tables": 1, "rows": 1, "active_dags": []}


def execute_state_machines(moto_url):
    """moto's Step Functions runs the definitions (by default it only records executions)."""
    urllib.request.urlopen(urllib.request.Request(
        f"{moto_url}/moto-api/config", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()))


class Cycle:
    """Clients and helpers of one scenario, on one environment."""

    def __init__(self, moto_url, plane_url, tmp, env):
        kw = dict(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        self.moto_url, self.plane_url, self.tmp, self.env = moto_url, plane_url, tmp, env
        self.s3, self.kms, self.sfn, self.sqs, self.events = (
            boto3.client(s, endpoint_url=moto_url, **kw) for s in ("s3", "kms", "stepfunctions", "sqs", "events"))
        self.mwaa = boto3.client("mwaa", endpoint_url=plane_url, config=Config(inject_host_prefix=False), **kw)
        self.hold = tmp / "hold"
        self.hold.mkdir()
        self.worker = None
        with socket.socket() as s:  # free when asked; step-worker binds it right after
            s.bind(("127.0.0.1", 0))
            self.lambda_api = "127.0.0.1:%d" % s.getsockname()[1]
        self.lambda_ = boto3.client("lambda", endpoint_url=f"http://{self.lambda_api}", **kw)

    def deploy(self, routes, poll_seconds=None, timeouts=None):
        """The suite in moto (buckets, KMS key, Lambda-task queue, state machines, a queue
        receiving the suite's events) and the step-worker serving the Lambda tasks (the
        functions' binaries; `poll_seconds`: see machines.definition; `timeouts`:
        {function: seconds} in place of the template's)."""
        self.s3.create_bucket(Bucket=LANDING)
        self.key_arn = self.kms.create_key()["KeyMetadata"]["Arn"]
        # As the template makes it: versioned (the snapshot records the manifest's version),
        # sealed with the suite key and an S3 Bucket Key.
        mb.versioned_bucket(self.s3, SUITE, self.key_arn)
        self.tasks = self.sqs.create_queue(QueueName="lambda-tasks")["QueueUrl"]
        self.events_queue = self.sqs.create_queue(QueueName="suite-events")["QueueUrl"]
        self.events.put_rule(Name="suite-events", EventPattern=json.dumps({"source": ["mwaa-ops"]}))
        self.events.put_targets(Rule="suite-events", Targets=[
            {"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:suite-events"}])
        self.machines = machines.deploy(self.sfn, REGION, ACCOUNT, self.tasks, SUITE, self.key_arn,
                                        poll_seconds=poll_seconds)
        self.worker = subprocess.Popen(
            [str(worker_binary())], stdout=open(self.tmp / "worker.log", "wb"), stderr=subprocess.STDOUT,
            env=dict(os.environ, AWS_ENDPOINT_URL_MWAA=self.plane_url, TASKS_QUEUE_URL=self.tasks,
                     SUITE_BUCKET=SUITE, ROUTES=json.dumps(routes), HOLD_DIR=str(self.hold), RUST_LOG="warn",
                     ROLE_KEYS=json.dumps(self.role_keys()), LAMBDA_API=self.lambda_api,
                     MACHINE_KEYS=json.dumps(machines.machine_keys(self.moto_url, SUITE, self.key_arn)),
                     FUNCTION_TIMEOUTS=json.dumps(timeouts or {})))

    def execution_key(self, without=None):
        """A key of this environment's execution role, as infra/dags/README.md documents it
        (its Airflow's tasks sign with it); `without`: Sids left out."""
        return iam_execution.register_with(self.moto_url, self.env, SUITE, self.key_arn, REGION,
                                           ACCOUNT, without)

    def role_keys(self):
        """Each function acting as its role of the template, for environments named like
        this one."""
        return machines.role_keys(self.moto_url, SUITE, self.key_arn, self.env.split("-")[0])

    def gate(self, function):
        """Holds `function`'s next invocations back (see step-worker) until `go`."""
        (self.hold / function).touch()

    def reached(self, function, timeout=300):
        """Waits until an invocation of `function` waits at its gate."""
        deadline = time.monotonic() + timeout
        while not (self.hold / f"{function}.waiting").exists():
            assert time.monotonic() < deadline, f"{function} was never invoked"
            time.sleep(0.2)

    def go(self, function):
        (self.hold / function).unlink()
        while (self.hold / f"{function}.waiting").exists():
            time.sleep(0.1)

    def arrivals_along(self, machine, stops, timeout=420):
        """Starts `machine` and delivers one arrival at each stop, in order: `(function, key)`
        holds that function's next invocation back, delivers `key` while it waits, then lets
        it go; `(condition, key)` delivers `key` once `condition()` holds. Returns the
        execution's (status, error, seconds, arn) and each key's outcomes."""
        gated = [where for where, _ in stops if isinstance(where, str)]
        assert isinstance(stops[0][0], str) and all(a != b for a, b in zip(gated, gated[1:])), stops
        outcomes, t0 = {}, time.monotonic()
        self.gate(gated.pop(0))
        arn = self.start(machine)
        for where, key in stops:
            if not isinstance(where, str):
                while not where():
                    assert time.monotonic() - t0 < timeout, f"{machine} never got to {key}"
                    time.sleep(0.2)
                outcomes[key] = self.arrive(key)
                continue
            self.reached(where)
            outcomes[key] = self.arrive(key)
            if gated:
                self.gate(gated.pop(0))
            self.go(where)
        end = mb.wait_execution(self.sfn, arn, timeout=timeout)
        return (end["status"], end.get("error"), time.monotonic() - t0, arn), outcomes

    def arrive(self, key):
        """A file lands under LANDING/`key` and trigger-dag gets its event (invoked as Lambda
        would be, beside the steps: a step held back does not hold it); each route's outcome."""
        self.s3.put_object(Bucket=LANDING, Key=key, Body=b"a,b\n")
        event = json.loads((ROOT / "events" / "s3-object-created.json").read_text())
        event["id"] = f"arrival-{key}"
        event["detail"]["bucket"]["name"], event["detail"]["object"]["key"] = LANDING, key
        answer = self.lambda_.invoke(FunctionName="trigger-dag", Payload=json.dumps(event))
        body = json.loads(answer["Payload"].read())
        assert "FunctionError" not in answer, body
        return [run["outcome"] for run in body["runs"]]

    def stop_worker(self):
        if self.worker:
            self.worker.kill()
            self.worker.wait()
            self.worker = None

    def admin(self, what, body=None):
        request = urllib.request.Request(f"{self.plane_url}/_bed/{what}", method="POST" if body is not None else "GET",
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read() or b"null")

    def status(self):
        try:
            return self.mwaa.get_environment(Name=self.env)["Environment"]["Status"]
        except self.mwaa.exceptions.ResourceNotFoundException:
            return "NOT_FOUND"

    def wait_status(self, wanted, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status() == wanted:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.env} is {self.status()}, not {wanted}")

    def create_environment(self, version):
        """The environment a user made, with a setting of every kind the configuration saves."""
        self.mwaa.create_environment(
            Name=self.env, AirflowVersion=version, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/mwaa-exec",
            SourceBucketArn="arn:aws:s3:::mwaa-ops-dags", DagS3Path="dags",
            RequirementsS3Path="requirements.txt", RequirementsS3ObjectVersion="v3",
            NetworkConfiguration={"SubnetIds": ["subnet-0a1", "subnet-0b2"], "SecurityGroupIds": ["sg-0c3"]},
            EnvironmentClass="mw1.medium", MaxWorkers=4, MinWorkers=2, Schedulers=2,
            AirflowConfigurationOptions={"core.default_task_retries": "2"},
            LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "WARNING"}},
            WebserverAccessMode="PUBLIC_ONLY", WeeklyMaintenanceWindowStart="SUN:03:30",
            Tags={"team": "data-platform", "cost-center": "42"})
        self.wait_status("AVAILABLE")

    def run(self, machine, timeout=420, **extra):
        """Starts an execution and waits for its end: (status, error, seconds, execution arn)."""
        t0 = time.monotonic()
        arn = self.start(machine, **extra)
        out = mb.wait_execution(self.sfn, arn, timeout=timeout)
        return out["status"], out.get("error"), time.monotonic() - t0, arn

    def start(self, machine, **extra):
        # moto names an unnamed execution "None": name each one.
        return self.sfn.start_execution(stateMachineArn=self.machines[machine], name=f"{machine}-{time.time_ns()}",
                                        input=json.dumps({"environment": self.env, "poll_seconds": 1, **extra}))["executionArn"]

    def steps(self, arn):
        """The states an execution entered, in order."""
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def inject(self, rules):
        """Faults for the next phase; returns the call count to measure the phase from."""
        self.admin("faults", [dict(rule, name=self.env) for rule in rules])
        return len(self.admin("calls"))

    def served(self, since):
        """The phase's calls since `since`, and the rules it left unserved (then cleared)."""
        left = self.admin("faults")
        request = urllib.request.Request(f"{self.plane_url}/_bed/faults", method="DELETE")
        urllib.request.urlopen(request).read()
        return self.admin("calls")[since:], left

    def deletes(self):
        return [c for c in self.admin("calls") if c.get("operation") == "DeleteEnvironment"]

    def keys(self, prefix):
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=SUITE, Prefix=prefix).get("Contents", [])]

    def suite_events(self):
        taken = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1).get("Messages", [])
            if not msgs:
                return taken
            for m in msgs:
                taken.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.events_queue, ReceiptHandle=m["ReceiptHandle"])


def logs(tmp: Path) -> dict:
    """Every log of the run: the Rust handlers', moto's, the Airflows' (servers and tasks)."""
    return {str(p.relative_to(tmp)): p.read_text(errors="replace") for p in tmp.rglob("*")
            if p.is_file() and (p.suffix == ".log" or "logs" in p.parts) and "pg" not in p.parts}
