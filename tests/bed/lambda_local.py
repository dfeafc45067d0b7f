"""The bed's Lambda service: each function of the template runs as its built binary behind
the Lambda Runtime API, as Lambda runs it.

    lambda_local.py < CONFIG_JSON    serves the Invoke API; prints {"address"} once ready and
                                     stops (its function processes with it) when stdin closes

CONFIG: {"binaries": folder of the built binaries, "listen": "127.0.0.1:PORT" (optional),
"parameters": {template parameter: value}, "resources": {logical id: name or ARN} (as for
IAM, tests/bed/iam_roles.py), "variables": {function: {NAME: value}} (the bed's own settings,
e.g. a shorter cache), "timeouts": {function: seconds} (a Timeout scaled for a test),
"role_keys": {function: access key} (the key naming its role: the bed holds its calls to that
role's IAM statements; "testing" otherwise), "endpoints": {AWS_ENDPOINT_URL...: url},
"account" (the functions' ARNs), "async_scale" (Lambda's async retry waits and event age
scaled: 0.01 makes 1 minute 0.6 s; lambda_async.py), "event_source_mappings": true (poll the
template's SQS event sources the resources name; lambda_sqs.py), "rules": [rule logical id]
(the template's EventBridge rules delivering to their functions; lambda_rules.py),
"rules_without_permission": [rule logical id] (as if the template lacked the rule's
AWS::Lambda::Permission)}.

`X-Amz-Invocation-Type: Event` is answered 202 (its `x-amzn-RequestId` the invocation's) and
run as Lambda's asynchronous invocation (retries, on-failure destination: lambda_async.py);
`DryRun` is answered 204. An Invoke a rule makes (`X-Bed-Source-Arn` with the service's
secret: only the rules' bridge has it, lambda_rules.py) is refused with 403
AccessDeniedException unless the function's resource-based policy lets that rule invoke it;
without the secret the header is ignored. `POST /_bed/fire/RULE` fires a scheduled rule
(lambda_rules.py). When a template's SQS event source mapping fails the checks AWS makes on
creating it (lambda_sqs.py), the service prints {"error": "InvalidParameterValueException:
..."} instead of its address and exits.

A function is named by its binary (`BuildProperties.Binary`) or its `FunctionName`, bare or
as an ARN. Each invocation goes to an idle instance of the function, or to a new one: one
invocation at a time per instance. The instance gets the template's `Timeout` as its
deadline (`Lambda-Runtime-Deadline-Ms`), `MemorySize` as AWS_LAMBDA_FUNCTION_MEMORY_SIZE (not
enforced) and `Environment.Variables` with parameters and resources resolved. Answers are
Lambda's: 200 and the response; 200 with `X-Amz-Function-Error: Unhandled` and the error the
binary posted (`{errorType, errorMessage}`); past the Timeout the instance is killed (the next
invocation starts a new one) and the error is `Sandbox.Timedout`, "Task timed out after N.00
seconds"; a process that exits mid-invocation is `Runtime.ExitError`. An Invoke signed
with the key of a role the bed's IAM holds (a state machine's: step-worker signs with it) is
refused with Lambda's 403 AccessDeniedException unless the role may `lambda:InvokeFunction`
the function (tests/bed/iam_lambda.py).

`RuntimeApi` and `Function` are also what the benchmarks (tests/bench/harness.py) run the
binaries under.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lambda_async
import lambda_rules
import lambda_sqs

REGION, ACCOUNT = "us-east-1", "123456789012"


class QuietServer(ThreadingHTTPServer):
    """127.0.0.1 server: no Nagle (no 40 ms delayed-ACK stalls), no tracebacks for clients
    that went away (a killed function process)."""
    daemon_threads = True

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request, client_address):
        pass


# ---------------------------------------------------------------------------------------------
class RuntimeApi:
    """The Runtime API one instance (or, for the benchmarks, several) polls: queued events
    handed out in order, with Lambda-async-like retries of failed ones (`retries`), each record
    completed by its response or error (`rec["done"]` is set)."""

    def __init__(self, retries=2, timeout_s=60, function="bench"):
        self.retries, self.timeout_s = retries, timeout_s
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        self.pending = queue.Queue()
        self.lock = threading.Lock()
        self.inflight = {}   # request id -> record
        self.done = []       # records with outcome
        self.first_next = {}  # pid-less: time of first /next per connection client port
        self.next_times = []
        self.finished = threading.Condition(self.lock)
        self.stopping = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404, b'{"message":"not found"}')
                now = time.perf_counter()
                with api.lock:
                    api.next_times.append(now)
                while True:
                    if api.stopping:
                        return self._reply(500, b'{"message":"stopping"}')
                    try:
                        rec = api.pending.get(timeout=0.5)
                        break
                    except queue.Empty:
                        continue
                rid = rec.get("request_id") or str(uuid.uuid4())
                rec["request_id"] = rid
                rec["handed_out"] = time.perf_counter()
                with api.lock:
                    api.inflight[rid] = rec
                deadline_ms = int((time.time() + api.timeout_s) * 1000)
                rec["deadline"] = time.monotonic() + api.timeout_s
                self._reply(200, json.dumps(rec["event"]).encode(), {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                parts = self.path.rstrip("/").split("/")
                now = time.perf_counter()
                if len(parts) >= 2 and parts[-1] in ("response", "error"):
                    with api.lock:
                        rec = api.inflight.pop(parts[-2], None)
                    if rec is None:
                        return self._reply(400, b'{"message":"unknown request id"}')
                    rec["answered"] = now
                    rec["ok"] = parts[-1] == "response"
                    rec["body"] = body[:2000].decode(errors="replace")
                    rec["attempt"] = rec.get("attempt", 0)
                    rec["answer"] = body
                    rec["done"].set()
                    if not rec["ok"] and rec["attempt"] < api.retries:
                        api.pending.put({"event": rec["event"], "key": rec["key"],
                                         "attempt": rec["attempt"] + 1, "queued": now,
                                         "done": threading.Event()})
                    with api.lock:
                        api.done.append(rec)
                        api.finished.notify_all()
                    return self._reply(202, b'{"status":"OK"}')
                if parts[-1] == "error":  # init error
                    sys.stderr.write(f"init error: {body[:500]!r}\n")
                    return self._reply(202, b'{"status":"OK"}')
                return self._reply(404, b'{"message":"not found"}')

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def submit(self, event, key, request_id=None):
        rec = {"event": event, "key": key, "attempt": 0, "queued": time.perf_counter(),
               "done": threading.Event(), "request_id": request_id}
        self.pending.put(rec)
        return rec

    def wait_done(self, count, timeout):
        """Waits until `count` final outcomes (success, or error after the last retry)."""
        end = time.time() + timeout
        with self.lock:
            while self._finals() < count and time.time() < end:
                self.finished.wait(0.5)
            return self._finals()

    def _finals(self):
        return sum(1 for r in self.done if r["ok"] or r["attempt"] >= self.retries)

    def reset(self):
        with self.lock:
            self.done.clear()
            self.next_times.clear()

    def stop(self):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()



def vm_hwm_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Function:
    """How to start one implementation under a given runtime API."""

    def __init__(self, label, argv, env):
        self.label, self.argv, self.env = label, argv, env
        self.procs = []

    def spawn(self, runtime_address, log_path=None):
        """Starts one process; its output goes to `log_path`, or where this process's goes."""
        env = dict(self.env, AWS_LAMBDA_RUNTIME_API=runtime_address)
        out = open(log_path, "ab") if log_path else None
        p = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT if out else None, start_new_session=True)
        if out:
            out.close()
        self.procs.append(p)
        return p

    def kill(self, p):
        rss = vm_hwm_kb(p.pid)
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)
        return rss

    def kill_all(self):
        for p in list(self.procs):
            self.kill(p)


