"""Environment model of the local MWAA control plane (see mwaa_local.py).

What lives here: input validation as AWS does it, the full GetEnvironment
record with MWAA's defaults, the status lifecycle engine (one background
thread) and the ``MWAA Environment Status Change`` events put on moto's
EventBridge default bus.

Lifecycle (delays from ``Store.config``):

* create: CREATING -> AVAILABLE; with EndpointManagement=CUSTOMER:
  CREATING -> PENDING, polled every ``pending_poll`` s until interface VPC
  endpoints to DatabaseVpcEndpointService (and WebserverVpcEndpointService
  when WebserverAccessMode is PRIVATE_ONLY or PUBLIC_AND_PRIVATE) exist in
  moto's EC2 of any account the bed serves (a shared VPC's endpoints are its
  owner's; states
  deleted/deleting/rejected/failed/expired don't count) -> AVAILABLE.  A
  PENDING environment whose endpoints are not there after ``pending_timeout``
  s (default 72 h) becomes CREATE_FAILED: botocore's CreateEnvironment
  EndpointManagement documentation, "If you do not take action to create the
  endpoints within 72 hours, the status will change to CREATE_FAILED".
* update: UPDATING -> CREATING_SNAPSHOT -> UPDATING -> AVAILABLE (the first
  UPDATING and the snapshot last ``snapshot_delay`` s each, the second
  ``update_delay`` s).  Allowed from AVAILABLE and UPDATE_FAILED.  The order is
  what AWS's in-place upgrade post describes ("the status will show UPDATING,
  then CREATING_SNAPSHOT as Amazon MWAA captures a backup of metadata.
  Finally, the status will return first to UPDATING, then to AVAILABLE",
  quoted in hashicorp/terraform-provider-aws#31833); botocore's
  EnvironmentStatus documentation has CREATING_SNAPSHOT for "the request to
  update environment details, or upgrade the environment version", so every
  update takes the snapshot here.
* delete: DELETING -> DELETED; a DELETED record is kept internally but is
  invisible to the API (ResourceNotFoundException), and a new environment of
  the same name may be created.
* injected failures (``arm_failure``): CREATE_FAILED replaces the end of the
  create phase (LastUpdate.Error INCORRECT_CONFIGURATION); UPDATE_FAILED
  replaces the end of the next update phase: ROLLING_BACK for
  ``rollback_delay`` s, then UPDATE_FAILED with the configuration from before
  the update.  botocore's EnvironmentStatus documentation: ROLLING_BACK "The
  request to update environment details or upgrade the environment version
  failed and Amazon MWAA is restoring the environment using the latest
  storage volume snapshot"; UPDATE_FAILED "The request to update the
  environment failed and the environment was restored to its previous state
  successfully and is ready to use" (so not back to AVAILABLE).

Input validation: every request is first checked against botocore's MWAA
model (required members, types, enums, lengths, min/max, patterns as whole
matches: ``validate_request``), answered like AWS's framework does
(``N validation error(s) detected: Value '...' at 'member' failed to satisfy
constraint: Member must ...``); then the service's own rules the model does
not carry (offered versions and classes, worker and scheduler counts, teams).

Event shape (put on every status transition, best effort), ``rich_events``
false (the default: sparse, only what AWS documents):

    Source      "aws.airflow"
    DetailType  "MWAA Environment Status Change"
    Resources   ["arn:aws:airflow:REGION:ACCOUNT:environment/NAME"]
    Detail      {}

AWS documents the source, the detail-type and best-effort delivery (EventBridge
events reference, "Amazon Managed Workflows for Apache Airflow events") and no
detail field at all; ``resources`` is the envelope's list of the resources
involved (EventBridge "AWS service event metadata").  ``rich_events`` true
(only where a test asks for it, e.g. to pick one status's event out of a rule's
queue) adds the fields seen in use plus two of this bed's own:

    Detail      {"name", "status", "previousStatus" (absent on CREATING),
                 "celeryExecutorQueue", "databaseVpcEndpointService",
                 "webserverVpcEndpointService", "webserverAccessMode",
                 "endpointManagement",
                 "networkConfiguration": {"subnetIds", "securityGroupIds"}}

The camelCase keys name, status, celeryExecutorQueue,
databaseVpcEndpointService, webserverVpcEndpointService, webserverAccessMode
and networkConfiguration.{subnetIds,securityGroupIds} are those seen in use
(the MWAA user guide tutorial "Automate managing your own environment
endpoints"); previousStatus and endpointManagement are additions of this bed.
Consumers must treat every detail field as optional and read GetEnvironment.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import queue
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone

import airflow_bed

log = logging.getLogger("mwaa_local")

_VERSIONS = airflow_bed.airflow_versions()  # the suite's one list of versions
AIRFLOW_VERSIONS = tuple(v["version"] for v in _VERSIONS["versions"])
# The API reference: "If no value is specified, it defaults to the latest version."
DEFAULT_AIRFLOW_VERSION = _VERSIONS["default"]
ENVIRONMENT_CLASSES = (
    "mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge",
)
LOG_MODULES = {  # member -> suffix of the log group MWAA creates
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
STATUSES = ("CREATING", "CREATE_FAILED", "AVAILABLE", "UPDATING", "DELETING", "DELETED",
            "UNAVAILABLE", "UPDATE_FAILED", "ROLLING_BACK", "CREATING_SNAPSHOT", "PENDING",
            "MAINTENANCE")
BAD_ENDPOINT_STATES = {"deleted", "deleting", "rejected", "failed", "expired"}
DEFAULT_CONFIG = {"create_delay": 1.0, "update_delay": 1.0, "delete_delay": 1.0,
                  "pending_poll": 0.5, "snapshot_delay": 0.2, "rollback_delay": 0.2,
                  # MWAA's 72 hours (see the module documentation)
                  "pending_timeout": 72 * 3600.0,
                  # the event detail: rich (true) or only what AWS documents (false)
                  "rich_events": False}
BOOL_CONFIG = ("rich_events",)

NAME_RE = r"^[a-zA-Z][0-9a-zA-Z-_]*$"
PATTERNS = {
    "ExecutionRoleArn": r"^arn:aws(-[a-z]+)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$",
    "SourceBucketArn": r"^arn:aws(-[a-z]+)?:s3:::[a-z0-9.\-]+$",
    "KmsKey": r"^(((arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:\d+:)?key\/)?[a-f0-9]{8}-[a-f0-9]{4}"
              r"-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}|(arn:aws(-[a-z]+)?:kms:[a-z]{2}-[a-z]+-\d:"
              r"\d+:)?alias/.+)$",
    "WeeklyMaintenanceWindowStart": r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$",
}
ENV_ARN_RE = r"^arn:aws(-[a-z]+)?:airflow:([a-z0-9\-]+):(\d{12}):environment/([a-zA-Z][0-9a-zA-Z-_]*)$"


def send_json(handler, status: int, body, error_type: str | None = None,
              content_type: str = "application/json") -> None:
    """Answers a request of ``handler`` (a BaseHTTPRequestHandler) with JSON, as AWS does."""
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(raw)))
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    if error_type:
        handler.send_header("x-amzn-errortype", error_type)
    handler.end_headers()
    handler.wfile.write(raw)


def serve_until_signalled(handle) -> None:
    """Prints ``READY <url>`` for the process that started a control plane, serves until
    SIGTERM or SIGINT, then shuts ``handle`` down."""
    import signal
    print(f"READY {handle.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    handle.shutdown()


class ApiError(Exception):
    """An AWS error: type (x-amzn-errortype), HTTP status, JSON body."""

    def __init__(self, code: str, status: int, message: str | None = None, body: dict | None = None):
        super().__init__(message or code)
        self.code, self.status = code, status
        self.body = body if body is not None else {"message": message or code}


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", 400, message)


def not_found(name: str) -> ApiError:
    return ApiError("ResourceNotFoundException", 404, f"Environment {name} not found.")


def _constraint(value, member: str, what: str) -> ApiError:
    return validation(f"1 validation error detected: Value '{value}' at '{member}' failed to "
                      f"satisfy constraint: Member must {what}")


# ---------------------------------------------------------------------------
# Validation against botocore's MWAA model (the constraints AWS's framework enforces)
# ---------------------------------------------------------------------------
_MODELS: dict = {}


def service_model(service: str = "mwaa"):
    """botocore's model of a service (the bed's botocore, 1.44.x): MWAA by default; the
    local MWAA Serverless asks for "mwaa-serverless"."""
    if service not in _MODELS:
        import botocore.session
        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


def pattern_matches(pattern: str, value: str) -> bool:
    r"""A model pattern, as a whole match (AWS's API reference shows them anchored: ^...$).

    Java's ``\p{L}`` classes (tag keys and values) need the ``regex`` module.
    """
    if "\\p{" in pattern:
        import regex
        return regex.fullmatch(pattern, value) is not None
    return re.fullmatch(pattern, value) is not None


def _shown(value) -> str:
    if value is None:
        return "null"
    return "'" + (value if isinstance(value, str) else json.dumps(value)) + "'"


def _member_path(path: str, member: str) -> str:
    name = member[0].lower() + member[1:]
    return f"{path}.{name}" if path else name


def shape_errors(shape, value, path: str, errors: list[str]) -> None:
    """Append AWS-style messages for every constraint of ``shape`` that ``value`` breaks."""
    meta, kind = shape.metadata, shape.type_name
    at = f"Value {_shown(value)} at '{path}' failed to satisfy constraint: Member must "
    if meta.get("document"):
        return
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(at + "be a structure")
            return
        for req in meta.get("required", []):
            if value.get(req) is None:
                errors.append(f"Value null at '{_member_path(path, req)}' failed to satisfy "
                              "constraint: Member must not be null")
        for key, item in value.items():
            if key in shape.members and item is not None:
                shape_errors(shape.members[key], item, _member_path(path, key), errors)
        return
    if kind in ("list", "map"):
        if not isinstance(value, list if kind == "list" else dict):
            errors.append(at + f"be a {kind}")
            return
        if "min" in meta and len(value) < meta["min"]:
            errors.append(at + f"have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(at + f"have length less than or equal to {meta['max']}")
        if kind == "list":
            for i, item in enumerate(value, 1):
                shape_errors(shape.member, item, f"{path}.{i}.member", errors)
        else:
            for key, item in value.items():
                shape_errors(shape.key, key, f"{path}.key", errors)
                if item is None:
                    errors.append(f"Value null at '{path}.{key}' failed to satisfy constraint: "
                                  "Member must not be null")
                else:
                    shape_errors(shape.value, item, f"{path}.{key}", errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            errors.append(at + "be a string")
            return
        if "min" in meta and len(value) < meta["min"]:
            errors.append(at + f"have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(at + f"have length less than or equal to {meta['max']}")
        if meta.get("enum") and value not in meta["enum"]:
            errors.append(at + f"satisfy enum value set: [{', '.join(meta['enum'])}]")
        if meta.get("pattern") and not pattern_matches(meta["pattern"], value):
            errors.append(at + f"satisfy regular expression pattern: {meta['pattern']}")
        return
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(at + "be an integer")
            return
        if "min" in meta and value < meta["min"]:
            errors.append(at + f"have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(at + f"have value less than or equal to {meta['max']}")
        return
    if kind == "boolean" and not isinstance(value, bool):
        errors.append(at + "be a boolean")


def request_params(operation: str, label: str | None, body: dict, query: dict) -> dict:
    """The operation's input as one dict: URI label, query string and JSON body members."""
    shape = service_model().operation_model(operation).input_shape
    params: dict = {}
    if shape is None:
        return params
    for key, member in shape.members.items():
        where, wire = member.serialization.get("location"), member.serialization.get("name", key)
        if where == "uri":
            params[key] = label
        elif where == "querystring":
            if wire not in query:
                continue
            values = query[wire]
            if member.type_name == "list":
                params[key] = list(values)
            elif member.type_name == "integer":
                try:
                    params[key] = int(values[0])
                except ValueError:
                    raise ApiError("SerializationException", 400,
                                   f"Cannot read {wire}={values[0]!r} as an integer")
            else:
                params[key] = values[0]
        elif key in body:
            params[key] = body[key]
    return params


def validate_request(operation: str, label: str | None, body: dict, query: dict) -> dict:
    """Check a request against the model's input shape; ValidationException as AWS words it."""
    params = request_params(operation, label, body, query)
    shape = service_model().operation_model(operation).input_shape
    errors: list[str] = []
    if shape is not None:
        shape_errors(shape, params, "", errors)
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise validation(count + "; ".join(errors))
    return params


def check_name(name: str) -> None:
    if not 1 <= len(name) <= 80:
        raise _constraint(name, "name", "have length between 1 and 80")
    if not re.match(NAME_RE, name):
        raise _constraint(name, "name", f"satisfy regular expression pattern: {NAME_RE}")


def parse_env_arn(arn: str) -> str:
    """Return the environment name of an environment ARN, else ValidationException."""
    m = re.match(ENV_ARN_RE, arn or "")
    if not m:
        raise _constraint(arn, "resourceArn", "satisfy regular expression pattern: "
                          "arn:aws(-[a-z]+)?:airflow:[a-z0-9\\-]+:\\d{12}:environment/\\w+.*")
    return m.group(4)


def _int(inp: dict, key: str, lo: int | None = None, hi: int | None = None):
    v = inp.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise validation(f"{key} must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _constraint(v, key[0].lower() + key[1:],
                          f"have value between {lo} and {hi}" if hi else f"have value >= {lo}")
    return v


def check_tags(tags) -> None:
    if not isinstance(tags, dict) or not 1 <= len(tags) <= 50:
        raise validation("Tags must be a map of 1 to 50 entries")
    for k, v in tags.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 128 or k.lower().startswith("aws:"):
            raise validation(f"Invalid tag key: {k!r}")
        if not isinstance(v, str) or not 1 <= len(v) <= 256:
            raise validation(f"Invalid tag value for {k!r}")


def validate_input(inp: dict, create: bool) -> None:
    """Validate a CreateEnvironment / UpdateEnvironment body as MWAA does."""
    if create:
        for key in ("ExecutionRoleArn", "SourceBucketArn", "DagS3Path", "NetworkConfiguration"):
            if inp.get(key) in (None, ""):
                raise _constraint("null", key[0].lower() + key[1:], "not be null")
    for key, pattern in PATTERNS.items():
        if inp.get(key) is not None and not re.match(pattern, str(inp[key])):
            raise _constraint(inp[key], key[0].lower() + key[1:],
                              f"satisfy regular expression pattern: {pattern}")
    for key in ("DagS3Path", "PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path"):
        if inp.get(key) is not None and (not isinstance(inp[key], str) or len(inp[key]) > 1024):
            raise validation(f"{key} must be a string of at most 1024 characters")
    if inp.get("AirflowVersion") is not None and inp["AirflowVersion"] not in AIRFLOW_VERSIONS:
        raise validation(f"Invalid AirflowVersion: {inp['AirflowVersion']}. Valid values: "
                         + ", ".join(AIRFLOW_VERSIONS))
    if inp.get("EnvironmentClass") is not None and inp["EnvironmentClass"] not in ENVIRONMENT_CLASSES:
        raise validation(f"Invalid EnvironmentClass: {inp['EnvironmentClass']}")
    for key, allowed in (("WebserverAccessMode", ("PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE")),
                         ("EndpointManagement", ("CUSTOMER", "SERVICE")),
                         ("WorkerReplacementStrategy", ("FORCED", "GRACEFUL"))):
        if inp.get(key) is not None and inp[key] not in allowed:
            raise _constraint(inp[key], key[0].lower() + key[1:],
                              f"satisfy enum value set: [{', '.join(allowed)}]")
    for key in ("MinWorkers", "MaxWorkers"):
        _int(inp, key, 1, 25)
    _int(inp, "Schedulers", 1, 5)
    for key in ("MinWebservers", "MaxWebservers"):
        _int(inp, key, 1, 5)
    net = inp.get("NetworkConfiguration")
    if net is not None:
        if not isinstance(net, dict):
            raise validation("NetworkConfiguration must be a structure")
        subnets, groups = net.get("SubnetIds"), net.get("SecurityGroupIds")
        if create or subnets is not None:
            if not isinstance(subnets, list) or len(subnets) != 2:
                raise validation("NetworkConfiguration.SubnetIds must contain exactly 2 subnets "
                                 "in different availability zones")
            for s in subnets:
                if not re.match(r"^subnet-[a-zA-Z0-9\-._]+$", str(s)):
                    raise validation(f"Invalid subnet ID: {s}")
        if create or groups is not None:
            if not isinstance(groups, list) or not 1 <= len(groups) <= 5:
                raise validation("NetworkConfiguration.SecurityGroupIds must contain 1 to 5 "
                                 "security groups")
            for g in groups:
                if not re.match(r"^sg-[a-zA-Z0-9\-._]+$", str(g)):
                    raise validation(f"Invalid security group ID: {g}")
    opts = inp.get("AirflowConfigurationOptions")
    if opts is not None:
        if not isinstance(opts, dict):
            raise validation("AirflowConfigurationOptions must be a map")
        for k, v in opts.items():
            if not re.match(r"^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$", k) or len(k) > 64:
                raise validation(f"Invalid Airflow configuration option key: {k}")
            if not isinstance(v, str) or not re.match(r"^[ -~]+$", v):
                raise validation(f"Invalid value for Airflow configuration option {k}")
    logging_cfg = inp.get("LoggingConfiguration")
    if logging_cfg is not None:
        if not isinstance(logging_cfg, dict):
            raise validation("LoggingConfiguration must be a structure")
        for module, cfg in logging_cfg.items():
            if module not in LOG_MODULES:
                raise validation(f"Unknown logging module {module}")
            if not isinstance(cfg, dict) or not isinstance(cfg.get("Enabled"), bool) \
                    or cfg.get("LogLevel") not in LOG_LEVELS:
                raise validation(f"LoggingConfiguration.{module} needs Enabled (boolean) and "
                                 f"LogLevel ({', '.join(LOG_LEVELS)})")
    if inp.get("Tags") is not None:
        check_tags(inp["Tags"])


def check_sizes(env: dict) -> None:
    """Cross-member checks on the merged record (create and update)."""
    micro = env["EnvironmentClass"] == "mw1.micro"
    if env["MinWorkers"] > env["MaxWorkers"]:
        raise validation("MinWorkers must be less than or equal to MaxWorkers")
    if env["MinWebservers"] > env["MaxWebservers"]:
        raise validation("MinWebservers must be less than or equal to MaxWebservers")
    if micro and (env["Schedulers"] != 1 or env["MaxWebservers"] != 1 or env["MaxWorkers"] != 1):
        raise validation("mw1.micro environments support 1 scheduler, 1 webserver and 1 worker")
    if not micro and not 2 <= env["Schedulers"] <= 5:
        raise validation("Schedulers must be between 2 and 5 for this environment class")


def _dag_folder(bucket_arn: str, path: str) -> str:
    return bucket_arn.rsplit(":", 1)[-1] + "/" + path.lstrip("/")


def check_teams(env: dict) -> None:
    """Teams need IAM Identity Center, and no two DAG folders may overlap.

    botocore's CreateEnvironment Teams documentation: "you must configure IAM Identity Center for
    the environment before you add teams"; TeamConfig.DagS3Path: "DAG folders can't overlap. A
    team folder can't be inside the global folder or another team's folder, and the global folder
    can't be inside a team folder ... compares folder paths as Amazon S3 prefixes".
    """
    teams = env.get("Teams") or {}
    if not teams:
        return
    if not env.get("IdentityCenterConfiguration"):
        raise validation("Teams require an IdentityCenterConfiguration on the environment.")
    folders = [("the global DAG folder", _dag_folder(env["SourceBucketArn"], env["DagS3Path"]))]
    folders += [(f"team {name}", _dag_folder(t["SourceBucketArn"], t["DagS3Path"]))
                for name, t in sorted(teams.items())]
    for i, (a, pa) in enumerate(folders):
        for b, pb in folders[i + 1:]:
            if pa.startswith(pb) or pb.startswith(pa):
                raise validation(f"DAG folders overlap: {a} ({pa}) and {b} ({pb}).")


def _logging(name: str, given: dict | None, region: str, account: str) -> dict:
    """LoggingConfiguration as GetEnvironment shows it; omitted modules are disabled."""
    given = given or {}
    out = {}
    for module, suffix in LOG_MODULES.items():
        cfg = given.get(module) or {"Enabled": False, "LogLevel": "INFO"}
        entry = {"Enabled": cfg["Enabled"], "LogLevel": cfg["LogLevel"]}
        if cfg["Enabled"]:
            entry["CloudWatchLogGroupArn"] = (
                f"arn:aws:logs:{region}:{account}:log-group:airflow-{name}-{suffix}")
        out[module] = entry
    return out


def new_environment(name: str, inp: dict, region: str, account: str) -> dict:
    """The full GetEnvironment record of a new environment, with MWAA's defaults."""
    cls = inp.get("EnvironmentClass") or "mw1.small"
    micro = cls == "mw1.micro"
    access = inp.get("WebserverAccessMode") or "PRIVATE_ONLY"
    host_id = uuid.uuid4()
    cell = secrets.randbelow(20) + 1
    now = time.time()
    env = {
        "Name": name,
        "Arn": f"arn:aws:airflow:{region}:{account}:environment/{name}",
        "Status": "CREATING",
        "CreatedAt": now,
        "AirflowVersion": inp.get("AirflowVersion") or DEFAULT_AIRFLOW_VERSION,
        "EnvironmentClass": cls,
        "ExecutionRoleArn": inp["ExecutionRoleArn"],
        "ServiceRoleArn": (f"arn:aws:iam::{account}:role/aws-service-role/"
                           "airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"),
        "SourceBucketArn": inp["SourceBucketArn"],
        "DagS3Path": inp["DagS3Path"],
        "AirflowConfigurationOptions": dict(inp.get("AirflowConfigurationOptions") or {}),
        "LoggingConfiguration": _logging(name, inp.get("LoggingConfiguration"), region, account),
        "MinWorkers": inp.get("MinWorkers") or 1,
        "MaxWorkers": inp.get("MaxWorkers") or (1 if micro else 10),
        "MinWebservers": inp.get("MinWebservers") or (1 if micro else 2),
        "MaxWebservers": inp.get("MaxWebservers") or (1 if micro else 2),
        "Schedulers": inp.get("Schedulers") or (1 if micro else 2),
        "NetworkConfiguration": {
            "SubnetIds": list(inp["NetworkConfiguration"]["SubnetIds"]),
            "SecurityGroupIds": list(inp["NetworkConfiguration"]["SecurityGroupIds"]),
        },
        "WebserverAccessMode": access,
        "WebserverUrl": (f"{host_id}{'-vpce' if access == 'PRIVATE_ONLY' else ''}"
                         f".c{cell}.{region}.airflow.amazonaws.com"),
        "WebserverVpcEndpointService": f"com.amazonaws.vpce.{region}.vpce-svc-{secrets.token_hex(9)[:17]}",
        "DatabaseVpcEndpointService": f"com.amazonaws.vpce.{region}.vpce-svc-{secrets.token_hex(9)[:17]}",
        "CeleryExecutorQueue": f"arn:aws:sqs:{region}:{account}:airflow-celery-{uuid.uuid4()}",
        "EndpointManagement": inp.get("EndpointManagement") or "SERVICE",
        "WeeklyMaintenanceWindowStart": inp.get("WeeklyMaintenanceWindowStart") or "SUN:03:00",
        "Tags": dict(inp.get("Tags") or {}),
        "LastUpdate": {"Status": "PENDING", "CreatedAt": now, "Source": "CUSTOMER"},
    }
    if inp.get("KmsKey"):
        env["KmsKey"] = inp["KmsKey"]
    # Members of botocore 1.44's model that aws-sdk-mwaa 1.128 lacks: stored and returned.
    if inp.get("IdentityCenterConfiguration"):
        env["IdentityCenterConfiguration"] = copy.deepcopy(inp["IdentityCenterConfiguration"])
    if inp.get("Teams"):
        env["Teams"] = copy.deepcopy(inp["Teams"])
    for key in ("PluginsS3Path", "PluginsS3ObjectVersion", "RequirementsS3Path",
                "RequirementsS3ObjectVersion", "StartupScriptS3Path", "StartupScriptS3ObjectVersion"):
        if inp.get(key):
            env[key] = inp[key]
    check_sizes(env)
    check_teams(env)
    return env


UPDATABLE = ("ExecutionRoleArn", "AirflowConfigurationOptions", "AirflowVersion", "DagS3Path",
             "EnvironmentClass", "MaxWorkers", "MinWorkers", "MaxWebservers", "MinWebservers",
             "PluginsS3Path", "PluginsS3ObjectVersion", "RequirementsS3Path",
             "RequirementsS3ObjectVersion", "Schedulers", "SourceBucketArn", "StartupScriptS3Path",
             "StartupScriptS3ObjectVersion", "WebserverAccessMode", "WeeklyMaintenanceWindowStart")


def apply_update(env: dict, inp: dict, region: str, account: str) -> dict:
    """Return a copy of ``env`` with the UpdateEnvironment input applied."""
    new = copy.deepcopy(env)
    for key in UPDATABLE:
        if key in inp and inp[key] is not None:
            new[key] = copy.deepcopy(inp[key])
    if inp.get("AirflowVersion") and inp["AirflowVersion"].split(".")[0] != env["AirflowVersion"].split(".")[0]:
        raise validation("Upgrading between Apache Airflow major versions is not supported")
    if inp.get("AirflowVersion") and _vkey(inp["AirflowVersion"]) < _vkey(env["AirflowVersion"]):
        raise validation("Downgrading the Apache Airflow version is not supported")
    if inp.get("NetworkConfiguration", {}).get("SecurityGroupIds"):
        new["NetworkConfiguration"]["SecurityGroupIds"] = list(
            inp["NetworkConfiguration"]["SecurityGroupIds"])
    if inp.get("LoggingConfiguration"):
        merged = {m: {"Enabled": c["Enabled"], "LogLevel": c["LogLevel"]}
                  for m, c in env["LoggingConfiguration"].items()}
        merged.update(inp["LoggingConfiguration"])
        new["LoggingConfiguration"] = _logging(env["Name"], merged, region, account)
    if inp.get("IdentityCenterConfiguration"):
        new["IdentityCenterConfiguration"] = copy.deepcopy(inp["IdentityCenterConfiguration"])
    teams_update = inp.get("Teams") or {}
    if teams_update:
        teams = dict(new.get("Teams") or {})
        teams.update(copy.deepcopy(teams_update.get("AddOrUpdate") or {}))
        for name in teams_update.get("Remove") or []:
            if name not in teams:
                raise validation(f"Team {name} is not configured on environment {env['Name']}.")
            del teams[name]
        if teams:
            new["Teams"] = teams
        else:
            new.pop("Teams", None)
    check_sizes(new)
    check_teams(new)
    return new


def _vkey(version: str) -> tuple:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def event_detail(env: dict, previous: str | None, rich: bool = False) -> dict:
    """The event's detail: ``{}`` unless rich (see the module documentation)."""
    if not rich:
        return {}
    detail = {"name": env["Name"], "status": env["Status"]}
    if previous:
        detail["previousStatus"] = previous
    detail.update({
        "celeryExecutorQueue": env["CeleryExecutorQueue"],
        "databaseVpcEndpointService": env["DatabaseVpcEndpointService"],
        "webserverVpcEndpointService": env["WebserverVpcEndpointService"],
        "webserverAccessMode": env["WebserverAccessMode"],
        "endpointManagement": env["EndpointManagement"],
        "networkConfiguration": {
            "subnetIds": env["NetworkConfiguration"]["SubnetIds"],
            "securityGroupIds": env["NetworkConfiguration"]["SecurityGroupIds"],
        },
    })
    return detail


_EVENT_ORDER = itertools.count()  # events of all accounts, in the order they were made


class Record:
    """One environment: the public GetEnvironment dict plus lifecycle state."""

    def __init__(self, env: dict):
        self.env = env
        self.due: float | None = None      # when ``action`` runs
        self.action: str | None = None     # create_done | pending_check | update_done | delete_done
        self.before_update: dict | None = None
        self.pending_since: float | None = None

    @property
    def status(self) -> str:
        return self.env["Status"]


class Store:
    """Thread-safe environments, armed failures and the lifecycle thread."""

    def __init__(self, region: str, account: str, moto_url: str | None, accounts=None):
        self.region, self.account, self.moto_url = region, account, moto_url
        # Every account the bed serves: a shared VPC's endpoints are its owner's, and the
        # environment of a participant account waits for them all the same.
        self.accounts = accounts or (lambda: [account])
        self.lock = threading.RLock()
        self.records: dict[str, Record] = {}   # live (not DELETED)
        self.deleted: list[dict] = []          # DELETED records, for inspection
        self.armed: dict[str, set[str]] = {}   # name -> {"CREATE_FAILED", "UPDATE_FAILED"}
        self.defaults = dict(DEFAULT_CONFIG)   # what reset() restores
        self.config = dict(DEFAULT_CONFIG)
        self.events: list[dict] = []           # every event put (or attempted)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._clients: dict[str, object] = {}
        self._clients_lock = threading.Lock()
        self._outbox: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="mwaa-lifecycle", daemon=True)
        self._thread.start()
        self._events_thread = threading.Thread(target=self._publisher, name="mwaa-events",
                                               daemon=True)
        self._events_thread.start()

    # -- admin ---------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.deleted.clear()
            self.armed.clear()
            self.events.clear()
            self.config = dict(self.defaults)

    def configure(self, values: dict, as_default: bool = False) -> dict:
        """Set delays (seconds) and ``rich_events``; ``as_default`` also makes them what reset()
        restores."""
        with self.lock:
            for key, value in values.items():
                if key not in DEFAULT_CONFIG:
                    raise validation(f"unknown config key {key}")
                if key in BOOL_CONFIG:
                    if isinstance(value, str):
                        value = value.strip().lower() in ("1", "true", "yes", "on")
                    value = bool(value)
                else:
                    value = float(value)
                self.config[key] = value
                if as_default:
                    self.defaults[key] = value
            self._wake.set()  # a shorter pending_timeout applies at once
            return dict(self.config)

    def arm_failure(self, name: str, status: str) -> None:
        if status not in ("CREATE_FAILED", "UPDATE_FAILED"):
            raise validation("status must be CREATE_FAILED or UPDATE_FAILED")
        with self.lock:
            self.armed.setdefault(name, set()).add(status)

    def force_status(self, name: str, status: str) -> None:
        """Set any status at once (e.g. UNAVAILABLE, MAINTENANCE), with its event."""
        if status not in STATUSES or status == "DELETED":
            raise validation(f"status must be one of {', '.join(STATUSES)} except DELETED")
        with self.lock:
            rec = self.get(name)
            rec.due = rec.action = None
            self._transition(rec, status)

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._outbox.put(None)
        self._thread.join(timeout=5)
        self._events_thread.join(timeout=15)

    # -- API -----------------------------------------------------------------
    def get(self, name: str) -> Record:
        rec = self.records.get(name)
        if rec is None:
            raise not_found(name)
        return rec

    def create(self, name: str, inp: dict) -> dict:
        check_name(name)
        validate_input(inp, create=True)
        with self.lock:
            if name in self.records:
                raise validation(f"Environment {name} already exists.")
            env = new_environment(name, inp, self.region, self.account)
            rec = Record(env)
            self.records[name] = rec
            self._publish(env, None)
            self._schedule(rec, "create_done", self.config["create_delay"])
            return env

    def update(self, name: str, inp: dict) -> dict:
        check_name(name)
        validate_input(inp, create=False)
        with self.lock:
            rec = self.get(name)
            if rec.status not in ("AVAILABLE", "UPDATE_FAILED"):
                raise validation(f"Environments with {rec.status} status cannot be updated.")
            new = apply_update(rec.env, inp, self.region, self.account)
            rec.before_update = copy.deepcopy(rec.env)
            now = time.time()
            new["LastUpdate"] = {"Status": "PENDING", "CreatedAt": now, "Source": "CUSTOMER"}
            if inp.get("WorkerReplacementStrategy"):
                new["LastUpdate"]["WorkerReplacementStrategy"] = inp["WorkerReplacementStrategy"]
            rec.env = new
            self._transition(rec, "UPDATING")
            self._schedule(rec, "snapshot_start", self.config["snapshot_delay"])
            return new

    def delete(self, name: str) -> None:
        check_name(name)
        with self.lock:
            rec = self.get(name)
            if rec.status in ("CREATING", "UPDATING", "DELETING", "CREATING_SNAPSHOT", "ROLLING_BACK"):
                raise validation(f"Environments with {rec.status} status cannot be deleted.")
            self._transition(rec, "DELETING")
            self._schedule(rec, "delete_done", self.config["delete_delay"])

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self.records)

    def tag(self, name: str, tags: dict) -> None:
        check_tags(tags)
        with self.lock:
            rec = self.get(name)
            if len({**rec.env["Tags"], **tags}) > 50:
                raise validation("An environment can have at most 50 tags")
            rec.env["Tags"].update(tags)

    def untag(self, name: str, keys: list[str]) -> None:
        with self.lock:
            rec = self.get(name)
            for k in keys:
                rec.env["Tags"].pop(k, None)

    # -- lifecycle -------------------------------------------------------------
    def _schedule(self, rec: Record, action: str, delay: float) -> None:
        rec.action, rec.due = action, time.time() + delay
        self._wake.set()

    def _transition(self, rec: Record, status: str) -> None:
        previous = rec.env["Status"]
        rec.env["Status"] = status
        if status == "PENDING":
            rec.pending_since = time.time()
        log.info("environment %s: %s -> %s", rec.env["Name"], previous, status)
        self._publish(rec.env, previous)

    def _fail_armed(self, name: str, status: str) -> bool:
        armed = self.armed.get(name, set())
        if status in armed:
            armed.discard(status)
            return True
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            now = time.time()
            due = []
            with self.lock:
                for rec in list(self.records.values()):
                    if rec.due is not None and rec.due <= now:
                        due.append((rec, rec.action))
                        rec.due = rec.action = None
            for rec, action in due:
                try:
                    self._step(rec, action)
                except Exception:  # keep the engine alive
                    log.exception("lifecycle step %s of %s failed", action, rec.env["Name"])
            with self.lock:
                pending = [r.due for r in self.records.values() if r.due is not None]
            timeout = max(0.0, min(pending) - time.time()) if pending else 1.0
            self._wake.wait(min(timeout, 1.0))

    def _step(self, rec: Record, action: str) -> None:
        name = rec.env["Name"]
        if action == "pending_check":
            ready = self._endpoints_ready(rec.env)  # EC2 call outside the lock
        with self.lock:
            if self.records.get(name) is not rec:
                return  # reset or deleted meanwhile
            if action == "create_done":
                if self._fail_armed(name, "CREATE_FAILED"):
                    self._create_failed(rec)
                elif rec.env["EndpointManagement"] == "CUSTOMER":
                    self._transition(rec, "PENDING")
                    self._schedule(rec, "pending_check", 0)
                else:
                    self._available(rec)
            elif action == "pending_check":
                if rec.status != "PENDING":
                    return
                waited = time.time() - (rec.pending_since or time.time())
                left = self.config["pending_timeout"] - waited
                if ready and self._fail_armed(name, "CREATE_FAILED"):
                    self._create_failed(rec)
                elif ready:
                    self._available(rec)
                elif left <= 0:
                    self._create_failed(rec, self.PENDING_EXPIRED)
                else:
                    self._schedule(rec, "pending_check", min(self.config["pending_poll"], left))
            elif action == "snapshot_start":
                self._transition(rec, "CREATING_SNAPSHOT")
                self._schedule(rec, "snapshot_done", self.config["snapshot_delay"])
            elif action == "snapshot_done":
                self._transition(rec, "UPDATING")
                self._schedule(rec, "update_done", self.config["update_delay"])
            elif action == "update_done":
                if self._fail_armed(name, "UPDATE_FAILED"):
                    self._transition(rec, "ROLLING_BACK")
                    self._schedule(rec, "rollback_done", self.config["rollback_delay"])
                else:
                    self._available(rec)
                    rec.before_update = None
            elif action == "rollback_done":
                restored = rec.before_update or rec.env
                restored["LastUpdate"] = dict(rec.env["LastUpdate"], Status="FAILED", Error={
                    "ErrorCode": "INCORRECT_CONFIGURATION",
                    "ErrorMessage": "Injected update failure (local MWAA bed).",
                })
                restored["Status"] = rec.env["Status"]
                rec.env = restored
                rec.before_update = None
                self._transition(rec, "UPDATE_FAILED")
            elif action == "delete_done":
                self._transition(rec, "DELETED")
                del self.records[name]
                self.deleted.append(copy.deepcopy(rec.env))

    def _available(self, rec: Record) -> None:
        rec.env["LastUpdate"] = dict(rec.env["LastUpdate"], Status="SUCCESS")
        self._transition(rec, "AVAILABLE")

    PENDING_EXPIRED = ("The required VPC endpoints were not created within the time allowed "
                       "for an environment in PENDING status. Delete the environment and create "
                       "a new one. (local MWAA bed)")

    def _create_failed(self, rec: Record, message: str | None = None) -> None:
        rec.env["LastUpdate"] = dict(rec.env["LastUpdate"], Status="FAILED", Error={
            "ErrorCode": "INCORRECT_CONFIGURATION",
            "ErrorMessage": message or (
                "You may need to check the execution role permissions policy for "
                "your environment, and that each of the VPC networking components "
                "required by the environment are configured to allow traffic. "
                "(injected by the local MWAA bed)"),
        })
        self._transition(rec, "CREATE_FAILED")

    # -- moto ------------------------------------------------------------------
    def _client(self, service: str, account: str | None = None):
        """A moto client acting in ``account`` (default: this store's)."""
        account = account or self.account
        with self._clients_lock:
            if (service, account) not in self._clients:
                import boto3
                from botocore.config import Config
                client = boto3.client(
                    service, endpoint_url=self.moto_url, region_name=self.region,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=Config(connect_timeout=2, read_timeout=10,
                                  retries={"max_attempts": 2, "mode": "standard"}))
                client.meta.events.register(
                    "before-sign.*.*",
                    lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
                self._clients[(service, account)] = client
            return self._clients[(service, account)]

    def _endpoints_ready(self, env: dict) -> bool:
        if not self.moto_url:
            return False
        needed = [env["DatabaseVpcEndpointService"]]
        # PUBLIC_AND_PRIVATE: the workers reach the webserver through a private endpoint too
        # (botocore's WebserverAccessMode documentation).
        if env["WebserverAccessMode"] in ("PRIVATE_ONLY", "PUBLIC_AND_PRIVATE"):
            needed.append(env["WebserverVpcEndpointService"])
        try:
            for service in needed:
                found = [e for account in self.accounts()
                         for e in self._client("ec2", account).describe_vpc_endpoints(
                             Filters=[{"Name": "service-name", "Values": [service]}]
                         )["VpcEndpoints"]]
                if not any(e.get("VpcEndpointType", "Interface") == "Interface"
                           and str(e.get("State", "")).lower() not in BAD_ENDPOINT_STATES
                           for e in found):
                    return False
            return True
        except Exception as e:  # moto down: stay PENDING
            log.warning("describe_vpc_endpoints failed: %s", e)
            return False

    def _publish(self, env: dict, previous: str | None) -> None:
        """Queue the status-change event for moto's default bus (best effort, in order)."""
        detail = event_detail(env, previous, bool(self.config.get("rich_events", False)))
        entry = {
            "Time": datetime.now(timezone.utc),
            "Source": "aws.airflow",
            "DetailType": "MWAA Environment Status Change",
            "Resources": [env["Arn"]],
            "Detail": json.dumps(detail),
            "EventBusName": "default",
        }
        record = {"detail": detail, "resources": entry["Resources"], "sent": None,
                  "order": next(_EVENT_ORDER)}
        self.events.append(record)
        if self.moto_url:
            self._outbox.put((entry, record))
        else:
            record["sent"] = False

    def _publisher(self) -> None:
        """Put queued events one by one, so they reach the bus in transition order."""
        while True:
            item = self._outbox.get()
            if item is None:
                return
            entry, record = item
            try:
                out = self._client("events").put_events(Entries=[entry])
                record["sent"] = out.get("FailedEntryCount", 0) == 0
            except Exception as e:
                record["sent"] = False
                log.warning("PutEvents failed: %s", e)

    def flush_events(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was put (or failed)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if all(r["sent"] is not None for r in self.events):
                    return True
            time.sleep(0.02)
        return False
