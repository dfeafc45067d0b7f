"""IAM enforced in moto for the calls the functions make, as AWS would (see README.md
"How the bed holds us to AWS's rules").

A test registers a role of the template (``POST /moto-api/bed-iam/roles``, body ``{"role":
logical id, "parameters": {..}, "resources": {logical id: name or ARN}, "without": [Sid],
"role_arn": ARN}``) and gets an access key naming it; clients signing with that key are held
to the role's statements. ``role_arn`` (optional) is the IAM role ARN a state machine is
created with: its executions' integration calls then sign with that key (iam_states.py).
moto's own IAM mode (``INITIAL_NO_AUTH_ACTION_COUNT``) is not used: it checks actions only
("TODO add support for the Resource and Condition parts of IAM policies",
moto/iam/access_control.py, 5.2.5). A session moto's AssumeRole hands out is registered too
(``register_session``, from moto_accounts.py), held to its role's statements as moto holds
them. Requests signed with any other key are not checked.

Each request becomes checks (action, resource ARN, condition keys) by ``checks()``; a refusal
is the service's own: S3 ``AccessDenied`` 403 (XML), SNS ``AuthorizationError`` 403, EC2
``UnauthorizedOperation`` 403, STS ``AccessDenied`` 403, SQS ``AccessDenied`` 403
(``com.amazon.coral.service#AccessDeniedException`` in JSON), EventBridge, Step Functions, KMS
and Scheduler ``AccessDeniedException`` (400; Scheduler 403). The KMS calls S3 (SSE-KMS, below)
and SQS and SNS (a queue or topic encrypted with a customer managed key: iam_sse.py) make as the
caller are checks of the same request; SQS and SNS refuse those with their own KMS errors.
"""
from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import urllib.parse

import iam_policy
import iam_roles
import iam_sse

log = logging.getLogger("bed.iam")

KEY_PREFIX = "BEDIAM"
_roles: dict[str, dict] = {}  # access key -> {"role", "arn", "statements"}
_by_role_arn: dict[str, str] = {}  # a state machine's roleArn -> access key
_counter = itertools.count(1)
_lock = threading.Lock()
REFUSED: list[dict] = []


def register(body: dict, account: str) -> dict:
    role = body["role"]
    found = iam_roles.statements(role, body.get("parameters"), body.get("resources"),
                                 body.get("without"))
    return register_statements(role, found, account, body.get("name"), body.get("session"),
                               body.get("role_arn"))


def register_statements(role: str, statements: list[dict], account: str, name: str | None = None,
                        session: str | None = None, role_arn: str | None = None) -> dict:
    """A key held to ``statements`` as the role named ``role`` (a template's role, or one the
    bed holds to a documented policy: iam_execution.py). ``name`` and ``session``: the role's
    deployed name and Lambda's session name (the function's name), so that the ARN is the one
    AWS shows and a trust policy naming the role matches it; ``role_arn``: the IAM role ARN a
    state machine is created with (its integration calls then sign with this key)."""
    key = f"{KEY_PREFIX}{next(_counter):06d}{re.sub(r'[^A-Za-z0-9]', '', role)}"
    entry = {"role": role, "account": account, "statements": statements,
             "arn": f"arn:aws:sts::{account}:assumed-role/{name or role}/{session or 'bed'}"}
    with _lock:
        _roles[key] = entry
        if role_arn:
            _by_role_arn[role_arn] = key
    return {"access_key": key, **entry}


def key_of_role_arn(role_arn: str | None) -> str | None:
    """The access key registered for an IAM role ARN (``role_arn``), if any."""
    with _lock:
        return _by_role_arn.get(role_arn or "")


def register_session(access_key: str, role_arn: str, session_arn: str,
                     statements: list[dict]) -> dict:
    """Holds a session AssumeRole handed out to its role's statements, as moto holds them
    (moto_accounts.py reads them when the trust policy let the caller in)."""
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
    entry = {"role": name, "account": account, "statements": statements, "arn": session_arn}
    with _lock:
        _roles[access_key] = entry
    return entry


def role_of(access_key: str | None) -> dict | None:
    with _lock:
        return _roles.get(access_key or "")


