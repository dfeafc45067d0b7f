"""The local MWAA control plane against botocore's MWAA model (boto3/botocore 1.44.5).

Every answer the control plane gives here is read raw (the JSON body, before botocore's
parser drops what it does not know) and checked against the operation's output shape or,
for an error, the error's shape: every member exists in the model, types match, enums hold,
required members are present, string lengths and patterns (as whole matches) and list / map
sizes hold.  Every refusal is probed from the input shapes: for each constraint of each
operation's input (required members, enums, lengths, min/max, patterns, list and map sizes) a
request that breaks exactly that constraint, sent with botocore's own client-side validation
turned off, must be answered 400 ValidationException naming the constraint, and the valid
request it was derived from must be accepted.

Where the model and AWS's observed answers disagree, the answer follows AWS and the
difference is a named waiver below (each must be used, so none goes stale).

Run: .bed/venv/bin/python -m pytest -q -p no:cacheprovider --rootdir tests \
         tests/bed/test_mwaa_conformance.py
"""

from __future__ import annotations

import copy
import json
import time

import boto3
import botocore.session
import pytest
import regex
from botocore.config import Config
from botocore.exceptions import ClientError

# The bed's fixtures and helpers (moto, a fake Airflow, the control plane, reset per test).
from test_mwaa_local import (ACCOUNT, CREDS, REGION, admin, airflow, ec2, env_input,  # noqa: F401
                             fresh, moto_url, plane, vpc_with_subnets, wait_gone, wait_status)

MODEL = botocore.session.get_session().get_service_model("mwaa")

# Model vs AWS: (shape name, member path suffix or None, constraint) -> why the answer keeps
# AWS's observed behaviour.  A GetEnvironment answer published from a real environment
# (github.com/pfeilbr/amazon-managed-workflows-for-apache-airflow-playground, README,
# "Example Environment Attributes") has "WebserverUrl": "<uuid>.c5.eu-west-1.airflow.amazonaws.com"
# and "Tags": {}.
WAIVERS = {
    ("WebserverUrl", "pattern"): "the model's own documentation calls it the web server "
                                 "'host name'; AWS answers a bare host name, no https://",
    ("TagMap", "min"): "AWS answers \"Tags\": {} for an environment without tags",
}
USED_WAIVERS: set = set()


# ---------------------------------------------------------------------------
# Output checks
# ---------------------------------------------------------------------------
def _pattern_ok(pattern: str, value: str) -> bool:
    return regex.fullmatch(pattern, value) is not None


def _waived(shape, constraint: str) -> bool:
    key = (shape.name, constraint)
    if key in WAIVERS:
        USED_WAIVERS.add(key)
        return True
    return False