# ---------------------------------------------------------------------------------------------
# The Lambda service: the template's functions, their instances, the Invoke API.
# ---------------------------------------------------------------------------------------------
def functions_from_template(binaries: Path, parameters: dict, resources: dict,
                            variables: dict, timeouts: dict, role_keys: dict,
                            endpoints: dict) -> dict:
    """{name: Deployed} for every AWS::Lambda::Function of the translated template."""
    import iam_roles
    import template
    raw = template.load()["Resources"]
    out = {}
    for logical, props in iam_roles.functions(parameters, resources).items():
        binary = raw[logical]["Metadata"]["BuildProperties"]["Binary"]
        # What the bed did not name stays out, as a setting the function cannot read.
        env = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()
               if isinstance(v, (str, int, float))}
        env.update(variables.get(binary, {}))
        deployed = Deployed(binary, binaries / binary, float(timeouts.get(binary, props.get("Timeout", 3))),
                            int(props.get("MemorySize", 128)), env, role_keys.get(binary, "testing"),
                            endpoints)
        deployed.logical = logical
        out[binary] = deployed
        if isinstance(props.get("FunctionName"), str):
            out[props["FunctionName"]] = deployed
    return out


class Deployed:
    """One function: how its instances start, and its idle instances."""

    def __init__(self, name, binary, timeout_s, memory_mb, variables, access_key, endpoints):
        self.name, self.binary, self.timeout_s = name, binary, timeout_s
        # Lambda's environment: its own variables and the function's, nothing of the host's.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": ":UTC"}
        env.update(variables)
        env.update(endpoints)
        env.update(AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID=access_key,
                   AWS_SECRET_ACCESS_KEY="unchecked", AWS_LAMBDA_FUNCTION_NAME=name,
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                   AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb), AWS_LAMBDA_LOG_FORMAT="JSON",
                   AWS_EC2_METADATA_DISABLED="true")
        self.process = Function(name, [str(binary)], env)
        self.idle: list[tuple[RuntimeApi, subprocess.Popen]] = []
        self.lock = threading.Lock()

    def instance(self):
        with self.lock:
            while self.idle:
                api, proc = self.idle.pop()
                if proc.poll() is None:
                    return api, proc
                api.stop()
        api = RuntimeApi(retries=0, timeout_s=self.timeout_s, function=self.name)
        return api, self.process.spawn(api.address)

    def retire(self, api, proc):
        self.process.kill(proc)
        api.stop()

    def invoke(self, event, request_id=None) -> tuple[bool, bytes]:
        """(failed, answer) as Lambda's synchronous Invoke gives them."""
        api, proc = self.instance()
        rec = api.submit(event, "invoke", request_id)
        # The deadline starts when the instance takes the event (a cold start counts too in
        # Lambda, where init has its own 10 s: the bed gives init the same Timeout).
        limit = time.monotonic() + self.timeout_s
        while not rec["done"].wait(0.05):
            now = time.monotonic()
            if proc.poll() is not None:
                self.retire(api, proc)
                return True, json.dumps({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {rec.get('request_id', '')} Error: Runtime exited "
                                    f"with error: exit status {proc.returncode}"}).encode()
            if now > rec.get("deadline", limit):
                self.retire(api, proc)
                return True, json.dumps({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {rec.get('request_id', '')} Error: Task timed "
                                    f"out after {self.timeout_s:.2f} seconds"}).encode()
        with self.lock:
            self.idle.append((api, proc))
        return not rec["ok"], rec["answer"]

    def stop(self):
        with self.lock:
            for api, proc in self.idle:
                self.retire(api, proc)
            self.idle.clear()
        self.process.kill_all()