def reset() -> None:
    with _lock:
        _roles.clear()
        _by_role_arn.clear()
        REFUSED.clear()


def access_key(authorization: str | None) -> str | None:
    match = re.search(r"Credential=([^/,\s]+)/", authorization or "")
    return match.group(1) if match else None


def base_context(entry: dict, region: str) -> dict:
    return {"aws:PrincipalArn": entry["arn"].replace(":sts:", ":iam:").replace(
                "assumed-role/", "role/").rsplit("/", 1)[0],
            "aws:PrincipalAccount": entry["account"], "aws:RequestedRegion": region,
            "aws:SecureTransport": "true", "aws:ViaAWSService": "false"}


def evaluate(entry: dict, checks: list[iam_policy.Check]) -> dict | None:
    """None when every check is allowed, else what was refused (also kept in REFUSED)."""
    refused = iam_policy.first_refused(entry["statements"], checks)
    if refused is None:
        return None
    check, decision, notes = refused
    because = "with an explicit deny in an identity-based policy" \
        if decision == iam_policy.EXPLICIT_DENY else \
        "because no identity-based policy allows the " + check.action + " action"
    message = (f"User: {entry['arn']} is not authorized to perform: {check.action} on resource: "
               f"{check.resource} {because}")
    record = {"role": entry["role"], "action": check.action, "resource": check.resource,
              "decision": decision, "context": check.context, "notes": notes}
    with _lock:
        REFUSED.append(record)
    log.warning("IAM refused %s", json.dumps(record))
    return {"message": message, **record}


# ---- requests -> checks ---------------------------------------------------------------

def _s3_checks(resp, resource: str, ctx: dict) -> list[iam_policy.Check]:
    action = resp.data.get("Action") or "ListAllMyBuckets"
    query = resp.querystring
    if action == "HeadBucket":
        action = "ListBucket"  # HeadBucket is authorised as s3:ListBucket
    if action == "DeleteObject" and "versionId" in query:
        action = "DeleteObjectVersion"
    if action == "GetObject" and "versionId" in query:
        action = "GetObjectVersion"
    if action in ("ListBucket", "ListBucketVersions"):
        for key in ("prefix", "delimiter", "max-keys"):
            if key in query:
                ctx[f"s3:{key}"] = query[key][0]
    checks = [iam_policy.Check(f"s3:{action}", resource, ctx)]
    if action in ("GetObject", "GetObjectVersion") and not _s3_exists(resp, resource):
        # A missing key is a 404 only to who may list the bucket; to others, 403.
        checks.append(iam_policy.Check("s3:ListBucket", resource.split("/", 1)[0],
                                       dict(ctx)))
    if action == "PutObject" and resp.headers.get("x-amz-copy-source"):
        source = urllib.parse.unquote(resp.headers["x-amz-copy-source"].split("?")[0])
        checks.append(iam_policy.Check("s3:GetObject", f"arn:aws:s3:::{source.lstrip('/')}",
                                       dict(ctx)))
    return checks + _s3_kms_checks(resp, action, resource, ctx)


def _s3_kms_checks(resp, action: str, resource: str, ctx: dict) -> list[iam_policy.Check]:
    """The KMS calls S3 makes on the caller's behalf for SSE-KMS (moto stores the key id and
    calls no KMS): GenerateDataKey for a PUT or the start of a multipart upload, Decrypt for a
    GET (not a HEAD), both authorised against the caller's policy with ``kms:ViaService`` and
    S3's encryption context, the bucket's ARN with an S3 Bucket Key, else the object's."""
    if action not in ("PutObject", "GetObject", "GetObjectVersion") or "/" not in resource:
        return []
    method = resp.method if hasattr(resp, "method") else ""
    if method == "HEAD" or "uploadId" in resp.querystring or "partNumber" in resp.querystring:
        return []  # HEAD reads no data; parts and completion: not modelled (README)
    bucket_arn = resource.split("/", 1)[0]
    if action == "PutObject":
        sealed = _s3_put_encryption(resp, bucket_arn[len("arn:aws:s3:::"):])
        kms_action = "kms:GenerateDataKey"
    else:
        sealed = _s3_stored_encryption(resp, resource)
        kms_action = "kms:Decrypt"
    if sealed is None:
        return []
    key_arn = kms_key_arn(resp.current_account, resp.region, sealed[0])
    if key_arn is None:
        return []  # the AWS managed key or an unknown one: S3's own error, not modelled
    context_arn = bucket_arn if sealed[1] else resource
    return [iam_policy.Check(kms_action, key_arn, {
        **ctx, "aws:ViaAWSService": "true", "kms:CallerAccount": resp.current_account,
        "kms:ViaService": f"s3.{resp.region}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": context_arn,
        "kms:EncryptionContextKeys": ["aws:s3:arn"]})]


