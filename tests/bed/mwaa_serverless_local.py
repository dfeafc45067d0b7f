"""A local Amazon MWAA Serverless control plane speaking its JSON 1.0 protocol.

No emulator implements MWAA Serverless (launched 2025-11), so this stands in for the
operations the suite uses, following botocore's mwaa-serverless/2024-07-26 model: every
request is ``POST /`` with ``X-Amz-Target: AmazonMWAAServerless.<Operation>`` and a JSON body,
checked against the model's input shape (required members, lengths, patterns, enums:
``mwaa_local_env.shape_errors``; a null map value, OverrideParameters' included, is
refused as AWS's framework refuses it in a map that is not sparse) and refused with ValidationException as AWS's framework
words it.  Errors carry ``x-amzn-errortype`` and ``{"__type", "Message", ...}`` with the
members the model requires.  Timestamps are ISO 8601 (the model's ``timestampFormat``).

    CreateWorkflow    {Name, DefinitionS3Location, RoleArn, ...} -> {WorkflowArn, ...}
                      a taken name -> ConflictException (the definition is not read)
    StartWorkflowRun  {WorkflowArn, ClientToken?, OverrideParameters?, WorkflowVersion?}
                      -> {RunId, Status: STARTING, StartedAt}; unknown workflow ->
                      ResourceNotFoundException; the same ClientToken with the same input ->
                      the same RunId (no second run); with another input -> ConflictException
    GetWorkflowRun    {WorkflowArn, RunId} -> {..., OverrideParameters, RunDetail}
    ListWorkflowRuns  {WorkflowArn, MaxResults?, NextToken?} -> {WorkflowRuns, NextToken?}
                      (the model lists no ResourceNotFoundException here: an unknown
                      workflow has no runs)

HTTP statuses (the model gives none): ValidationException 400, AccessDeniedException 403,
ResourceNotFoundException 404, ConflictException 409, ThrottlingException 429,
InternalServerException 500, OperationTimeoutException 504.

Test-bed admin API (not AWS) under ``/_bed/``:

    POST /_bed/reset                  forget workflows, runs, faults, calls
    GET|POST|DELETE /_bed/faults      rules, consumed in order:
        {"operation": "StartWorkflowRun" | "*", "kind": "throttle" | "server_error" |
         "timeout" | "access_denied", "count": 1, "after": false}
        "after": true starts the run first and then answers the fault: the answer lost on
        the way back, what client tokens are for.
    POST /_bed/run-status             {"RunId", "Status"}: move a run (model's enum)
    GET|DELETE /_bed/calls            [{operation, workflow_arn, client_token, status,
                                        error?, fault?, run_id?}]
    GET /_bed/runs                    every run with its client token and parameters

Run: ``python mwaa_serverless_local.py --port P`` or ``serve(...)`` from Python.
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import iam_mwaa
import mwaa_local_env
from mwaa_local_env import send_json, shape_errors

TARGET_PREFIX = "AmazonMWAAServerless."
OPERATIONS = ("CreateWorkflow", "StartWorkflowRun", "GetWorkflowRun", "ListWorkflowRuns")
STATUS = {"ValidationException": 400, "AccessDeniedException": 403,
          "ResourceNotFoundException": 404, "ConflictException": 409,
          "ThrottlingException": 429, "InternalServerException": 500,
          "OperationTimeoutException": 504, "UnknownOperationException": 400,
          "SerializationException": 400}
FAULTS = {"throttle": "ThrottlingException", "server_error": "InternalServerException",
          "timeout": "OperationTimeoutException", "access_denied": "AccessDeniedException"}
def service_model():
    """botocore's MWAA Serverless model (the bed's botocore)."""
    return mwaa_local_env.service_model("mwaa-serverless")


class ApiError(Exception):
    def __init__(self, code: str, message: str, **members):
        super().__init__(message)
        self.code, self.members = code, {"Message": message, **members}


def validation(message: str, reason: str = "fieldValidationFailed") -> ApiError:
    return ApiError("ValidationException", message, Reason=reason)


def validate(operation: str, body: dict) -> None:
    shape = service_model().operation_model(operation).input_shape
    errors: list[str] = []
    shape_errors(shape, body, "", errors)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise validation(count + "; ".join(errors))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ControlPlane:
    def __init__(self, region: str, account: str):
        self.region, self.account = region, account
        self.moto_url = None  # set by serve(): where callers' roles are registered
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.workflows: dict[str, dict] = {}   # ARN -> workflow
            self.runs: list[dict] = []             # in start order
            self.tokens: dict[str, dict] = {}      # client token -> run
            self.faults: list[dict] = []
            self.calls: list[dict] = []

    def add_faults(self, rules):
        rules = rules if isinstance(rules, list) else rules.get("rules", [rules])
        for rule in rules:
            if rule.get("kind") not in FAULTS:
                raise validation(f"fault kind must be one of {sorted(FAULTS)}")
            if rule.get("after") and rule["kind"] == "access_denied":
                raise validation("an access_denied fault cannot come after the work")
        with self.lock:
            self.faults += [{"operation": "*", "count": 1, **rule} for rule in rules]
            return list(self.faults)

    def take_fault(self, operation: str) -> dict | None:
        with self.lock:
            for rule in self.faults:
                if rule["operation"] in ("*", operation):
                    rule["count"] -= 1
                    if rule["count"] <= 0:
                        self.faults.remove(rule)
                    return dict(rule)
        return None

    # -- operations ----------------------------------------------------------------
    def create_workflow(self, body: dict) -> dict:
        with self.lock:
            if any(w["Name"] == body["Name"] for w in self.workflows.values()):
                raise ApiError("ConflictException", f"Workflow {body['Name']} already exists",
                               ResourceId=body["Name"], ResourceType="Workflow")
            suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))
            arn = (f"arn:aws:airflow-serverless:{self.region}:{self.account}:workflow/"
                   f"{body['Name']}-{suffix}")
            workflow = {"WorkflowArn": arn, "Name": body["Name"], "CreatedAt": now(),
                        "WorkflowVersion": uuid.uuid4().hex, "WorkflowStatus": "READY"}
            self.workflows[arn] = workflow
        return {**workflow, "IsLatestVersion": True}

    def workflow(self, arn: str) -> dict:
        workflow = self.workflows.get(arn)
        if workflow is None:
            raise ApiError("ResourceNotFoundException", f"Workflow {arn} not found",
                           ResourceId=arn, ResourceType="Workflow")
        return workflow

    def start_run(self, body: dict) -> dict:
        with self.lock:
            workflow = self.workflow(body["WorkflowArn"])
            version = body.get("WorkflowVersion", workflow["WorkflowVersion"])
            if version != workflow["WorkflowVersion"]:
                raise ApiError("ResourceNotFoundException", f"Workflow version {version} not found",
                               ResourceId=version, ResourceType="WorkflowVersion")
            request = {"WorkflowArn": workflow["WorkflowArn"], "WorkflowVersion": version,
                       "OverrideParameters": body.get("OverrideParameters") or {}}
            token = body.get("ClientToken")
            known = self.tokens.get(token) if token else None
            if known is not None:
                if known["request"] != request:
                    raise ApiError("ConflictException",
                                   f"Client token {token} was used with another request",
                                   ResourceId=token, ResourceType="WorkflowRun")
                return known
            run = {"RunId": uuid.uuid4().hex, "ClientToken": token, "request": request,
                   "Status": "STARTING", "StartedAt": now(), "CreatedAt": now()}
            self.runs.append(run)
            if token:
                self.tokens[token] = run
            return run

    def find_run(self, arn: str, run_id: str) -> dict:
        for run in self.runs:
            if run["RunId"] == run_id and run["request"]["WorkflowArn"] == arn:
                return run
        raise ApiError("ResourceNotFoundException", f"Workflow run {run_id} not found",
                       ResourceId=run_id, ResourceType="WorkflowRun")

    def answer(self, operation: str, body: dict) -> dict:
        if operation == "CreateWorkflow":
            return self.create_workflow(body)
        if operation == "StartWorkflowRun":
            run = self.start_run(body)
            return {"RunId": run["RunId"], "Status": run["Status"], "StartedAt": run["StartedAt"]}
        if operation == "GetWorkflowRun":
            with self.lock:
                self.workflow(body["WorkflowArn"])
                run = self.find_run(body["WorkflowArn"], body["RunId"])
                req = run["request"]
                return {"WorkflowArn": req["WorkflowArn"], "WorkflowVersion": req["WorkflowVersion"],
                        "RunId": run["RunId"], "RunType": "ON_DEMAND",
                        "OverrideParameters": req["OverrideParameters"],
                        "RunDetail": {"WorkflowArn": req["WorkflowArn"], "RunId": run["RunId"],
                                      "WorkflowVersion": req["WorkflowVersion"],
                                      "RunType": "ON_DEMAND", "CreatedAt": run["CreatedAt"],
                                      "StartedOn": run["StartedAt"], "RunState": run["Status"]}}
        # ListWorkflowRuns
        with self.lock:
            runs = [r for r in self.runs if r["request"]["WorkflowArn"] == body["WorkflowArn"]]
        start = int(body.get("NextToken") or 0) if str(body.get("NextToken") or "0").isdigit() else None
        if start is None:
            raise validation("Invalid NextToken", "cannotParse")
        size = body.get("MaxResults") or 100
        page = runs[start:start + size]
        out = {"WorkflowRuns": [{"RunId": r["RunId"], "WorkflowArn": r["request"]["WorkflowArn"],
                                 "WorkflowVersion": r["request"]["WorkflowVersion"],
                                 "RunType": "ON_DEMAND",
                                 "RunDetailSummary": {"Status": r["Status"],
                                                      "CreatedOn": r["CreatedAt"],
                                                      "StartedAt": r["StartedAt"]}}
                                for r in page]}
        if start + size < len(runs):
            out["NextToken"] = str(start + size)
        return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mwaa-serverless-local"
    plane: ControlPlane

    def log_message(self, fmt, *args):
        pass

    def _send(self, status: int, body, error_type: str | None = None):
        send_json(self, status, body, error_type, "application/x-amz-json-1.0")

    def _error(self, err: ApiError):
        self._send(STATUS[err.code], {"__type": err.code, **err.members}, err.code)

    def _body(self, any_json: bool = False):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError("SerializationException", "Request body is not valid JSON")
        if not any_json and not isinstance(body, dict):
            raise ApiError("SerializationException", "Request body must be a JSON object")
        return body

    def do_POST(self):
        try:
            body = self._body(any_json=self.path.startswith("/_bed/"))
            if self.path.startswith("/_bed/"):
                return self._admin("POST", self.path[len("/_bed/"):], body)
            target = self.headers.get("X-Amz-Target") or ""
            operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
            if self.path != "/" or operation not in OPERATIONS:
                raise ApiError("UnknownOperationException", f"No operation for {target!r}")
            self._operation(operation, body)
        except ApiError as err:
            self._error(err)

    def _operation(self, operation: str, body: dict):
        plane = self.plane
        call = {"operation": operation, "workflow_arn": body.get("WorkflowArn"),
                "client_token": body.get("ClientToken"), "at": time.time()}
        try:
            denied = iam_mwaa.refusal(plane.moto_url, self.headers.get("Authorization"),
                                      plane.region, plane.account, operation, None, body,
                                      serverless=True)
            if denied:  # IAM decides before anything else does
                raise ApiError("AccessDeniedException", denied)
            fault = plane.take_fault(operation)
            if fault and fault["kind"] == "access_denied":
                raise ApiError("AccessDeniedException",
                               f"User: arn:aws:sts::{plane.account}:assumed-role/trigger-dag is not "
                               f"authorized to perform: airflow-serverless:{operation} on resource: "
                               f"{body.get('WorkflowArn', '*')}")
            if fault and not fault.get("after"):
                raise self._fault(fault, call)
            validate(operation, body)
            answer = plane.answer(operation, body)
            call["run_id"] = answer.get("RunId")
            if fault:  # the work is done, the answer is lost on the way back
                call["after"] = True
                raise self._fault(fault, call)
            call["status"] = 200
            self._record(call)
            self._send(200, answer)
        except ApiError as err:
            call.update(status=STATUS[err.code], error=err.code)
            # Recorded before the answer leaves: a client that reads the calls right after
            # (or a reset by the next test) must see this one, never a late append.
            self._record(call)
            self._error(err)

    def _record(self, call: dict):
        with self.plane.lock:
            self.plane.calls.append(call)

    @staticmethod
    def _fault(fault: dict, call: dict) -> ApiError:
        call["fault"] = fault["kind"]
        code = FAULTS[fault["kind"]]
        extra = {"ServiceCode": "airflow-serverless", "QuotaCode": "L-BED00001"} \
            if code == "ThrottlingException" else {}
        return ApiError(code, f"{code} injected by the bed", **extra)

    def _admin(self, method: str, path: str, body):
        plane = self.plane
        if method == "POST" and path == "reset":
            plane.reset()
            return self._send(200, {})
        if path == "faults":
            if method == "POST":
                return self._send(200, plane.add_faults(body))
            if method == "DELETE":
                with plane.lock:
                    plane.faults.clear()
            with plane.lock:
                return self._send(200, list(plane.faults))
        if path == "calls":
            with plane.lock:
                calls = list(plane.calls)
                if method == "DELETE":
                    plane.calls.clear()
            return self._send(200, calls)
        if path == "runs" and method == "GET":
            with plane.lock:
                return self._send(200, [{k: v for k, v in r.items()} for r in plane.runs])
        if method == "POST" and path == "run-status":
            status = service_model().shape_for("WorkflowRunStatus").enum
            if body.get("Status") not in status:
                raise validation(f"Status must be one of {status}")
            with plane.lock:
                for run in plane.runs:
                    if run["RunId"] == body.get("RunId"):
                        run["Status"] = body["Status"]
                        return self._send(200, {})
            raise ApiError("ResourceNotFoundException", f"run {body.get('RunId')} not found",
                           ResourceId=str(body.get("RunId")), ResourceType="WorkflowRun")
        self._send(404, {"message": f"no admin route {method} /_bed/{path}"})

    def do_GET(self):
        try:
            self._admin("GET", self.path[len("/_bed/"):], None) if self.path.startswith("/_bed/") \
                else self._send(404, {"message": "GET is not part of the protocol"})
        except ApiError as err:
            self._error(err)

    def do_DELETE(self):
        self._admin("DELETE", self.path[len("/_bed/"):], None)


class Handle:
    """A running control plane: ``url``, ``plane``, ``shutdown()``."""

    def __init__(self, server: ThreadingHTTPServer, plane: ControlPlane):
        self.server, self.plane = server, plane
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, name="mwaa-serverless-http",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def serve(host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1",
          account: str = "123456789012", moto_url: str | None = None) -> Handle:
    """``moto_url``: where callers' roles are registered (IAM enforced, iam_mwaa.py)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the local MWAA Serverless binds to the loopback interface only")
    plane = ControlPlane(region, account)
    plane.moto_url = moto_url
    server = ThreadingHTTPServer((host, port), type("BoundHandler", (Handler,), {"plane": plane}))
    server.daemon_threads = True
    return Handle(server, plane)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="123456789012")
    args = ap.parse_args(argv)
    handle = serve("127.0.0.1", args.port, args.region, args.account)
    mwaa_local_env.serve_until_signalled(handle)


if __name__ == "__main__":
    main()