def function_name(path: str) -> str | None:
    """FunctionName of an Invoke path: a name or a (partial) ARN, with or without qualifier."""
    prefix, suffix = "/2015-03-31/functions/", "/invocations"
    path = path.split("?", 1)[0]
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    name = urllib.parse.unquote(path[len(prefix):-len(suffix)])
    return name.rsplit(":function:", 1)[-1].split(":", 1)[0]


def serve(functions: dict, listen: str = "127.0.0.1:0", moto_url: str | None = None,
          logs: dict | None = None, permissions=None, fire=None) -> QuietServer:
    """The Invoke API for `functions` on `listen`, in a thread. An Invoke signed with the key
    of a role registered in moto (`moto_url`) is held to that role (tests/bed/iam_lambda.py).
    `GET /_bed/NAME` lists `logs[NAME]` (the asynchronous invocations, the event source's
    batches). `permissions` (lambda_rules.Permissions) holds the Invokes rules make;
    `POST /_bed/fire/RULE` calls `fire[0](RULE)` (the rules' bridge, made once the address is
    known)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, status, body: bytes, headers=(), request_id=None):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            name = self.path.removeprefix("/_bed/")
            if logs is None or name not in logs:
                return self._reply(404, b'{"message": "not found"}')
            self._reply(200, json.dumps(list(logs[name])).encode())

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if self.path.startswith("/_bed/fire/") and fire:
                try:
                    delivery = fire[0](self.path.removeprefix("/_bed/fire/"))
                except (KeyError, IndexError) as e:
                    return self._reply(404, json.dumps({"message": str(e)}).encode())
                return self._reply(200, json.dumps(delivery).encode())
            name = function_name(self.path)
            # Only the bridge (it has the secret) invokes as a rule; anyone else as themselves.
            source = permissions.claimed_source(self.headers) if permissions else None
            denied = None
            if name and source:  # a rule: the resource policy
                denied = permissions.refusal(name, source)
            elif name:
                import iam_lambda
                denied = iam_lambda.refusal(
                    moto_url, self.headers.get("Authorization"),
                    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
            if denied:
                return self._reply(403, json.dumps({"Type": "User", "Message": denied}).encode(),
                                   [("x-amzn-ErrorType", "AccessDeniedException")])
            deployed = functions.get(name) if name else None
            if deployed is None:
                return self._reply(404, json.dumps({"Type": "User", "message":
                                   f"Function not found: {name or self.path}"}).encode(),
                                   [("x-amzn-ErrorType", "ResourceNotFoundException")])
            try:
                event = json.loads(raw or b"{}")
            except ValueError:
                return self._reply(400, json.dumps({"Type": "User", "message":
                                   "Could not parse request body into json"}).encode(),
                                   [("x-amzn-ErrorType", "InvalidRequestContentException")])
            kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
            if kind == "DryRun":
                return self._reply(204, b"")
            if kind == "Event":
                request_id = deployed.asynchronous.submit(event)
                return self._reply(202, b"", request_id=request_id)
            failed, answer = deployed.invoke(event)
            headers = [("X-Amz-Executed-Version", "$LATEST")]
            if failed:
                headers.append(("X-Amz-Function-Error", "Unhandled"))
            self._reply(200, answer, headers)

    host, port = listen.rsplit(":", 1)
    server = QuietServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    config = json.loads(sys.stdin.readline())
    functions = functions_from_template(
        Path(config["binaries"]), config.get("parameters", {}), config.get("resources", {}),
        config.get("variables", {}), config.get("timeouts", {}), config.get("role_keys", {}),
        config.get("endpoints", {}))
    by_logical = {d.logical: d for d in functions.values()}
    logs = {"async": [], "batches": [], "rules": []}
    lambda_async.configure(by_logical, config.get("parameters", {}), config.get("resources", {}),
                           config.get("account", ACCOUNT), float(config.get("async_scale", 1)),
                           logs["async"])
    moto_url = config.get("endpoints", {}).get("AWS_ENDPOINT_URL")
    try:
        pollers = lambda_sqs.start(by_logical, config.get("parameters", {}),
                                   config.get("resources", {}), logs["batches"], moto_url,
                                   config.get("account", ACCOUNT)) \
            if config.get("event_source_mappings") else []
    except lambda_sqs.MappingRefused as e:  # as CloudFormation would fail the stack
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(1)
    permissions = lambda_rules.Permissions(by_logical, config.get("account", ACCOUNT),
                                           config.get("rules_without_permission", []))
    fire = []
    server = serve(functions, config.get("listen") or "127.0.0.1:0", moto_url, logs,
                   permissions, fire)
    address = "%s:%d" % server.server_address[:2]
    bridge = lambda_rules.start(config, by_logical, f"http://{address}", logs["rules"],
                                permissions.secret)
    if bridge:
        fire.append(bridge.fire)
    print(json.dumps({"address": address}), flush=True)
    sys.stdin.read()  # until the parent closes it (or goes away)
    if bridge:
        bridge.stop()
    server.shutdown()
    for poller in pollers:
        poller.stop()
    for deployed in set(functions.values()):
        deployed.stop()


if __name__ == "__main__":
    main()