def _s3_put_encryption(resp, bucket: str):
    """(KMS key id, bucket key?) a PUT seals its object with, or None: the request's headers,
    else the bucket's default encryption (S3 applies it to a request that names none)."""
    from moto.s3.models import s3_backends
    headers = resp.headers
    algorithm = headers.get("x-amz-server-side-encryption")
    key_id = headers.get("x-amz-server-side-encryption-aws-kms-key-id")
    bucket_key = headers.get("x-amz-server-side-encryption-bucket-key-enabled")
    try:
        rule = s3_backends[resp.current_account][resp.partition].get_bucket(
            bucket).encryption or {}
    except Exception:  # no such bucket: S3's own error follows
        return None
    rule = rule.get("Rule") or {}
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    if algorithm is None:
        algorithm = default.get("SSEAlgorithm")
        key_id = key_id or default.get("KMSMasterKeyID")
    elif key_id is None:
        # `aws:kms` without a key id is the AWS managed key aws/s3 (moto_accounts.py), whose
        # key policy lets the account's principals use it through S3: nothing to authorise.
        return None
    if algorithm not in ("aws:kms", "aws:kms:dsse") or not key_id:
        return None
    if bucket_key is None:
        bucket_key = str(rule.get("BucketKeyEnabled", False))
    return key_id, str(bucket_key).lower() == "true"


def _s3_stored_encryption(resp, resource: str):
    """(KMS key id, bucket key?) the object being read was sealed with, or None."""
    from moto.s3.models import s3_backends
    bucket, _, key = resource[len("arn:aws:s3:::"):].partition("/")
    version = (resp.querystring.get("versionId") or [None])[0]
    try:
        found = s3_backends[resp.current_account][resp.partition].get_object(
            bucket, key, version_id=version)
    except Exception:  # no such bucket or version: S3's own error follows
        return None
    if found is None or found.encryption not in ("aws:kms", "aws:kms:dsse") or \
            not found.kms_key_id or found.kms_key_id.endswith(":alias/aws/s3"):
        return None  # the AWS managed key's policy lets the account read it through S3
    return found.kms_key_id, str(found.bucket_key_enabled).lower() == "true"


def kms_key(account: str, region: str, key_id: str):
    """moto's key for ``key_id`` (an id, ARN or alias, as S3, SQS and SNS accept), or None."""
    from moto.kms.models import kms_backends
    if key_id.startswith("arn:"):  # the key's own account and region
        _, _, _, region, account, _ = key_id.split(":", 5)
    try:
        return kms_backends[account][region].describe_key(key_id)
    except Exception:
        return None


def kms_key_arn(account: str, region: str, key_id: str) -> str | None:
    key = kms_key(account, region, key_id)
    return None if key is None else key.arn


def _s3_exists(resp, resource: str) -> bool:
    from moto.s3.models import s3_backends
    bucket, _, key = resource[len("arn:aws:s3:::"):].partition("/")
    try:
        backend = s3_backends[resp.current_account][resp.partition]
        return backend.get_object(bucket, key) is not None
    except Exception:  # no such bucket: S3's own error follows
        return True


def _sqs_arn(resp, region, account) -> str:
    url = resp._get_param("QueueUrl")
    if url:
        parts = urllib.parse.urlparse(url).path.strip("/").split("/")
        return f"arn:aws:sqs:{region}:{parts[0]}:{parts[-1]}"
    return f"arn:aws:sqs:{region}:{account}:{resp._get_param('QueueName')}"