def check_output(shape, value, path: str, problems: list, seen: set) -> None:
    """Append every way ``value`` (raw JSON) breaks ``shape``; record the member paths seen."""
    seen.add(path)
    meta, kind = shape.metadata, shape.type_name
    if meta.get("document"):
        return
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: {value!r} is not a structure")
            return
        for key in value:
            if key not in shape.members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
        for key in meta.get("required", []):
            if value.get(key) is None:
                problems.append(f"{path}.{key}: required by {shape.name}, missing")
        for key, member in shape.members.items():
            if value.get(key) is not None:
                check_output(member, value[key], f"{path}.{key}", problems, seen)
        return
    if kind in ("list", "map"):
        if not isinstance(value, list if kind == "list" else dict):
            problems.append(f"{path}: {value!r} is not a {kind}")
            return
        if "min" in meta and len(value) < meta["min"] and not _waived(shape, "min"):
            problems.append(f"{path}: {len(value)} entries < min {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} entries > max {meta['max']}")
        if kind == "list":
            for item in value:
                check_output(shape.member, item, f"{path}[]", problems, seen)
        else:
            for key, item in value.items():
                check_output(shape.key, key, f"{path}{{key}}", problems, seen)
                check_output(shape.value, item, f"{path}{{}}", problems, seen)
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
            return
        if meta.get("enum") and value not in meta["enum"]:
            problems.append(f"{path}: {value!r} not in enum {meta['enum']}")
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: {value!r} shorter than {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: {len(value)} characters > max {meta['max']}")
        if meta.get("pattern") and not _pattern_ok(meta["pattern"], value) \
                and not _waived(shape, "pattern"):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        return
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an integer")
            return
        if "min" in meta and value < meta["min"]:
            problems.append(f"{path}: {value} < min {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{path}: {value} > max {meta['max']}")
        return
    if kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a number")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
        return
    if kind == "timestamp":  # restJson body: epoch seconds
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an epoch timestamp")
        return
    problems.append(f"{path}: no check for type {kind}")


class Recorder:
    """Every raw answer of a boto3 client, checked against the model as it arrives."""

    def __init__(self):
        self.answers: list[dict] = []
        self.problems: list[str] = []
        self.seen: dict[str, set] = {}   # output shape name -> member paths seen

    def hook(self, http_response, parsed, model, **_):
        raw = http_response.content
        body = json.loads(raw) if raw.strip() else {}
        status = http_response.status_code
        self.answers.append({"operation": model.name, "status": status, "body": body,
                             "error": http_response.headers.get("x-amzn-errortype")})
        if status == 200:
            shape = model.output_shape
            seen = self.seen.setdefault(shape.name, set())
            check_output(shape, body, model.name, self.problems, seen)
            return
        code = (http_response.headers.get("x-amzn-errortype") or "").split(":")[0]
        if code == "ThrottlingException":  # not in MWAA's model; every SDK retries it
            return
        try:
            shape = MODEL.shape_for(code)
        except Exception:
            self.problems.append(f"{model.name}: error {code!r} is not a shape of the model")
            return
        if shape.metadata.get("error", {}).get("httpStatusCode") != status:
            self.problems.append(f"{model.name}: {code} answered {status}, the model says "
                                 f"{shape.metadata.get('error')}")
        check_output(shape, body, f"{model.name}!{code}", self.problems, set())


def client(plane, recorder: Recorder, validate: bool):
    mwaa = boto3.client("mwaa", endpoint_url=plane.url,
                        config=Config(inject_host_prefix=False, parameter_validation=validate,
                                      retries={"total_max_attempts": 1}), **CREDS)
    mwaa.meta.events.register("after-call.mwaa", recorder.hook)
    return mwaa


@pytest.fixture
def recorder():
    rec = Recorder()
    yield rec
    assert rec.problems == [], "answers that break the model:\n" + "\n".join(rec.problems)


@pytest.fixture
def mwaa(plane, recorder):
    return client(plane, recorder, validate=True)


@pytest.fixture
def raw(plane, recorder):
    """A client without botocore's validation: what a careless caller can send."""
    return client(plane, recorder, validate=False)


def error(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r


# ---------------------------------------------------------------------------
# Valid requests that use every input member, and refusals derived from them
# ---------------------------------------------------------------------------
IDC = {"StartUrl": "https://my-portal.awsapps.com/start", "IdentityStoreId": "d-1234567890"}
TEAMS = {"team-a": {"SourceBucketArn": "arn:aws:s3:::team-a-bucket", "DagS3Path": "dags/team-a"},
         "team-b": {"SourceBucketArn": "arn:aws:s3:::mwaa-bucket", "DagS3Path": "teams/b/"}}
ALL_LOGS = {m: {"Enabled": True, "LogLevel": "INFO"}
            for m in ("DagProcessingLogs", "SchedulerLogs", "WebserverLogs", "WorkerLogs",
                      "TaskLogs")}


def full_create(name: str) -> dict:
    """A CreateEnvironment input with every member of the model set."""
    return env_input(
        name, PluginsS3Path="plugins.zip", PluginsS3ObjectVersion="v1",
        RequirementsS3Path="requirements.txt", RequirementsS3ObjectVersion="v2",
        StartupScriptS3Path="startup.sh", StartupScriptS3ObjectVersion="v3",
        AirflowConfigurationOptions={"core.default_timezone": "utc"},
        EnvironmentClass="mw1.medium", MaxWorkers=5, MinWorkers=2,
        KmsKey="arn:aws:kms:us-east-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab",
        AirflowVersion="3.0.6", LoggingConfiguration=copy.deepcopy(ALL_LOGS),
        WeeklyMaintenanceWindowStart="TUE:03:30", Tags={"team": "data", "Kostenstelle": "ü-1"},
        WebserverAccessMode="PUBLIC_ONLY", Schedulers=2, EndpointManagement="SERVICE",
        MinWebservers=2, MaxWebservers=3, IdentityCenterConfiguration=dict(IDC),
        Teams=copy.deepcopy(TEAMS))


def full_update(name: str) -> dict:
    """An UpdateEnvironment input with every member of the model set."""
    return {
        "Name": name, "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mwaa-exec-2",
        "AirflowConfigurationOptions": {"core.parallelism": "64"}, "AirflowVersion": "3.0.6",
        "DagS3Path": "dags2", "EnvironmentClass": "mw1.large",
        "LoggingConfiguration": {"TaskLogs": {"Enabled": True, "LogLevel": "DEBUG"}},
        "MaxWorkers": 6, "MinWorkers": 2, "MaxWebservers": 4, "MinWebservers": 2,
        "WorkerReplacementStrategy": "GRACEFUL",
        "NetworkConfiguration": {"SecurityGroupIds": ["sg-0123456789", "sg-abcdef"]},
        "PluginsS3Path": "plugins2.zip", "PluginsS3ObjectVersion": "v4",
        "RequirementsS3Path": "req2.txt", "RequirementsS3ObjectVersion": "v5",
        "Schedulers": 3, "SourceBucketArn": "arn:aws:s3:::mwaa-bucket",
        "StartupScriptS3Path": "startup2.sh", "StartupScriptS3ObjectVersion": "v6",
        "WebserverAccessMode": "PRIVATE_ONLY", "WeeklyMaintenanceWindowStart": "SAT:23:00",
        "IdentityCenterConfiguration": {"StartUrl": "https://other.awsapps.com/start",
                                        "IdentityStoreId": "0123abcd-0123-4567-89ab-0123456789ab"},
        "Teams": {"AddOrUpdate": {"team-c": {"SourceBucketArn": "arn:aws:s3:::team-c",
                                             "DagS3Path": "dags"}},
                  "Remove": ["team-b"]},
    }


# Strings tried, in order, to break a pattern while keeping the length.
BREAKERS = ["!", "#bad value#", "é", " ", "\u00a0\u2028", "UPPER", "-", "1"]


def _breaks_pattern(meta):
    pattern = meta.get("pattern")
    if not pattern:
        return None
    lo, hi = meta.get("min", 0), meta.get("max", 10 ** 6)
    for candidate in BREAKERS:
        if lo <= len(candidate) <= hi and not _pattern_ok(pattern, candidate):
            return candidate
    return None


def _filler(shape) -> str:
    """One character that a string of ``shape`` may repeat (its pattern allowing)."""
    pattern = shape.metadata.get("pattern")
    for c in "abcdefghijklmnopqrstuvwxyz0":
        if not pattern or _pattern_ok(pattern, c * max(shape.metadata.get("min", 1), 1)):
            return c
    return "a"


def mutations(shape, value, path: tuple, uri_members: set):
    """(description, path, new value or DELETE, phrase the refusal must carry) per constraint."""
    meta, kind = shape.metadata, shape.type_name
    if meta.get("document"):
        return
    if kind == "structure":
        for req in meta.get("required", []):
            if (path + (req,))[-1] in uri_members and len(path) == 0:
                continue  # a URI label cannot be left out: the request has nowhere to go
            yield f"{'.'.join(path + (req,))} missing", path + (req,), DELETE, "must not be null"
        for key, member in shape.members.items():
            if isinstance(value, dict) and key in value:
                yield from mutations(member, value[key], path + (key,), uri_members)
        return
    where = ".".join(str(p) for p in path)
    if kind == "string":
        if meta.get("enum"):
            yield f"{where} outside its enum", path, "NOT_A_MEMBER", "enum value set"
        if meta.get("min", 0) >= 1 and not (len(path) == 1 and path[0] in uri_members):
            yield f"{where} shorter than {meta['min']}", path, value[:meta["min"] - 1], \
                f"length greater than or equal to {meta['min']}"
        if "max" in meta:
            long = (value + _filler(shape) * (meta["max"] + 1))[:meta["max"] + 1]
            yield f"{where} longer than {meta['max']}", path, long, \
                f"length less than or equal to {meta['max']}"
        bad = _breaks_pattern(meta)
        if bad is not None:
            yield f"{where} breaking its pattern", path, bad, "regular expression pattern"
        return
    if kind in ("integer", "long"):
        if "min" in meta:
            yield f"{where} below {meta['min']}", path, meta["min"] - 1, \
                f"value greater than or equal to {meta['min']}"
        if "max" in meta:
            yield f"{where} above {meta['max']}", path, meta["max"] + 1, \
                f"value less than or equal to {meta['max']}"
        return
    if kind == "list":
        item = value[0]
        if meta.get("min", 0) >= 1:
            yield f"{where} with fewer than {meta['min']} items", path, \
                [item] * (meta["min"] - 1), f"length greater than or equal to {meta['min']}"
        if "max" in meta:
            many = [f"{item}{i}" if isinstance(item, str) else item
                    for i in range(meta["max"] + 1)]
            yield f"{where} with more than {meta['max']} items", path, many, \
                f"length less than or equal to {meta['max']}"
        for m in mutations(shape.member, item, path + (0,), uri_members):
            yield m
        return
    if kind == "map":
        key0, item0 = next(iter(value.items()))
        if meta.get("min", 0) >= 1:
            yield f"{where} empty", path, {}, f"length greater than or equal to {meta['min']}"
        if "max" in meta:
            many = {f"{key0}{i}": item0 for i in range(meta["max"] + 1)}
            yield f"{where} with more than {meta['max']} entries", path, many, \
                f"length less than or equal to {meta['max']}"
        kmeta = shape.key.metadata
        if "max" in kmeta:
            yield f"{where} key longer than {kmeta['max']}", path, \
                {key0 + _filler(shape.key) * kmeta["max"]: item0}, \
                f"length less than or equal to {kmeta['max']}"
        if kmeta.get("min", 0) > 1:
            yield f"{where} key shorter than {kmeta['min']}", path, \
                {key0[:kmeta["min"] - 1]: item0}, f"length greater than or equal to {kmeta['min']}"
        bad = _breaks_pattern(kmeta)
        if bad is not None:
            yield f"{where} key breaking its pattern", path, {bad: item0}, \
                "regular expression pattern"
        for m in mutations(shape.value, item0, path + (key0,), uri_members):
            yield m


DELETE = object()


def mutate(params: dict, path: tuple, new):
    out = copy.deepcopy(params)
    node = out
    for step in path[:-1]:
        node = node[step]
    if new is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


def probes(operation: str, params: dict):
    op = MODEL.operation_model(operation)
    uri = {k for k, m in op.input_shape.members.items()
           if m.serialization.get("location") == "uri"}
    return list(mutations(op.input_shape, params, (), uri))


COUNTS: dict[str, int] = {}


def assert_refusals(call, operation: str, params: dict) -> int:
    """Every constraint broken once: ValidationException 400 naming it.  Returns the count."""
    found = probes(operation, params)
    wrong = []
    for i, (what, path, new, phrase) in enumerate(found):
        request = mutate(params, path, new)
        if operation == "CreateEnvironment" and path[0] != "Name":
            request["Name"] = f"probe-{i}"  # one accepted probe must not hide the next ones
        try:
            call(**request)
        except ClientError as e:
            r = e.response
            code, status = r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]
            if (code, status) != ("ValidationException", 400) or phrase not in r["Error"]["Message"]:
                wrong.append(f"{what}: {code} {status} {r['Error'].get('Message')!r}")
            continue
        wrong.append(f"{what}: accepted")
    assert wrong == [], f"{operation}: refusals that differ from the model:\n" + "\n".join(wrong)
    COUNTS[operation] = COUNTS.get(operation, 0) + len(found)
    return len(found)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
def test_every_environment_member_is_stored_and_returned_as_the_model_says(plane, mwaa, recorder):
    inp = full_create("every-member")
    assert mwaa.create_environment(**inp)["Arn"].endswith(":environment/every-member")
    assert wait_status(mwaa, "every-member", "AVAILABLE") == ["CREATING", "AVAILABLE"]
    env = mwaa.get_environment(Name="every-member")["Environment"]
    # Whatever CreateEnvironment takes and Environment shows comes back as it was given.
    env_members = set(MODEL.shape_for("Environment").members)
    for key, value in inp.items():
        if key in env_members and key != "LoggingConfiguration":
            assert env[key] == value, key
    assert env["IdentityCenterConfiguration"] == IDC and env["Teams"] == TEAMS
    mwaa.update_environment(**full_update("every-member"))
    assert wait_status(mwaa, "every-member", "AVAILABLE") == \
        ["UPDATING", "CREATING_SNAPSHOT", "UPDATING", "AVAILABLE"]
    env = mwaa.get_environment(Name="every-member")["Environment"]
    assert set(env["Teams"]) == {"team-a", "team-c"}
    assert env["IdentityCenterConfiguration"]["IdentityStoreId"].startswith("0123abcd")
    assert env["LastUpdate"]["WorkerReplacementStrategy"] == "GRACEFUL"
    assert env["NetworkConfiguration"]["SecurityGroupIds"] == ["sg-0123456789", "sg-abcdef"]
    # A failed update: LastUpdate.Error, then every member of Environment has been answered.
    admin(plane.url, "fail", {"name": "every-member", "status": "UPDATE_FAILED"})
    mwaa.update_environment(Name="every-member", MaxWorkers=7)
    wait_status(mwaa, "every-member", "UPDATE_FAILED")
    mwaa.get_environment(Name="every-member")
    seen = recorder.seen["GetEnvironmentOutput"]
    unseen = [p for p in _paths(MODEL.operation_model("GetEnvironment").output_shape,
                                "GetEnvironment") if p not in seen]
    assert unseen == [], f"members of the model never answered: {unseen}"


def _paths(shape, path, depth=0):
    """Every member path of an output shape, as check_output records them."""
    out = [path]
    if depth > 6:
        return out
    if shape.type_name == "structure":
        for key, member in shape.members.items():
            out += _paths(member, f"{path}.{key}", depth + 1)
    elif shape.type_name == "list":
        out += _paths(shape.member, f"{path}[]", depth + 1)
    elif shape.type_name == "map":
        out += _paths(shape.key, f"{path}{{key}}", depth + 1)
        out += _paths(shape.value, f"{path}{{}}", depth + 1)
    return out


def test_create_and_update_refuse_exactly_what_the_model_refuses(mwaa, raw):
    # The valid requests are accepted ...
    mwaa.create_environment(**full_create("base-env"))
    wait_status(mwaa, "base-env", "AVAILABLE")
    # ... and every constraint broken once is refused before anything happens.
    n = assert_refusals(raw.create_environment, "CreateEnvironment", full_create("probe-env"))
    assert error(mwaa.get_environment, Name="probe-env")[0] == "ResourceNotFoundException"
    m = assert_refusals(raw.update_environment, "UpdateEnvironment", full_update("base-env"))
    assert mwaa.get_environment(Name="base-env")["Environment"]["Status"] == "AVAILABLE"
    mwaa.update_environment(**full_update("base-env"))
    wait_status(mwaa, "base-env", "AVAILABLE")
    assert n >= 60 and m >= 40, (n, m)
    # Boundaries the model allows are accepted.
    mwaa.create_environment(**env_input("n" * 80, Tags={f"k{i}": "v" for i in range(50)}))
    mwaa.tag_resource(ResourceArn=f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/base-env",
                      Tags={"Ünïcödé key": "välue 1", "a" * 128: "b" * 256})


def test_every_other_operation_refuses_exactly_what_the_model_refuses(mwaa, raw):
    mwaa.create_environment(**env_input("ops-env"))
    wait_status(mwaa, "ops-env", "AVAILABLE")
    arn = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/ops-env"
    cases = [
        (raw.get_environment, "GetEnvironment", {"Name": "ops-env"}),
        (raw.create_cli_token, "CreateCliToken", {"Name": "ops-env"}),
        (raw.create_web_login_token, "CreateWebLoginToken", {"Name": "ops-env"}),
        (raw.list_environments, "ListEnvironments", {"MaxResults": 5, "NextToken": "0"}),
        (raw.invoke_rest_api, "InvokeRestApi",
         {"Name": "ops-env", "Path": "/dags", "Method": "GET", "QueryParameters": {"limit": 1},
          "Body": {}}),
        (raw.tag_resource, "TagResource", {"ResourceArn": arn, "Tags": {"a": "1"}}),
        (raw.list_tags_for_resource, "ListTagsForResource", {"ResourceArn": arn}),
        (raw.untag_resource, "UntagResource", {"ResourceArn": arn, "tagKeys": ["a"]}),
        (raw.delete_environment, "DeleteEnvironment", {"Name": "ops-env"}),
    ]
    for call, operation, params in cases:
        call(**params)  # the valid request is accepted
        if operation == "DeleteEnvironment":
            wait_gone(mwaa, "ops-env")
            mwaa.create_environment(**env_input("ops-env"))
            wait_status(mwaa, "ops-env", "AVAILABLE")
        assert assert_refusals(call, operation, params) >= 2, operation
    # A name the pattern refuses, in the URI, for every operation that takes one.
    for call in (raw.get_environment, raw.delete_environment, raw.create_cli_token,
                 raw.create_web_login_token):
        code, status, r = error(call, Name="1-starts-with-a-digit")
        assert (code, status) == ("ValidationException", 400)
        assert "regular expression pattern" in r["Error"]["Message"]
    assert error(raw.list_tags_for_resource, ResourceArn="arn:aws:s3:::a-bucket")[:2] == \
        ("ValidationException", 400)


def test_every_answer_and_error_of_the_lifecycle_follows_the_model(plane, mwaa, raw, ec2,
                                                                   recorder):
    admin(plane.url, "config", {"pending_timeout": 1.0})
    vpc, subnets, sg = vpc_with_subnets(ec2)
    mwaa.create_environment(**env_input(
        "life-cust", EndpointManagement="CUSTOMER", WebserverAccessMode="PUBLIC_ONLY",
        NetworkConfiguration={"SubnetIds": subnets, "SecurityGroupIds": [sg]}))
    mwaa.create_environment(**env_input("life-env", Tags={"a": "1"}))
    statuses = set()
    for name, last in (("life-cust", "CREATE_FAILED"), ("life-env", "AVAILABLE")):
        statuses |= set(wait_status(mwaa, name, last))
    mwaa.update_environment(Name="life-env", MaxWorkers=3)
    statuses |= set(wait_status(mwaa, "life-env", "AVAILABLE"))
    admin(plane.url, "fail", {"name": "life-env", "status": "UPDATE_FAILED"})
    mwaa.update_environment(Name="life-env", MaxWorkers=4)
    statuses |= set(wait_status(mwaa, "life-env", "UPDATE_FAILED"))
    for status in ("UNAVAILABLE", "MAINTENANCE", "AVAILABLE"):
        admin(plane.url, "status", {"name": "life-env", "status": status})
        statuses.add(mwaa.get_environment(Name="life-env")["Environment"]["Status"])
    mwaa.list_environments(MaxResults=1)
    mwaa.create_cli_token(Name="life-env")
    mwaa.create_web_login_token(Name="life-env")
    mwaa.invoke_rest_api(Name="life-env", Path="/dags", Method="GET")
    error(mwaa.invoke_rest_api, Name="life-env", Path="/dags/missing/dagRuns", Method="POST",
          Body={})
    error(mwaa.invoke_rest_api, Name="life-env", Path="/boom", Method="GET")
    arn = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/life-env"
    mwaa.tag_resource(ResourceArn=arn, Tags={"b": "2"})
    mwaa.list_tags_for_resource(ResourceArn=arn)
    mwaa.untag_resource(ResourceArn=arn, tagKeys=["a", "b"])
    assert mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}  # as AWS answers
    error(mwaa.get_environment, Name="no-such-env")
    error(raw.create_environment, **env_input("x", MaxWorkers=0))
    mwaa.delete_environment(Name="life-env")
    statuses.add(mwaa.get_environment(Name="life-env")["Environment"]["Status"])
    wait_gone(mwaa, "life-env")
    assert statuses >= {"CREATING", "PENDING", "CREATE_FAILED", "AVAILABLE", "UPDATING",
                        "CREATING_SNAPSHOT", "ROLLING_BACK", "UPDATE_FAILED", "UNAVAILABLE",
                        "MAINTENANCE", "DELETING"}
    answered = {(a["operation"], a["error"]) for a in recorder.answers}
    assert {("InvokeRestApi", "RestApiClientException"),
            ("InvokeRestApi", "RestApiServerException"),
            ("GetEnvironment", "ResourceNotFoundException"),
            ("CreateEnvironment", "ValidationException")} <= answered
    assert {op for op, _ in answered} >= set(MODEL.operation_names) - {"PublishMetrics"}


