"""A local Amazon MWAA control plane speaking MWAA's REST/JSON protocol.

No emulator implements MWAA, so this stands in for it: the unmodified AWS
SDKs (Rust ``aws-sdk-mwaa``, boto3) work against it with an endpoint URL
override (and the ``api.``/``env.`` host prefix disabled: boto3
``Config(inject_host_prefix=False)``; in Rust an interceptor that clears the
endpoint prefix).  Environments and their lifecycle live in
``mwaa_local_env.py``; InvokeRestApi is forwarded to real local Airflows.

Wire protocol (restJson1, from botocore's mwaa/2020-07-01 model):

    PUT    /environments/{Name}      CreateEnvironment    -> {"Arn"}
    GET    /environments/{Name}      GetEnvironment       -> {"Environment": {...}}
    PATCH  /environments/{Name}      UpdateEnvironment    -> {"Arn"}
    DELETE /environments/{Name}      DeleteEnvironment    -> {}
    GET    /environments             ListEnvironments     ?MaxResults=&NextToken=
    POST   /restapi/{Name}           InvokeRestApi        {Method, Path, QueryParameters?, Body?}
    POST   /clitoken/{Name}          CreateCliToken
    POST   /webtoken/{Name}          CreateWebLoginToken
    POST   /tags/{ResourceArn}       TagResource          {"Tags": {...}}
    DELETE /tags/{ResourceArn}       UntagResource        ?tagKeys=a&tagKeys=b
    GET    /tags/{ResourceArn}       ListTagsForResource  -> {"Tags": {...}}

All answers are 200 on success.  Every request is first checked against
botocore's MWAA model (``mwaa_local_env.validate_request``: required members,
enums, lengths, min/max, patterns) and refused with ValidationException as
AWS's framework words it; tests/bed/test_mwaa_conformance.py holds the
answers and refusals to the model.  Errors carry the header ``x-amzn-errortype``
and a JSON body: ``{"message": ...}`` for ValidationException (400),
ResourceNotFoundException (404), InternalServerException (500),
ServiceUnavailableException (503), ThrottlingException (429, not in MWAA's
model but retried by every SDK).  RestApiClientException and
RestApiServerException are both HTTP 400 in the model (only the error type
tells them apart) and carry ``{"RestApiStatusCode": n, "RestApiResponse":
<Airflow's JSON>}``.  AccessDeniedException (403, ``{"Message": ...}``: the
model's member is capitalised) only when a test injects it (fault kind
``access_denied``).  Timestamps are epoch seconds.

InvokeRestApi: Path of 1..64 characters (any characters: the model gives no
pattern; what is not allowed in a URL path, non-ASCII included, is
percent-encoded as UTF-8 before it goes to Airflow, existing %XX escapes kept,
``?`` and ``#`` encoded too: the query travels in QueryParameters) and Method in
GET/PUT/POST/PATCH/DELETE, else ValidationException; unknown environment ->
ResourceNotFoundException; environment not AVAILABLE (UPDATE_FAILED is
accepted: MWAA documents it as restored and ready to use) ->
ValidationException (a choice of this bed: AWS does not document the
answer).  The call goes to the Airflow whose version equals the environment's
AirflowVersion, else the newest one of the same major version, as
``Method {base_url}{api_prefix}{Path}`` with the query parameters, the JSON
body and the Airflow's auth (basic, or a cached JWT refreshed once on 401),
with MWAA's fixed 10 s timeout.  Airflow 2xx -> 200 {RestApiStatusCode,
RestApiResponse}; 4xx -> RestApiClientException; 5xx, timeout (504) or
unreachable (502) -> RestApiServerException.  An empty Airflow body is
answered as ``{}``; a body that is not JSON as a JSON string.

Test-bed admin API (not MWAA) under ``/_bed/``:

    POST /_bed/reset                  forget environments, faults, calls; restore the delays
                                      given at start (serve(config=...) / CLI flags)
    GET|POST /_bed/config             {"create_delay", "update_delay", "delete_delay", "pending_poll",
                                       "snapshot_delay", "rollback_delay", "pending_timeout"
                                       (seconds), "rich_events" (bool): see mwaa_local_env}
    GET|POST|DELETE /_bed/faults      rules, appended and consumed in order:
        {"operation": "InvokeRestApi" | "*", "kind": "throttle" | "server_error" |
         "rest_api_server_error" | "rest_api_client_error" | "latency" | "access_denied",
         "count": 1, "latency_ms": 0, "status": 500, "name": optional env name,
         "method": optional InvokeRestApi Method, "path": optional InvokeRestApi Path,
         "after": false}
        A rule applies to the first call that matches operation, name, method and path
        (the last two only for InvokeRestApi).  "after": true does the work first (the
        environment is created or deleted, the request reaches Airflow) and then answers
        with the fault instead of the result: the answer lost on the way back, the case
        that tells idempotent callers from the rest.  "access_denied" answers 403
        AccessDeniedException {"Message": "User: ... is not authorized to perform:
        airflow:OPERATION on resource: ARN ..."} (IAM's wording; "message" overrides it,
        "principal" names the caller); never "after".  A served fault is in /_bed/calls as
        "fault" (its kind), with "after": true when the work was done.
    POST /_bed/fail                   {"name", "status": "CREATE_FAILED" | "UPDATE_FAILED"}
    POST /_bed/status                 {"name", "status"}: set any status now (e.g. UNAVAILABLE)
    GET|DELETE /_bed/calls            [{operation, name, path?, method?, status, error?,
                                        rest_api_status?, forwarded?}]  (?operation= filter)
    GET /_bed/environments            live records and DELETED ones
    GET /_bed/events                  every status-change event of every account
                                      ({account, detail, resources, sent})

Accounts (``mwaa_local_accounts.py``): each request acts in its caller's account, with
that account's environments and events.  Admin calls about one environment take
``"account"`` in the body (or ``?account=``); ``/_bed/environments`` and ``/_bed/events``
list every account's.
    POST /_bed/airflows               replace the list of Airflows

Run: ``python mwaa_local.py --port P --moto-url URL --airflows-json FILE``
or ``serve(...)`` from Python.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Found beside this file: run as a script, Python puts its folder on sys.path; under pytest,
# tests/pytest.ini does; bed.py runs from this folder.
import iam_mwaa
import mwaa_local_env as model
from airflow_bed import LoginRefused, auth_headers
from mwaa_local_accounts import AccountStores

ApiError = model.ApiError
log = logging.getLogger("mwaa_local")
REST_API_TIMEOUT = 10.0
METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
INVOKABLE = ("AVAILABLE", "UPDATE_FAILED")


# ---------------------------------------------------------------------------
# Airflow forwarding
# ---------------------------------------------------------------------------
class AirflowAuth:
    """Authorization headers per Airflow (airflow_bed's login), a JWT cached until refused."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens: dict[str, dict] = {}

    def headers(self, info: dict, refresh: bool = False) -> dict:
        if info.get("auth") != "jwt":
            return auth_headers(info)
        key = f"{info['token_url']}|{info['username']}"
        with self.lock:
            headers = None if refresh else self.tokens.get(key)
        if headers is None:
            headers = auth_headers(info, timeout=REST_API_TIMEOUT)
            with self.lock:
                self.tokens[key] = headers
        return headers


def pick_airflow(airflows: list[dict], version: str) -> dict | None:
    """The Airflow of exactly ``version``, else the newest of the same major."""
    for info in airflows:
        if info.get("version") == version:
            return info
    major = int(version.split(".")[0])
    same = [a for a in airflows if int(a.get("major") or a["version"].split(".")[0]) == major]
    return max(same, key=lambda a: model._vkey(a["version"]), default=None)


def _query_string(params) -> str:
    if not params:
        return ""
    if not isinstance(params, dict):
        raise model.validation("QueryParameters must be a JSON object")
    pairs = []
    for key, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif v is None:
                v = ""
            elif isinstance(v, (dict, list)):
                v = json.dumps(v)
            pairs.append((key, str(v)))
    return "?" + urllib.parse.urlencode(pairs)


def _parse_body(raw: bytes):
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


# RFC 3986 pchar and "/": what may stand in a URL path as it is.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def encode_path(path: str) -> str:
    """Percent-encode a REST path for the URL as an HTTP client does for a path.

    Non-ASCII characters become their UTF-8 bytes (Airflow's server decodes them back into the
    DAG id), spaces and the other characters a path cannot hold are escaped, an existing %XX
    escape is kept (as ``requests.utils.requote_uri`` does), a stray % becomes %25, and ? and #
    are escaped: InvokeRestApi carries the query in QueryParameters, never in Path.
    """
    out, i = [], 0
    while i < len(path):
        if path[i] == "%" and _ESCAPE.match(path, i):
            out.append(path[i:i + 3])
            i += 3
            continue
        out.append(urllib.parse.quote(path[i], safe=_PATH_SAFE))
        i += 1
    return "".join(out)


def forward(auth: AirflowAuth, info: dict, method: str, path: str, query, body) -> tuple[int, object]:
    """Call Airflow's REST API; return (status, parsed body).  502/504 when unreachable."""
    url = (info["base_url"].rstrip("/") + info.get("api_prefix", "") + encode_path(path)
           + _query_string(query))
    data = json.dumps(body).encode() if body is not None else None
    for attempt in (0, 1):
        try:
            headers = {"Accept": "application/json", **auth.headers(info, refresh=attempt == 1)}
            if data is not None:
                headers["Content-Type"] = "application/json"
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            with urllib.request.urlopen(req, timeout=REST_API_TIMEOUT) as resp:
                return resp.status, _parse_body(resp.read())
        except urllib.error.HTTPError as e:
            status, payload = e.code, _parse_body(e.read())
            if status == 401 and info.get("auth") == "jwt" and attempt == 0:
                continue  # token expired: refresh once
            return status, payload
        except LoginRefused as e:  # the token endpoint's own answer, as Airflow gave it
            if e.status == 401 and attempt == 0:
                continue
            if e.status >= 400:
                return e.status, e.body
            return 502, {"title": "Bad Gateway", "status": 502,
                         "detail": f"Airflow handed out no token: {e.status} {e.body}"}
        except (socket.timeout, TimeoutError):
            return 504, {"title": "Gateway Timeout", "status": 504,
                         "detail": f"Airflow did not answer within {REST_API_TIMEOUT:g} s"}
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                return 504, {"title": "Gateway Timeout", "status": 504,
                             "detail": f"Airflow did not answer within {REST_API_TIMEOUT:g} s"}
            return 502, {"title": "Bad Gateway", "status": 502,
                         "detail": f"Airflow unreachable: {reason}"}
    raise AssertionError("unreachable")


def rest_api_answer(status: int, payload) -> tuple[int, dict, str | None]:
    """Map Airflow's status to MWAA's answer: (http status, body, error type)."""
    body = {"RestApiStatusCode": status, "RestApiResponse": payload}
    if 200 <= status < 300:
        return 200, body, None
    if 400 <= status < 500:
        return 400, body, "RestApiClientException"
    return 400, body, "RestApiServerException"


# ---------------------------------------------------------------------------
# Control plane
# ---------------------------------------------------------------------------
class ControlPlane(AccountStores):
    """State shared by request handlers: store, faults, calls, Airflows."""

    def __init__(self, moto_url, airflows, region, account):
        self.region, self.account, self.moto_url = region, account, moto_url
        # One store per account: environments, their lifecycle and events are the account's.
        self.stores = {account: model.Store(region, account, moto_url, self.accounts)}
        self.airflows = list(airflows or [])
        self.auth = AirflowAuth()
        self.lock = threading.Lock()
        self.faults: list[dict] = []
        self.calls: list[dict] = []
        self._init_accounts()

    def reset(self):
        with self.lock:
            others = [s for a, s in self.stores.items() if a != self.account]
            self.stores = {self.account: self.stores[self.account]}
            self._key_accounts.clear()
            self.faults.clear()
            self.calls.clear()
        self.stores[self.account].reset()
        for store in others:
            store.shutdown()

    def add_faults(self, rules):
        if isinstance(rules, dict):
            rules = rules.get("rules", [rules])
        kinds = ("throttle", "server_error", "rest_api_server_error", "rest_api_client_error",
                 "latency", "access_denied")
        for rule in rules:
            if rule.get("kind") not in kinds:
                raise model.validation(f"fault kind must be one of {kinds}")
            if rule.get("after") and rule["kind"] in ("latency", "access_denied"):
                raise model.validation(f"a {rule['kind']} fault cannot come after the work")
        with self.lock:
            for rule in rules:
                self.faults.append({"operation": "*", "count": 1, **rule})
            return list(self.faults)

    def take_fault(self, operation: str, name: str | None, body: dict | None = None) -> dict | None:
        body = body if operation == "InvokeRestApi" and isinstance(body, dict) else {}
        with self.lock:
            for rule in self.faults:
                if rule["operation"] in ("*", operation) and rule.get("name") in (None, name) \
                        and rule.get("method") in (None, body.get("Method")) \
                        and rule.get("path") in (None, body.get("Path")):
                    rule["count"] -= 1
                    if rule["count"] <= 0:
                        self.faults.remove(rule)
                    return dict(rule)
        return None

    def record(self, call: dict):
        with self.lock:
            self.calls.append(call)

    # -- operations ------------------------------------------------------------
    def create(self, name, body):
        return {"Arn": self.store.create(name, body)["Arn"]}

    def get(self, name):
        model.check_name(name)
        with self.store.lock:
            return {"Environment": json.loads(json.dumps(self.store.get(name).env))}

    def update(self, name, body):
        return {"Arn": self.store.update(name, body)["Arn"]}

    def delete(self, name):
        self.store.delete(name)
        return {}

    def list_environments(self, query):
        names = self.store.names()
        try:
            limit = int(query.get("MaxResults", ["25"])[0])
            start = int(query.get("NextToken", ["0"])[0] or 0)
        except ValueError:
            raise model.validation("Invalid MaxResults or NextToken")
        if not 1 <= limit <= 25:
            raise model.validation("MaxResults must be between 1 and 25")
        out = {"Environments": names[start:start + limit]}
        if start + limit < len(names):
            out["NextToken"] = str(start + limit)
        return out

    def tokens(self, name, web: bool):
        model.check_name(name)
        with self.store.lock:
            env = self.store.get(name).env
            host = env["WebserverUrl"]
        if web:
            return {"WebToken": secrets.token_urlsafe(32), "WebServerHostname": host,
                    "IamIdentity": "assumed-role/mwaa-local/bed", "AirflowIdentity": "mwaa-local"}
        return {"CliToken": secrets.token_urlsafe(32), "WebServerHostname": host}

    def tags(self, method, arn, body, query):
        name = model.parse_env_arn(arn)
        if method == "POST":
            if not isinstance(body.get("Tags"), dict):
                raise model.validation("Tags is required")
            self.store.tag(name, body["Tags"])
            return {}
        if method == "DELETE":
            self.store.untag(name, query.get("tagKeys", []))
            return {}
        with self.store.lock:
            return {"Tags": dict(self.store.get(name).env["Tags"])}

    def invoke(self, name, body, call) -> tuple[int, dict, str | None]:
        # Name, Path (1..64 characters) and Method (enum) are checked against the model first.
        path, method = body.get("Path"), body.get("Method")
        call.update(path=path, method=method)
        with self.store.lock:
            env = self.store.get(name).env
            status, version = env["Status"], env["AirflowVersion"]
        if status not in INVOKABLE:
            raise model.validation(f"Environment {name} is not available for InvokeRestApi: "
                                   f"its status is {status}.")
        info = pick_airflow(self.airflows, version)
        if info is None:
            code, payload = 503, {"title": "Service Unavailable", "status": 503,
                                  "detail": f"no local Airflow for version {version}"}
        else:
            call["forwarded"] = True
            call["airflow"] = info.get("version")
            if not path.startswith("/"):
                path = "/" + path
            code, payload = forward(self.auth, info, method, path,
                                    body.get("QueryParameters"), body.get("Body"))
        call["rest_api_status"] = code
        return rest_api_answer(code, payload)


ROUTES = {  # (method, first segment, has label) -> operation
    ("PUT", "environments", True): "CreateEnvironment",
    ("GET", "environments", True): "GetEnvironment",
    ("PATCH", "environments", True): "UpdateEnvironment",
    ("DELETE", "environments", True): "DeleteEnvironment",
    ("GET", "environments", False): "ListEnvironments",
    ("POST", "restapi", True): "InvokeRestApi",
    ("POST", "clitoken", True): "CreateCliToken",
    ("POST", "webtoken", True): "CreateWebLoginToken",
    ("POST", "tags", True): "TagResource",
    ("DELETE", "tags", True): "UntagResource",
    ("GET", "tags", True): "ListTagsForResource",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mwaa-local"
    plane: ControlPlane  # set on the subclass made by serve()

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body, error_type: str | None = None):
        model.send_json(self, status, body, error_type)

    def _body(self, any_json: bool = False):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError("SerializationException", 400, "Request body is not valid JSON")
        if not any_json and not isinstance(body, dict):
            raise ApiError("SerializationException", 400, "Request body must be a JSON object")
        return body

    def _dispatch(self):
        raw_path, _, raw_query = self.path.partition("?")
        segments = [urllib.parse.unquote(s) for s in raw_path.split("/")[1:]]
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        if segments and segments[0] == "_bed":
            return self._admin(self.command, segments[1:], query)
        label = segments[1] if len(segments) >= 2 else None
        operation = ROUTES.get((self.command, segments[0] if segments else "", label is not None))
        if operation is None or len(segments) > 2:
            self._body()
            return self._send(404, {"message": f"No operation for {self.command} {raw_path}"},
                              "UnknownOperationException")
        name = label
        if operation.endswith("Resource"):
            try:
                name = model.parse_env_arn(label)
            except ApiError:
                pass
        call = {"operation": operation, "name": name, "time": time.time()}
        status, error_type = 200, None
        try:
            call["account"] = self.plane.account_of(self.headers.get("Authorization"))
            self.plane.use_account(call["account"])
            body = self._body()
            if operation == "InvokeRestApi":  # also for calls a fault keeps from Airflow
                call.update(path=body.get("Path"), method=body.get("Method"))
            # IAM decides before anything else does (a refused call never reaches a fault).
            denied = iam_mwaa.refusal(self.plane.moto_url, self.headers.get("Authorization"),
                                      self.plane.region, call["account"], operation, name, body)
            if denied:
                raise ApiError("AccessDeniedException", 403, body={"Message": denied})
            fault = self.plane.take_fault(operation, name, body)
            if fault and fault.get("after"):
                # The work is done; only its answer is lost.
                call["fault"], call["after"] = fault["kind"], True
                try:
                    self._operation(operation, label, body, query, call)
                except ApiError as e:
                    call["work_error"] = e.code
                status, out, error_type = self._fault(fault, call, operation, name)
            elif fault:
                call["fault"] = fault["kind"]
                status, out, error_type = self._fault(fault, call, operation, name)
                if status is None:
                    status, out, error_type = self._operation(operation, label, body, query, call)
            else:
                status, out, error_type = self._operation(operation, label, body, query, call)
        except ApiError as e:
            status, out, error_type = e.status, e.body, e.code
        except Exception as e:  # a bug here must still answer like AWS
            log.exception("internal error in %s", operation)
            status, out, error_type = 500, {"message": f"Internal error: {e}"}, \
                "InternalServerException"
        call.update(status=status)
        if error_type:
            call["error"] = error_type
        self.plane.record(call)
        self._send(status, out, error_type)

    def _fault(self, fault, call, operation=None, name=None):
        kind = fault["kind"]
        if kind == "latency":
            time.sleep(fault.get("latency_ms", 0) / 1000)
            return None, None, None
        if kind == "access_denied":
            return 403, {"Message": fault.get("message") or self._denied(fault, operation, name)}, \
                "AccessDeniedException"
        if kind == "throttle":
            return 429, {"message": "Rate exceeded"}, "ThrottlingException"
        if kind == "server_error":
            status = int(fault.get("status") or 500)
            error = "ServiceUnavailableException" if status == 503 else "InternalServerException"
            return status, {"message": "Injected server error (local MWAA bed)"}, error
        status = int(fault.get("status") or (503 if kind == "rest_api_server_error" else 404))
        call["rest_api_status"] = status
        error = ("RestApiServerException" if kind == "rest_api_server_error"
                 else "RestApiClientException")
        return 400, {"RestApiStatusCode": status, "RestApiResponse": {
            "title": "Injected", "status": status, "detail": "Injected by the local MWAA bed",
            "type": "about:blank"}}, error

    def _denied(self, fault, operation, name):
        """IAM's wording of an implicit deny (the resource as the action's IAM resource type)."""
        p = self.plane
        principal = fault.get("principal") or \
            f"arn:aws:sts::{p.store.account}:assumed-role/mwaa-ops-bed/bed-session"
        if operation == "InvokeRestApi":  # airflow:InvokeRestApi is on role/ENV/ROLE
            resource = f"arn:aws:airflow:{p.region}:{p.store.account}:role/{name}/" \
                       f"{fault.get('airflow_role', 'Admin')}"
        elif operation == "ListEnvironments":
            resource = f"arn:aws:airflow:{p.region}:{p.store.account}:environment/*"
        else:
            resource = f"arn:aws:airflow:{p.region}:{p.store.account}:environment/{name}"
        return (f"User: {principal} is not authorized to perform: airflow:{operation} on "
                f"resource: {resource} because no identity-based policy allows the "
                f"airflow:{operation} action")

    def _operation(self, operation, label, body, query, call):
        p = self.plane
        model.validate_request(operation, label, body, query)
        if operation == "InvokeRestApi":
            return p.invoke(label, body, call)
        out = {
            "CreateEnvironment": lambda: p.create(label, body),
            "GetEnvironment": lambda: p.get(label),
            "UpdateEnvironment": lambda: p.update(label, body),
            "DeleteEnvironment": lambda: p.delete(label),
            "ListEnvironments": lambda: p.list_environments(query),
            "CreateCliToken": lambda: p.tokens(label, web=False),
            "CreateWebLoginToken": lambda: p.tokens(label, web=True),
            "TagResource": lambda: p.tags("POST", label, body, query),
            "UntagResource": lambda: p.tags("DELETE", label, body, query),
            "ListTagsForResource": lambda: p.tags("GET", label, body, query),
        }[operation]()
        return 200, out, None

    def _admin(self, method, segments, query):
        p = self.plane
        what = segments[0] if segments else ""
        try:
            body = self._body(any_json=True) if method in ("POST", "PUT") else None
            # Calls about one environment may name its account (default: the bed's).
            account = (body.get("account") if isinstance(body, dict) else None) \
                or query.get("account", [None])[0]
            p.use_account(account)
            if what == "reset" and method == "POST":
                p.reset()
                out = {"reset": True}
            elif what == "config":
                if method == "POST":
                    values = {k: v for k, v in (body or {}).items() if k != "account"}
                    out = [s.configure(values) for s in list(p.stores.values())][0]
                else:
                    out = dict(p.store.config)
            elif what == "faults":
                if method == "POST":
                    out = p.add_faults(body if body is not None else [])
                else:
                    with p.lock:
                        if method == "DELETE":
                            p.faults.clear()
                        out = list(p.faults)
            elif what == "fail" and method == "POST":
                p.store.arm_failure(body["name"], body["status"])
                out = {"armed": body}
            elif what == "status" and method == "POST":
                p.store.force_status(body["name"], body["status"])
                out = {"status": body}
            elif what == "calls":
                with p.lock:
                    if method == "DELETE":
                        p.calls.clear()
                    ops = query.get("operation")
                    out = [c for c in p.calls if not ops or c["operation"] in ops]
            elif what == "environments":
                out = {"live": [], "deleted": []}
                for store in list(p.stores.values()):
                    with store.lock:
                        out["live"] += [json.loads(json.dumps(r.env)) for r in store.records.values()]
                        out["deleted"] += list(store.deleted)
            elif what == "events":
                out = p.events()
            elif what == "airflows" and method == "POST":
                p.airflows = list(body.get("airflows", body) if isinstance(body, dict) else body)
                out = p.airflows
            else:
                return self._send(404, {"message": f"unknown admin call {method} /_bed/{what}"},
                                  "UnknownOperationException")
        except ApiError as e:
            return self._send(e.status, e.body, e.code)
        except (KeyError, TypeError, ValueError) as e:
            return self._send(400, {"message": f"bad admin request: {e!r}"}, "ValidationException")
        self._send(200, out)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    def do_HEAD(self):
        self._send(405, {"message": "HEAD not supported"}, "UnknownOperationException")


class Handle:
    """A running control plane: ``port``, ``url``, ``plane``, ``shutdown()``."""

    def __init__(self, server: ThreadingHTTPServer, plane: ControlPlane):
        self.server, self.plane = server, plane
        self.host, self.port = server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, name="mwaa-http",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()
        for store in list(self.plane.stores.values()):
            store.shutdown()
        self._thread.join(timeout=5)


def serve(host: str = "127.0.0.1", port: int = 0, moto_url: str | None = None,
          airflows: list[dict] | None = None, region: str = "us-east-1",
          account: str = "123456789012", config: dict | None = None) -> Handle:
    """Start the control plane in background threads and return its handle."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the local MWAA binds to the loopback interface only")
    plane = ControlPlane(moto_url, airflows, region, account)
    if config:  # also what POST /_bed/reset restores
        plane.store.configure(config, as_default=True)
    handler = type("BoundHandler", (Handler,), {"plane": plane})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return Handle(server, plane)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--moto-url")
    ap.add_argument("--airflows-json", help="file with the list of Airflows (JSON)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="123456789012")
    for key, default in model.DEFAULT_CONFIG.items():
        if key in model.BOOL_CONFIG:
            ap.add_argument("--" + key.replace("_", "-"), default=default,
                            type=lambda v: v.strip().lower() in ("1", "true", "yes", "on"))
        else:
            ap.add_argument("--" + key.replace("_", "-"), type=float, default=default)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    airflows = []
    if args.airflows_json:
        with open(args.airflows_json) as f:
            airflows = json.load(f)
        if isinstance(airflows, dict):
            airflows = airflows.get("airflows", [])
    handle = serve(args.host, args.port, args.moto_url, airflows, args.region, args.account,
                   {k: getattr(args, k) for k in model.DEFAULT_CONFIG})
    model.serve_until_signalled(handle)


if __name__ == "__main__":
    main()