def _events_checks(resp, action, region, account, ctx):
    if action == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in resp._get_param("Entries") or []}
        return [iam_policy.Check("events:PutEvents", b if b.startswith("arn:") else
                                 f"arn:aws:events:{region}:{account}:event-bus/{b}", ctx)
                for b in sorted(buses) or ["default"]]
    name = resp._get_param("Rule") or resp._get_param("Name")
    if name and action in ("PutRule", "DeleteRule", "DescribeRule", "PutTargets",
                           "RemoveTargets", "EnableRule", "DisableRule", "ListTargetsByRule"):
        bus = resp._get_param("EventBusName") or "default"
        path = name if bus == "default" else f"{bus.split('/')[-1]}/{name}"
        return [iam_policy.Check(f"events:{action}",
                                 f"arn:aws:events:{region}:{account}:rule/{path}", ctx)]
    return [iam_policy.Check(f"events:{action}", "*", ctx)]


def _states_checks(resp, action, region, account, ctx):
    arn = resp._get_param("stateMachineArn") or resp._get_param("executionArn")
    checks = [iam_policy.Check(f"states:{action}", arn or "*", ctx)]
    if action == "CreateStateMachine":
        checks[0].resource = f"arn:aws:states:{region}:{account}:stateMachine:" \
                             f"{resp._get_param('name')}"
        checks.append(_pass_role(resp._get_param("roleArn"), "states.amazonaws.com", ctx))
    return checks


def _pass_role(role_arn, service, ctx):
    return iam_policy.Check("iam:PassRole", role_arn or "*",
                            {**ctx, "iam:PassedToService": service})


def _scheduler_checks(resp, action, region, account, ctx):
    path = urllib.parse.urlparse(resp.uri).path
    body = json.loads(resp.body or "{}") if isinstance(resp.body, (str, bytes)) else {}
    group = body.get("GroupName") or resp.querystring.get("groupName", ["default"])[0]
    name = urllib.parse.unquote(path.rstrip("/").split("/")[-1])
    checks = [iam_policy.Check(f"scheduler:{action}",
                               f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}",
                               ctx)]
    if action in ("CreateSchedule", "UpdateSchedule"):
        checks.append(_pass_role((body.get("Target") or {}).get("RoleArn"),
                                 "scheduler.amazonaws.com", ctx))
    return checks


def _kms_checks(resp, action, region, account, ctx):
    from moto.kms.models import kms_backends
    backend = kms_backends[account][region]
    key_id = resp._get_param("KeyId")
    arn = "*"
    try:
        if key_id:
            arn = backend.describe_key(key_id).arn
        elif action == "Decrypt":
            arn = backend.decrypt(_ciphertext(resp), resp._get_param("EncryptionContext") or {})[1]
    except Exception:  # an unknown key is the service's error, not IAM's
        return []
    context = {**ctx, "kms:CallerAccount": account}
    for k, v in (resp._get_param("EncryptionContext") or {}).items():
        context[f"kms:EncryptionContext:{k}"] = v
    if resp._get_param("EncryptionContext"):
        context["kms:EncryptionContextKeys"] = list(resp._get_param("EncryptionContext"))
    return [iam_policy.Check(f"kms:{action}", arn, context)]


def _ciphertext(resp) -> bytes:
    """The request's CiphertextBlob as bytes: moto's parser hands the blob over decoded (as
    its Decrypt does), the JSON body has it in base64."""
    import base64
    blob = resp._get_param("CiphertextBlob")
    return blob if isinstance(blob, bytes) else base64.b64decode(blob)


def _ec2_endpoint(account, region, endpoint_id):
    from moto.ec2.models import ec2_backends
    backend = ec2_backends[account][region]
    return backend.vpc_end_points.get(endpoint_id) if hasattr(backend, "vpc_end_points") \
        else None