def test_pending_expires_to_create_failed_after_the_configured_time(plane, mwaa, ec2):
    assert admin(plane.url, "config")["pending_timeout"] == 72 * 3600  # MWAA's 72 hours
    admin(plane.url, "config", {"pending_timeout": 0.8})
    vpc, subnets, sg = vpc_with_subnets(ec2)
    started = time.time()
    mwaa.create_environment(**env_input(
        "expiring", EndpointManagement="CUSTOMER", WebserverAccessMode="PUBLIC_ONLY",
        NetworkConfiguration={"SubnetIds": subnets, "SecurityGroupIds": [sg]}))
    assert wait_status(mwaa, "expiring", "CREATE_FAILED") == \
        ["CREATING", "PENDING", "CREATE_FAILED"]
    assert time.time() - started >= 0.8 + 0.3  # create_delay, then the whole timeout
    env = mwaa.get_environment(Name="expiring")["Environment"]
    assert env["LastUpdate"]["Status"] == "FAILED"
    assert "VPC endpoints" in env["LastUpdate"]["Error"]["ErrorMessage"]
    # reset restores the default
    admin(plane.url, "reset", {})
    assert admin(plane.url, "config")["pending_timeout"] == 72 * 3600


def test_access_denied_can_be_injected_for_any_operation(plane, mwaa, recorder):
    mwaa.create_environment(**env_input("denied"))
    wait_status(mwaa, "denied", "AVAILABLE")
    admin(plane.url, "faults", [{"operation": "GetEnvironment", "kind": "access_denied"},
                                {"operation": "InvokeRestApi", "kind": "access_denied",
                                 "path": "/dags/ok/dagRuns"}])
    code, status, r = error(mwaa.get_environment, Name="denied")
    assert (code, status) == ("AccessDeniedException", 403)
    assert "not authorized to perform: airflow:GetEnvironment" in r["Error"]["Message"]
    mwaa.invoke_rest_api(Name="denied", Path="/dags", Method="GET")  # another path passes
    code, status, r = error(mwaa.invoke_rest_api, Name="denied", Path="/dags/ok/dagRuns",
                            Method="POST", Body={})
    assert (code, status) == ("AccessDeniedException", 403)
    assert ":role/denied/Admin" in r["Error"]["Message"]
    admin(plane.url, "faults", {"operation": "*", "kind": "access_denied", "name": "denied",
                                "principal": "arn:aws:sts::123456789012:assumed-role/r/s"})
    code, status, r = error(mwaa.update_environment, Name="denied", MaxWorkers=2)
    assert (code, status) == ("AccessDeniedException", 403)
    assert r["Error"]["Message"].startswith("User: arn:aws:sts::123456789012:assumed-role/r/s ")
    assert mwaa.get_environment(Name="denied")["Environment"]["MaxWorkers"] == 10  # no update
    bodies = [a["body"] for a in recorder.answers if a["error"] == "AccessDeniedException"]
    assert len(bodies) == 3 and all(set(b) == {"Message"} for b in bodies)
    with pytest.raises(Exception):
        admin(plane.url, "faults", {"kind": "access_denied", "after": True})


