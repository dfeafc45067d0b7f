"""Tests of the local MWAA control plane (mwaa_local.py) with boto3 and moto.

Run: .bed/venv/bin/python -m pytest tests/bed/test_mwaa_local.py
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import mwaa_local

HERE = os.path.dirname(os.path.abspath(__file__))

REGION, ACCOUNT = "us-east-1", "123456789012"
CREDS = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
FAST = {"create_delay": 0.3, "update_delay": 0.3, "delete_delay": 0.3, "pending_poll": 0.1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def admin(url: str, path: str, body=None, method: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + "/_bed/" + path, data=data,
                                 method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        return json.loads(resp.read())


# ---------------------------------------------------------------------------
# A fake Airflow REST API: records requests, answers by path
# ---------------------------------------------------------------------------
class FakeAirflow:
    def __init__(self):
        self.requests: list[dict] = []
        self.issued = 0           # JWTs handed out
        self.valid_token = None   # the only bearer token accepted
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body):
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                parts = urlsplit(self.path)
                if parts.path == "/auth/token" and self.command == "POST":
                    creds = json.loads(raw)
                    if creds != {"username": "admin", "password": "pw3"}:
                        return self.reply(401, {"detail": "bad credentials"})
                    fake.issued += 1
                    fake.valid_token = f"jwt-{fake.issued}"
                    return self.reply(201, {"access_token": fake.valid_token})
                fake.requests.append({
                    "method": self.command, "path": parts.path,
                    "query": parse_qs(parts.query), "auth": self.headers.get("Authorization"),
                    "body": json.loads(raw) if raw else None})
                auth = self.headers.get("Authorization", "")
                if parts.path.startswith("/api/v2/"):
                    if auth != f"Bearer {fake.valid_token}":
                        return self.reply(401, {"detail": "Not authenticated"})
                elif auth != "Basic " + base64.b64encode(b"admin:pw2").decode():
                    return self.reply(401, {"title": "Unauthorized", "status": 401})
                tail = parts.path.split("/", 3)[3]
                if tail == "dags/ok/dagRuns":
                    return self.reply(200, {"dag_run_id": "r1", "state": "queued",
                                            "conf": (json.loads(raw) if raw else {}).get("conf"),
                                            "note": None})
                if tail == "dags/missing/dagRuns":
                    return self.reply(404, {"title": "DAG not found", "status": 404,
                                            "type": "about:blank"})
                if tail == "boom":
                    return self.reply(500, {"title": "Internal Server Error", "status": 500})
                if tail == "empty":
                    return self.reply(204, None)
                return self.reply(200, {"path": parts.path})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def airflows(self):
        return [
            {"version": "2.10.3", "major": 2, "base_url": self.url, "api_prefix": "/api/v1",
             "auth": "basic", "username": "admin", "password": "pw2", "token_url": None},
            {"version": "3.0.6", "major": 3, "base_url": self.url, "api_prefix": "/api/v2",
             "auth": "jwt", "username": "admin", "password": "pw3",
             "token_url": self.url + "/auth/token"},
        ]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_url():
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, "MOTO_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/data.json")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def airflow():
    fake = FakeAirflow()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def plane(moto_url, airflow):
    handle = mwaa_local.serve(moto_url=moto_url, airflows=airflow.airflows(),
                              region=REGION, account=ACCOUNT)
    yield handle
    handle.shutdown()


@pytest.fixture(autouse=True)
def fresh(plane, airflow):
    admin(plane.url, "reset", {})
    admin(plane.url, "config", FAST)
    admin(plane.url, "airflows", airflow.airflows())
    airflow.requests.clear()


def mwaa_client(plane, **config):
    return boto3.client("mwaa", endpoint_url=plane.url,
                        config=Config(inject_host_prefix=False, **config), **CREDS)


@pytest.fixture
def mwaa(plane):
    return mwaa_client(plane, retries={"total_max_attempts": 1})


@pytest.fixture(scope="session")
def ec2(moto_url):
    return boto3.client("ec2", endpoint_url=moto_url, **CREDS)


def env_input(name, **extra):
    base = {
        "Name": name,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mwaa-exec",
        "SourceBucketArn": "arn:aws:s3:::mwaa-bucket",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"],
                                 "SecurityGroupIds": ["sg-0123456789"]},
    }
    base.update(extra)
    return base


def wait_status(mwaa, name, wanted, timeout=10.0):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        status = mwaa.get_environment(Name=name)["Environment"]["Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {wanted}; saw {seen}")


def wait_gone(mwaa, name, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            mwaa.get_environment(Name=name)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} was never deleted")


def error_of(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r


def vpc_with_subnets(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName=f"mwaa-{time.time_ns()}", Description="mwaa",
                                   VpcId=vpc)["GroupId"]
    return vpc, subnets, sg


def endpoint(ec2, vpc, subnets, sg, service):
    return ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=service, VpcEndpointType="Interface",
                                   SubnetIds=subnets, SecurityGroupIds=[sg])["VpcEndpoint"]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
def test_create_goes_creating_then_available_with_full_shape(mwaa):
    out = mwaa.create_environment(**env_input(
        "shape-env", AirflowVersion="2.10.3", Tags={"team": "data"},
        LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}))
    assert out["Arn"] == f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/shape-env"
    assert mwaa.get_environment(Name="shape-env")["Environment"]["Status"] == "CREATING"
    assert wait_status(mwaa, "shape-env", "AVAILABLE") == ["CREATING", "AVAILABLE"]
    env = mwaa.get_environment(Name="shape-env")["Environment"]
    for key in ("Name", "Arn", "Status", "CreatedAt", "AirflowVersion", "EnvironmentClass",
                "ExecutionRoleArn", "ServiceRoleArn", "SourceBucketArn", "DagS3Path",
                "AirflowConfigurationOptions", "LoggingConfiguration", "MinWorkers", "MaxWorkers",
                "MinWebservers", "MaxWebservers", "Schedulers", "NetworkConfiguration",
                "WebserverAccessMode", "WebserverUrl", "WebserverVpcEndpointService",
                "DatabaseVpcEndpointService", "CeleryExecutorQueue", "EndpointManagement",
                "Tags", "WeeklyMaintenanceWindowStart", "LastUpdate"):
        assert key in env, key
    assert isinstance(env["CreatedAt"], datetime)
    assert (env["EnvironmentClass"], env["MinWorkers"], env["MaxWorkers"], env["Schedulers"],
            env["MinWebservers"], env["MaxWebservers"]) == ("mw1.small", 1, 10, 2, 2, 2)
    assert (env["WebserverAccessMode"], env["EndpointManagement"]) == ("PRIVATE_ONLY", "SERVICE")
    assert re.fullmatch(rf"arn:aws:sqs:{REGION}:{ACCOUNT}:airflow-celery-[0-9a-f-]{{36}}",
                        env["CeleryExecutorQueue"])
    assert re.fullmatch(r"com\.amazonaws\.vpce\.us-east-1\.vpce-svc-[0-9a-f]{17}",
                        env["DatabaseVpcEndpointService"])
    assert env["LoggingConfiguration"]["TaskLogs"]["CloudWatchLogGroupArn"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-shape-env-Task")
    assert env["LoggingConfiguration"]["WorkerLogs"] == {"Enabled": False, "LogLevel": "INFO"}
    assert env["LastUpdate"]["Status"] == "SUCCESS"
    assert env["Tags"] == {"team": "data"}
    assert mwaa.list_environments()["Environments"] == ["shape-env"]
    assert mwaa.create_cli_token(Name="shape-env")["WebServerHostname"] == env["WebserverUrl"]
    assert mwaa.create_web_login_token(Name="shape-env")["WebToken"]


def test_validation_and_not_found_errors(plane, mwaa):
    raw = mwaa_client(plane, parameter_validation=False, retries={"total_max_attempts": 1})
    code, status, r = error_of(mwaa.create_environment, **env_input("1-starts-with-digit"))
    assert (code, status) == ("ValidationException", 400)
    assert "regular expression" in r["Error"]["Message"]
    assert error_of(mwaa.create_environment, **env_input("x" * 81))[:2] == \
        ("ValidationException", 400)
    bad = env_input("missing-member")
    del bad["ExecutionRoleArn"]
    assert error_of(raw.create_environment, **bad)[:2] == ("ValidationException", 400)
    code, status, r = error_of(mwaa.create_environment,
                               **env_input("old-version", AirflowVersion="2.0.2"))
    assert (code, status) == ("ValidationException", 400) and "2.0.2" in r["Error"]["Message"]
    one_subnet = env_input("one-subnet")
    one_subnet["NetworkConfiguration"]["SubnetIds"] = ["subnet-1"]
    assert error_of(raw.create_environment, **one_subnet)[:2] == ("ValidationException", 400)
    mwaa.create_environment(**env_input("dup-env"))
    assert error_of(mwaa.create_environment, **env_input("dup-env"))[:2] == \
        ("ValidationException", 400)
    for call, kwargs in ((mwaa.get_environment, {}), (mwaa.delete_environment, {}),
                         (mwaa.update_environment, {"MaxWorkers": 3}),
                         (mwaa.create_cli_token, {}),
                         (mwaa.invoke_rest_api, {"Path": "/dags", "Method": "GET"})):
        assert error_of(call, Name="no-such-env", **kwargs)[:2] == \
            ("ResourceNotFoundException", 404), call
    arn = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/no-such-env"
    assert error_of(mwaa.list_tags_for_resource, ResourceArn=arn)[:2] == \
        ("ResourceNotFoundException", 404)
    assert error_of(mwaa.list_tags_for_resource, ResourceArn="arn:aws:s3:::nope")[:2] == \
        ("ValidationException", 400)


def test_list_pagination_and_tags(mwaa):
    for i in range(3):
        mwaa.create_environment(**env_input(f"page-{i}"))
    first = mwaa.list_environments(MaxResults=2)
    assert first["Environments"] == ["page-0", "page-1"] and first["NextToken"]
    second = mwaa.list_environments(MaxResults=2, NextToken=first["NextToken"])
    assert second["Environments"] == ["page-2"] and "NextToken" not in second
    pages = mwaa.get_paginator("list_environments").paginate(PaginationConfig={"PageSize": 1})
    assert [n for p in pages for n in p["Environments"]] == ["page-0", "page-1", "page-2"]
    arn = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/page-0"
    mwaa.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    mwaa.untag_resource(ResourceArn=arn, tagKeys=["a"])
    assert mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}


def test_customer_endpoints_pending_until_database_endpoint(mwaa, ec2):
    vpc, subnets, sg = vpc_with_subnets(ec2)
    mwaa.create_environment(**env_input(
        "cust-public", EndpointManagement="CUSTOMER", WebserverAccessMode="PUBLIC_ONLY",
        NetworkConfiguration={"SubnetIds": subnets, "SecurityGroupIds": [sg]}))
    assert wait_status(mwaa, "cust-public", "PENDING") == ["CREATING", "PENDING"]
    time.sleep(0.5)
    env = mwaa.get_environment(Name="cust-public")["Environment"]
    assert env["Status"] == "PENDING"
    endpoint(ec2, vpc, subnets, sg, env["DatabaseVpcEndpointService"])
    assert wait_status(mwaa, "cust-public", "AVAILABLE") == ["PENDING", "AVAILABLE"]


def test_private_only_needs_both_endpoints_and_deleted_ones_do_not_count(mwaa, ec2):
    vpc, subnets, sg = vpc_with_subnets(ec2)
    mwaa.create_environment(**env_input(
        "cust-private", EndpointManagement="CUSTOMER", WebserverAccessMode="PRIVATE_ONLY",
        NetworkConfiguration={"SubnetIds": subnets, "SecurityGroupIds": [sg]}))
    wait_status(mwaa, "cust-private", "PENDING")
    env = mwaa.get_environment(Name="cust-private")["Environment"]
    # The webserver endpoint comes and goes before the database one exists: a poll between
    # two of these calls must never see both alive (under load it did, in the other order).
    gone = endpoint(ec2, vpc, subnets, sg, env["WebserverVpcEndpointService"])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gone["VpcEndpointId"]])
    endpoint(ec2, vpc, subnets, sg, env["DatabaseVpcEndpointService"])
    time.sleep(0.6)
    assert mwaa.get_environment(Name="cust-private")["Environment"]["Status"] == "PENDING"
    endpoint(ec2, vpc, subnets, sg, env["WebserverVpcEndpointService"])
    wait_status(mwaa, "cust-private", "AVAILABLE")


def test_status_events_reach_eventbridge_and_delete_ends_in_not_found(plane, mwaa, moto_url):
    events = boto3.client("events", endpoint_url=moto_url, **CREDS)
    sqs = boto3.client("sqs", endpoint_url=moto_url, **CREDS)
    queue = sqs.create_queue(QueueName=f"mwaa-events-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule = f"mwaa-status-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps(
        {"source": ["aws.airflow"], "detail-type": ["MWAA Environment Status Change"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    # The rich shape (the sparse default is test_mwaa_conformance's).
    admin(plane.url, "config", {"rich_events": True})
    try:
        mwaa.create_environment(**env_input("evented"))
        wait_status(mwaa, "evented", "AVAILABLE")
        mwaa.delete_environment(Name="evented")
        assert mwaa.get_environment(Name="evented")["Environment"]["Status"] == "DELETING"
        wait_gone(mwaa, "evented")
        assert "evented" not in mwaa.list_environments()["Environments"]
        got, deadline = [], time.time() + 15
        while len(got) < 4 and time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"]))
        mine = [e for e in got if e["detail"]["name"] == "evented"]
        assert [e["detail"]["status"] for e in mine] == \
            ["CREATING", "AVAILABLE", "DELETING", "DELETED"]
        first, last = mine[0], mine[-1]
        assert first["source"] == "aws.airflow"
        assert first["detail-type"] == "MWAA Environment Status Change"
        assert first["resources"] == [f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/evented"]
        assert "previousStatus" not in first["detail"]
        assert last["detail"]["previousStatus"] == "DELETING"
        assert set(last["detail"]) >= {
            "name", "status", "celeryExecutorQueue", "databaseVpcEndpointService",
            "webserverVpcEndpointService", "webserverAccessMode", "endpointManagement",
            "networkConfiguration"}
        assert last["detail"]["networkConfiguration"] == {
            "subnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"],
            "securityGroupIds": ["sg-0123456789"]}
        # the DELETED record is kept for the bed; the name can be used again
        assert [e["Name"] for e in admin(plane.url, "environments")["deleted"]] == ["evented"]
        mwaa.create_environment(**env_input("evented"))
    finally:
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)


def test_injected_create_failed(plane, mwaa):
    admin(plane.url, "config", {"rich_events": True})  # to read the statuses off the events
    admin(plane.url, "fail", {"name": "doomed", "status": "CREATE_FAILED"})
    mwaa.create_environment(**env_input("doomed"))
    assert wait_status(mwaa, "doomed", "CREATE_FAILED") == ["CREATING", "CREATE_FAILED"]
    env = mwaa.get_environment(Name="doomed")["Environment"]
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert env["LastUpdate"]["Error"]["ErrorCode"] == "INCORRECT_CONFIGURATION"
    code, status, r = error_of(mwaa.update_environment, Name="doomed", MaxWorkers=2)
    assert (code, status) == ("ValidationException", 400) and "CREATE_FAILED" in \
        r["Error"]["Message"]
    mwaa.delete_environment(Name="doomed")
    wait_gone(mwaa, "doomed")
    events = admin(plane.url, "events")
    assert [e["detail"]["status"] for e in events] == \
        ["CREATING", "CREATE_FAILED", "DELETING", "DELETED"]


def test_update_lifecycle_and_injected_update_failed(plane, mwaa):
    mwaa.create_environment(**env_input("upd", MaxWorkers=5))
    wait_status(mwaa, "upd", "AVAILABLE")
    mwaa.update_environment(Name="upd", MaxWorkers=7)
    assert mwaa.get_environment(Name="upd")["Environment"]["Status"] == "UPDATING"
    assert error_of(mwaa.update_environment, Name="upd", MaxWorkers=8)[:2] == \
        ("ValidationException", 400)
    assert wait_status(mwaa, "upd", "AVAILABLE") == \
        ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "AVAILABLE"]
    assert mwaa.get_environment(Name="upd")["Environment"]["MaxWorkers"] == 7
    admin(plane.url, "fail", {"name": "upd", "status": "UPDATE_FAILED"})
    mwaa.update_environment(Name="upd", MaxWorkers=9)
    # A failed update rolls back from the snapshot, then stays UPDATE_FAILED (mwaa_local_env).
    assert wait_status(mwaa, "upd", "UPDATE_FAILED") == \
        ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "ROLLING_BACK", "UPDATE_FAILED"]
    env = mwaa.get_environment(Name="upd")["Environment"]
    assert env["MaxWorkers"] == 7  # restored, as MWAA documents for UPDATE_FAILED
    assert env["LastUpdate"]["Status"] == "FAILED"
    admin(plane.url, "status", {"name": "upd", "status": "UNAVAILABLE"})
    assert mwaa.get_environment(Name="upd")["Environment"]["Status"] == "UNAVAILABLE"


def test_throttle_and_server_error_faults(plane, mwaa):
    mwaa.create_environment(**env_input("faulty"))
    admin(plane.url, "faults", [{"operation": "GetEnvironment", "kind": "throttle", "count": 1},
                                {"operation": "*", "kind": "server_error", "count": 1},
                                {"operation": "GetEnvironment", "kind": "server_error",
                                 "status": 503, "count": 1}])
    assert error_of(mwaa.get_environment, Name="faulty")[:2] == ("ThrottlingException", 429)
    assert error_of(mwaa.list_environments)[:2] == ("InternalServerException", 500)
    assert error_of(mwaa.get_environment, Name="faulty")[:2] == \
        ("ServiceUnavailableException", 503)
    assert mwaa.get_environment(Name="faulty")["Environment"]["Name"] == "faulty"
    # the SDK retries throttling: 2 throttles, then success on the 3rd attempt
    admin(plane.url, "calls", method="DELETE")
    admin(plane.url, "faults", {"operation": "GetEnvironment", "kind": "throttle", "count": 2})
    retrying = mwaa_client(plane, retries={"total_max_attempts": 3, "mode": "standard"})
    out = retrying.get_environment(Name="faulty")
    assert out["ResponseMetadata"]["RetryAttempts"] == 2
    calls = admin(plane.url, "calls?operation=GetEnvironment")
    assert [c["status"] for c in calls] == [429, 429, 200]
    admin(plane.url, "faults", {"operation": "GetEnvironment", "kind": "latency",
                                "latency_ms": 300})
    started = time.time()
    mwaa.get_environment(Name="faulty")
    assert time.time() - started >= 0.3
    assert admin(plane.url, "faults") == []


def test_faults_after_the_work_and_by_rest_method_and_path(plane, mwaa, airflow):
    admin(plane.url, "faults", [{"operation": "CreateEnvironment", "kind": "server_error",
                                 "after": True},
                                {"operation": "InvokeRestApi", "kind": "rest_api_server_error",
                                 "method": "POST", "path": "/dags/ok/dagRuns", "after": True,
                                 "status": 504}])
    with pytest.raises(Exception):
        admin(plane.url, "faults", {"kind": "latency", "after": True})
    # The answer is an error, but the environment was created.
    assert error_of(mwaa.create_environment, **env_input("late"))[:2] == \
        ("InternalServerException", 500)
    assert mwaa.get_environment(Name="late")["Environment"]["Status"] == "CREATING"
    assert error_of(mwaa.create_environment, **env_input("late"))[0] == "ValidationException"
    wait_status(mwaa, "late", "AVAILABLE")
    # A GET and a POST elsewhere pass; the POST to the path is forwarded, then answered 504.
    assert mwaa.invoke_rest_api(Name="late", Path="/dags/ok/dagRuns", Method="GET")
    assert mwaa.invoke_rest_api(Name="late", Path="/dags/other/dagRuns", Method="POST", Body={})
    code, _, r = error_of(mwaa.invoke_rest_api, Name="late", Path="/dags/ok/dagRuns",
                          Method="POST", Body={"dag_run_id": "r1"})
    assert (code, r["RestApiStatusCode"]) == ("RestApiServerException", 504)
    method, path = [(q["method"], q["path"]) for q in airflow.requests][-1]
    # /api/v1 or /api/v2, after the environment's Airflow version.
    assert (method, path.split("/", 3)[-1]) == ("POST", "dags/ok/dagRuns"), "Airflow got the run"
    assert admin(plane.url, "faults") == []
    calls = admin(plane.url, "calls")
    served = [(c["operation"], c["fault"], c.get("after")) for c in calls if "fault" in c]
    assert served == [("CreateEnvironment", "server_error", True),
                      ("InvokeRestApi", "rest_api_server_error", True)]
    assert [c["forwarded"] for c in calls if c["operation"] == "InvokeRestApi"] == [True] * 3


def test_invoke_rest_api_forwards_to_airflow_2_with_basic_auth(plane, mwaa, airflow):
    mwaa.create_environment(**env_input("rest2", AirflowVersion="2.10.1"))  # -> 2.10.3
    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2", Path="/dags", Method="GET")
    assert (code, status) == ("ValidationException", 400) and "CREATING" in r["Error"]["Message"]
    wait_status(mwaa, "rest2", "AVAILABLE")
    out = mwaa.invoke_rest_api(Name="rest2", Path="/dags/ok/dagRuns", Method="POST",
                               QueryParameters={"dry": True, "tags": ["a", "b"]},
                               Body={"dag_run_id": "r1", "conf": {"key": "k/ü"}})
    assert out["RestApiStatusCode"] == 200
    assert out["RestApiResponse"] == {"dag_run_id": "r1", "state": "queued",
                                      "conf": {"key": "k/ü"}, "note": None}
    req = airflow.requests[-1]
    assert req["method"] == "POST" and req["path"] == "/api/v1/dags/ok/dagRuns"
    assert req["query"] == {"dry": ["true"], "tags": ["a", "b"]}
    assert req["body"] == {"dag_run_id": "r1", "conf": {"key": "k/ü"}}
    assert req["auth"] == "Basic " + base64.b64encode(b"admin:pw2").decode()

    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2",
                               Path="/dags/missing/dagRuns", Method="POST", Body={})
    assert (code, status) == ("RestApiClientException", 400)
    assert r["RestApiStatusCode"] == 404 and r["RestApiResponse"]["title"] == "DAG not found"
    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2", Path="/boom", Method="GET")
    assert (code, status, r["RestApiStatusCode"]) == ("RestApiServerException", 400, 500)
    out = mwaa.invoke_rest_api(Name="rest2", Path="/empty", Method="DELETE")
    assert (out["RestApiStatusCode"], out["RestApiResponse"]) == (204, {})
    assert airflow.requests[-1]["method"] == "DELETE"

    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2", Path="/" + "d" * 64,
                               Method="GET")
    assert (code, status) == ("ValidationException", 400)
    assert error_of(mwaa.invoke_rest_api, Name="rest2", Path="/dags", Method="HEAD")[:2] == \
        ("ValidationException", 400)
    admin(plane.url, "faults", {"operation": "InvokeRestApi", "kind": "rest_api_server_error",
                                "status": 503})
    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2", Path="/dags", Method="GET")
    assert (code, r["RestApiStatusCode"]) == ("RestApiServerException", 503)

    calls = admin(plane.url, "calls?operation=InvokeRestApi")
    assert [c.get("forwarded", False) for c in calls] == \
        [False, True, True, True, True, False, False, False]
    assert calls[1]["path"] == "/dags/ok/dagRuns" and calls[1]["rest_api_status"] == 200

    # Airflow down: RestApiServerException carrying 502
    admin(plane.url, "airflows", [dict(a, base_url=f"http://127.0.0.1:{free_port()}")
                                  for a in airflow.airflows()])
    code, status, r = error_of(mwaa.invoke_rest_api, Name="rest2", Path="/dags", Method="GET")
    assert (code, r["RestApiStatusCode"]) == ("RestApiServerException", 502)


def test_invoke_rest_api_airflow_3_uses_jwt_and_refreshes_it(mwaa, airflow):
    mwaa.create_environment(**env_input("rest3", AirflowVersion="3.0.6"))
    wait_status(mwaa, "rest3", "AVAILABLE")
    out = mwaa.invoke_rest_api(Name="rest3", Path="/dags/ok/dagRuns", Method="POST",
                               Body={"dag_run_id": "r1", "logical_date": None, "conf": {}})
    assert out["RestApiStatusCode"] == 200
    first = airflow.requests[-1]
    assert first["path"] == "/api/v2/dags/ok/dagRuns" and first["auth"].startswith("Bearer ")
    assert first["body"] == {"dag_run_id": "r1", "logical_date": None, "conf": {}}
    issued = airflow.issued
    airflow.valid_token = "expired"  # the cached token no longer works: refresh once
    out = mwaa.invoke_rest_api(Name="rest3", Path="/dags", Method="GET")
    assert out["RestApiStatusCode"] == 200 and airflow.issued == issued + 1
    assert airflow.requests[-1]["auth"] == f"Bearer jwt-{airflow.issued}"


def test_cli_entry_point(moto_url, airflow, tmp_path):
    spec = tmp_path / "airflows.json"
    spec.write_text(json.dumps(airflow.airflows()))
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "mwaa_local.py"), "--port",
                             str(port), "--moto-url", moto_url, "--airflows-json", str(spec),
                             "--create-delay", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == f"READY http://127.0.0.1:{port}"
        client = boto3.client("mwaa", endpoint_url=f"http://127.0.0.1:{port}",
                              config=Config(inject_host_prefix=False), **CREDS)
        assert client.list_environments()["Environments"] == []
        assert admin(f"http://127.0.0.1:{port}", "config")["create_delay"] == 0.1
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