def _ec2_checks(resp, action, region, account, ctx):
    arn = f"arn:aws:ec2:{region}:{account}"
    if action.startswith("Describe"):
        return [iam_policy.Check(f"ec2:{action}", "*", ctx)]
    if action == "CreateVpcEndpoint":
        service = resp._get_param("ServiceName")
        tags = {t["Key"]: t["Value"]
                for spec in resp._get_param("TagSpecifications", [])
                if spec.get("ResourceType") == "vpc-endpoint" for t in spec.get("Tags", [])}
        context = {**ctx, "ec2:VpceServiceName": service, "aws:TagKeys": list(tags),
                   **{f"aws:RequestTag/{k}": v for k, v in tags.items()}}
        resources = [f"{arn}:vpc-endpoint/*", f"{arn}:vpc/{resp._get_param('VpcId')}"]
        resources += [f"{arn}:subnet/{s}" for s in resp._get_param("SubnetIds", [])]
        resources += [f"{arn}:security-group/{g}"
                      for g in resp._get_param("SecurityGroupIds", [])]
        match = re.search(r"(vpce-svc-[0-9a-z]+)$", service or "")
        if match:
            resources.append(f"{arn}:vpc-endpoint-service/{match.group(1)}")
        checks = [iam_policy.Check("ec2:CreateVpcEndpoint", r, dict(context))
                  for r in resources]
        if tags:  # tag-on-create is authorised as ec2:CreateTags on the new endpoint
            checks.append(iam_policy.Check("ec2:CreateTags", f"{arn}:vpc-endpoint/*",
                                           {**context, "ec2:CreateAction": action}))
        return checks
    if action in ("ModifyVpcEndpoint", "DeleteVpcEndpoints"):
        ids = [resp._get_param("VpcEndpointId")] if action == "ModifyVpcEndpoint" \
            else resp._get_param("VpcEndpointIds", [])
        checks = []
        for endpoint_id in ids:
            endpoint = _ec2_endpoint(account, region, endpoint_id)
            context = dict(ctx)
            if endpoint is not None:
                context["ec2:VpceServiceName"] = endpoint.service_name
                for tag in endpoint.get_tags() if hasattr(endpoint, "get_tags") else []:
                    context[f"aws:ResourceTag/{tag['key']}"] = tag["value"]
                    context[f"ec2:ResourceTag/{tag['key']}"] = tag["value"]
            checks.append(iam_policy.Check(f"ec2:{action}", f"{arn}:vpc-endpoint/{endpoint_id}",
                                           context))
        return checks
    return [iam_policy.Check(f"ec2:{action}", "*", ctx)]


def checks(resp, service: str, action: str, s3_resource: str | None, entry: dict):
    region, account = resp.region, resp.current_account
    ctx = base_context(entry, region)
    if service == "s3":
        return _s3_checks(resp, s3_resource or "*", ctx)
    if service == "sqs":
        queue = _sqs_arn(resp, region, account)
        return [iam_policy.Check(f"sqs:{iam_sse.iam_action(action)}", queue, ctx)] + \
            iam_sse.sqs_checks(action, queue, ctx)
    if service == "sns":
        arn = resp._get_param("TopicArn") or resp._get_param("TargetArn") or "*"
        if action == "CreateTopic":
            arn = f"arn:aws:sns:{region}:{account}:{resp._get_param('Name')}"
        return [iam_policy.Check(f"sns:{iam_sse.iam_action(action)}", arn, ctx)] + \
            iam_sse.sns_checks(action, arn, ctx)
    if service == "events":
        return _events_checks(resp, action, region, account, ctx)
    if service == "states":
        return _states_checks(resp, action, region, account, ctx)
    if service == "scheduler":
        return _scheduler_checks(resp, action, region, account, ctx)
    if service == "kms":
        return _kms_checks(resp, action, region, account, ctx)
    if service == "ec2":
        return _ec2_checks(resp, action, region, account, ctx)
    if service == "sts":
        if action == "GetCallerIdentity":
            return []  # needs no permission
        return [iam_policy.Check(f"sts:{action}", resp._get_param("RoleArn") or "*", ctx)]
    return [iam_policy.Check(f"{service}:{action}", "*", ctx)]


# ---- refusals as each service answers them ---------------------------------------------