def test_invoke_rest_api_takes_any_path_the_model_allows(mwaa, raw, airflow):
    mwaa.create_environment(**env_input("paths", AirflowVersion="3.0.6"))
    wait_status(mwaa, "paths", "AVAILABLE")
    for path, sent in (
            ("/dags/dåg_ü/dagRuns", "/api/v2/dags/d%C3%A5g_%C3%BC/dagRuns"),
            ("/dags/a b/dagRuns", "/api/v2/dags/a%20b/dagRuns"),
            ("/dags/日本/dagRuns/x?y#z", "/api/v2/dags/%E6%97%A5%E6%9C%AC/dagRuns/x%3Fy%23z"),
            ("/dags/already%20encoded/100%", "/api/v2/dags/already%20encoded/100%25"),
            ("/" + "ü" * 63, "/api/v2/" + "%C3%BC" * 63)):
        out = mwaa.invoke_rest_api(Name="paths", Path=path, Method="GET")
        assert out["RestApiStatusCode"] == 200, path
        assert airflow.requests[-1]["path"] == sent, path
    assert error(raw.invoke_rest_api, Name="paths", Path="/" + "ü" * 64, Method="GET")[:2] == \
        ("ValidationException", 400)


def test_sparse_events_carry_only_what_aws_documents(plane, mwaa, moto_url):
    events = boto3.client("events", endpoint_url=moto_url, **CREDS)
    sqs = boto3.client("sqs", endpoint_url=moto_url, **CREDS)
    queue = sqs.create_queue(QueueName=f"sparse-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule = f"sparse-{time.time_ns()}"
    events.put_rule(Name=rule, EventPattern=json.dumps(
        {"source": ["aws.airflow"], "detail-type": ["MWAA Environment Status Change"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    try:
        assert admin(plane.url, "config")["rich_events"] is False  # the default
        mwaa.create_environment(**env_input("sparse"))
        wait_status(mwaa, "sparse", "AVAILABLE")
        got, deadline = [], time.time() + 15
        while len(got) < 2 and time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1).get("Messages", []):
                event = json.loads(m["Body"])
                if event["resources"] == [f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/sparse"]:
                    got.append(event)
        assert len(got) == 2
        for event in got:
            # AWS's envelope (moto leaves "account" out), the documented source and
            # detail-type, and no detail field.
            assert set(event) - {"account"} == {"version", "id", "detail-type", "source",
                                                "time", "region", "resources", "detail"}
            assert (event["source"], event["detail-type"]) == \
                ("aws.airflow", "MWAA Environment Status Change")
            assert event["resources"] == [f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/sparse"]
            assert event["detail"] == {}
        assert [e["detail"] for e in admin(plane.url, "events")] == [{}, {}]
        # The rich shape only where a test asks for it, and until the next reset.
        admin(plane.url, "config", {"rich_events": True})
        mwaa.delete_environment(Name="sparse")
        assert admin(plane.url, "events")[-1]["detail"]["name"] == "sparse"
        admin(plane.url, "reset", {})
        assert admin(plane.url, "config")["rich_events"] is False
    finally:
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)


def test_every_waiver_is_still_needed():
    """Runs last in this file: a waiver no answer needed any more must go."""
    if not USED_WAIVERS:
        pytest.skip("needs the other tests of this file to run first")
    assert USED_WAIVERS == set(WAIVERS), f"unused waivers: {set(WAIVERS) - USED_WAIVERS}"
    print("refusals probed per operation:", json.dumps(COUNTS, sort_keys=True))