def refusal(service: str, message: str):
    """The exception moto turns into the service's AccessDenied answer."""
    from moto.core.exceptions import JsonRESTError, _RESTError as RESTError
    from werkzeug.exceptions import HTTPException

    rid = "c6104cbe-af31-11e0-8154-cbc7ccf896c7"
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if service == "s3":
        from moto.s3.exceptions import S3AccessDeniedError
        error = S3AccessDeniedError()
        error.description = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied'
                             f"</Code><Message>{text}</Message><RequestId>{rid}</RequestId>"
                             "<HostId>bed</HostId></Error>")
        return error
    if service in ("sns", "sts"):
        code = "AuthorizationError" if service == "sns" else "AccessDenied"
        error = RESTError(code, message)
        error.code = 403
        error.description = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                             f"<Message>{text}</Message></Error><RequestId>{rid}</RequestId>"
                             "</ErrorResponse>")
        return error
    if service == "ec2":
        error = RESTError("UnauthorizedOperation", message)
        error.code = 403
        error.description = ("<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                             f"<Message>You are not authorized to perform this operation. {text}"
                             f"</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return error
    if service == "sqs":
        error = JsonRESTError("com.amazon.coral.service#AccessDeniedException", message)
        error.code = 403
        error.description = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException",
                                        "message": message})
        return error
    error = JsonRESTError("AccessDeniedException", message)
    error.code = 403 if service == "scheduler" else 400
    error.description = json.dumps({"__type": "AccessDeniedException", "Message": message})
    assert isinstance(error, HTTPException)
    return error


def patch_moto() -> None:
    """Hooks the check into moto's per-request authorisation step."""
    from moto.core.authorization import ActionAuthenticatorMixin

    normal = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    s3 = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def authorize(resp, s3_resource=None):
        entry = role_of(access_key(resp.headers.get("Authorization")))
        if entry is None:
            return
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/",
                          resp.headers.get("Authorization", ""))
        service = scope.group(1) if scope else "s3"
        action = resp.data.get("Action") if service == "s3" else resp._get_action()
        try:
            found = checks(resp, service, action, s3_resource, entry)
        except iam_sse.KeyUnusable as e:  # the service's own failure, before IAM decides
            raise iam_sse.refusal(resp, e.service, str(e), e.kind)
        refused = evaluate(entry, found)
        if refused and service in ("sqs", "sns") and refused["action"].startswith("kms:"):
            raise iam_sse.refusal(resp, service, refused["message"])
        if refused:
            raise refusal(service, refused["message"])

    def normal_action(self, resource="*"):
        authorize(self)
        return normal(self, resource)

    def s3_action(self, bucket_name=None, key_name=None):
        resource = "arn:aws:s3:::" + (f"{bucket_name}/{key_name}" if key_name
                                      else bucket_name or "*")
        authorize(self, resource)
        return s3(self, bucket_name, key_name)

    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = normal_action
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = s3_action


def admin_app(app, default_account: str = "123456789012"):
    """WSGI middleware: ``POST /moto-api/bed-iam/roles`` (register), ``POST
    /moto-api/bed-iam/execution-roles`` (an environment's execution role as infra/dags/README.md
    documents it: iam_execution.py), ``GET
    /moto-api/bed-iam/keys/KEY`` (a key's role, for the MWAA control plane), ``GET
    /moto-api/bed-iam/refused``; ``/moto-api/reset`` forgets them."""
    def answer(start_response, status, body):
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/bed-iam/roles" and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            try:
                return answer(start_response, "200 OK",
                              register(body, body.get("account", default_account)))
            except KeyError as e:
                return answer(start_response, "400 Bad Request", {"message": str(e)})
        if path == "/moto-api/bed-iam/execution-roles" and environ["REQUEST_METHOD"] == "POST":
            import iam_execution
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            try:
                return answer(start_response, "200 OK", iam_execution.register(
                    body, default_account, register_statements))
            except KeyError as e:
                return answer(start_response, "400 Bad Request", {"message": str(e)})
        if path.startswith("/moto-api/bed-iam/keys/"):
            entry = role_of(path.rsplit("/", 1)[-1])
            return answer(start_response, "200 OK" if entry else "404 Not Found", entry or {})
        if path == "/moto-api/bed-iam/refused":
            with _lock:
                return answer(start_response, "200 OK", list(REFUSED))
        if path == "/moto-api/reset":
            reset()
        return app(environ, start_response)
    return wrapped
