"""moto server with the account rules AWS enforces and moto 5.2.5 does not.

    python moto_accounts.py -H 127.0.0.1 -p PORT      (what moto_bed.Moto starts)

moto already serves many accounts: a request's account is the one its access key belongs
to (keys made by AssumeRole belong to the role's account), else ``x-moto-account-id``,
else 123456789012. Rules of AWS it does not keep, and the cross-account set-up of
provision-endpoints depends on both, so this launcher adds them before starting moto:

1. **AssumeRole follows the role's trust policy.** moto lets anyone assume any role, even
   one that does not exist. Here the role must exist in its account, and an ``Allow``
   statement of its trust policy must name the caller (``"*"``, the caller's account as
   ``ACCOUNT`` or ``arn:aws:iam::ACCOUNT:root``, the caller's role ARN when the caller is a
   session of that role, or the caller's user ARN) with its conditions met; a ``Deny``
   statement naming the caller refuses. Conditions understood: ``StringEquals`` /
   ``StringLike`` on ``sts:ExternalId``, ``aws:PrincipalAccount`` and ``aws:PrincipalArn``;
   any other condition (``aws:PrincipalOrgID`` included: the bed has no Organizations) does
   not hold, so the bed refuses rather than allow what AWS might not. Refusals are AWS's
   ``AccessDenied`` (403) with IAM's wording. The caller's own identity policy
   (``sts:AssumeRole`` on the role) is evaluated for callers signing with a key of a template
   role or with a session of a role moto holds (iam_moto.py, README "How the bed holds us to
   AWS's rules"); a template role's key shows as its registered session ARN. The session
   handed out is held to the role's statements as moto holds them (inline policies and the
   default version of each attached managed policy).
2. **Delivered events name their account** (moto's SQS delivery leaves ``account`` out).
3. **A rule forwarding to another account's bus keeps the event.** AWS delivers the event
   as it was (its ``account``, ``resources``, ``time`` and ``id`` those of the sender), and
   only if the receiving bus's resource policy allows the sending account
   (``events:PutEvents``, principal the account or ``*`` with ``aws:PrincipalAccount`` /
   ``aws:SourceAccount``); otherwise the delivery fails and the event is not on the
   receiving bus. moto re-sends it as a new event of the receiving account, without
   ``resources``, whatever the policy says. Refused deliveries are listed at
   ``GET /moto-api/refused-events`` (the bed's, not moto's).
"""
from __future__ import annotations

import copy
import fnmatch
import json
import sys
import threading

REFUSED_EVENTS: list[dict] = []
_refused_lock = threading.Lock()


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_matches(principal, caller_account: str, caller_arns: list[str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for p in _as_list(principal.get("AWS")):
        if p == "*" or p == caller_account or p == f"arn:aws:iam::{caller_account}:root":
            return True
        if p in caller_arns:
            return True
    return False


def _conditions_hold(conditions: dict | None, context: dict) -> bool:
    for operator, checks in (conditions or {}).items():
        if operator not in ("StringEquals", "StringLike"):
            return False
        for key, wanted in checks.items():
            have = context.get(key.lower())
            if have is None:
                return False
            wanted = _as_list(wanted)
            if operator == "StringEquals" and have not in wanted:
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(have, w) for w in wanted):
                return False
    return True


def trust_allows(policy: dict, caller_account: str, caller_arns: list[str], context: dict) -> bool:
    """Whether a trust policy lets the caller assume the role (deny wins)."""
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        actions = _as_list(statement.get("Action"))
        if not any(fnmatch.fnmatchcase("sts:AssumeRole", a) for a in actions):
            continue
        if not _principal_matches(statement.get("Principal"), caller_account, caller_arns):
            continue
        if not _conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def _caller(backend, access_key: str, region: str) -> tuple[str, list[str], str]:
    """(account, ARNs a trust policy may name for the caller, the caller's ARN as shown)."""
    import iam_moto
    entry = iam_moto.role_of(access_key)  # a template role's key moto itself does not know
    if entry is not None:
        arn, account = entry["arn"], entry["account"]
    else:
        _, arn, account = backend.get_caller_identity(access_key, region)
    arns = [arn]
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        arns.append(f"arn:aws:iam::{account}:role/{role}")
    return account, arns, arn


def patch_sts() -> None:
    from moto.core.exceptions import AccessDeniedError
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.sts.responses import TokenResponse

    original = TokenResponse.assume_role

    def assume_role(self):
        role_arn = self._get_param("RoleArn") or ""
        external_id = self._get_param("ExternalId")
        caller_backend = sts_backends[self.current_account]["aws"]
        # moto reads only 20-character keys from the signature: a template role's key is longer.
        import iam_moto
        key = iam_moto.access_key(self.headers.get("Authorization")) or self.get_access_key()
        account, arns, shown = _caller(caller_backend, key, self.region)
        denied = AccessDeniedError(shown, f"sts:AssumeRole on resource: {role_arn}")
        # STS (awsQuery) answers <ErrorResponse><Error>...; moto's generic shape nests an
        # <Errors> that the SDKs do not read as a code and a message.
        denied.description = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>AccessDenied</Code><Message>{denied.message}</Message>"
            "</Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>")
        parts = role_arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
            raise denied
        try:
            role = iam_backends[parts[4]]["aws"].get_role_by_arn(role_arn)
        except Exception:
            raise denied
        policy = role.assume_role_policy_document
        policy = json.loads(policy) if isinstance(policy, str) else policy
        context = {"aws:principalaccount": account, "aws:principalarn": arns[-1]}
        if external_id is not None:
            context["sts:externalid"] = external_id
        if not trust_allows(policy or {}, account, arns, context):
            raise denied
        answer = original(self)
        _hold_session_to_role(answer.result, role)
        return answer

    TokenResponse.assume_role = assume_role


def _document(policy) -> dict:
    if isinstance(policy, str):
        import urllib.parse
        text = policy if policy.lstrip().startswith("{") else urllib.parse.unquote(policy)
        return json.loads(text)
    return policy or {}


def role_statements(role) -> list[dict]:
    """The identity-policy statements of a role moto holds: its inline policies and the
    default version of each managed policy attached to it."""
    out = []
    for policy in role.policies.values():
        out += _as_list(_document(policy).get("Statement"))
    for managed in role.managed_policies.values():
        [default] = [v for v in managed.versions if v.is_default_version]
        out += _as_list(_document(default.document).get("Statement"))
    return [s for s in out if isinstance(s, dict)]


def _hold_session_to_role(result: dict, role) -> None:
    """The session AssumeRole just handed out acts as the role: the bed's IAM (iam_moto.py,
    iam_mwaa.py) holds its calls to the role's statements, as AWS would. A session policy
    (AssumeRole's ``Policy``) and a permissions boundary are not intersected (README "How the
    bed holds us to AWS's rules")."""
    import iam_moto
    session = result["Credentials"]
    iam_moto.register_session(session.access_key_id, role.arn, session.arn,
                              role_statements(role))


def bus_allows(policy: str | None, source_account: str, bus_account: str) -> bool:
    """Whether a bus's resource policy lets ``source_account`` put events on it."""
    if source_account == bus_account:
        return True
    if not policy:
        return False
    context = {"aws:principalaccount": source_account, "aws:sourceaccount": source_account}
    allowed = False
    for statement in _as_list(json.loads(policy).get("Statement")):
        actions = _as_list(statement.get("Action"))
        if not any(fnmatch.fnmatchcase("events:PutEvents", a) for a in actions):
            continue
        if not _principal_matches(statement.get("Principal"), source_account, []):
            continue
        if not _conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def patch_events() -> None:
    from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
    from moto.events import models, utils
    from moto.utilities.arns import parse_arn

    # Every event AWS delivers names its account; moto's default input template leaves it out.
    utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = \
        utils.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE.replace(
            '"version": "0",', '"version": "0", "account": "<account>",')

    original = models.Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        if not self.event_pattern.matches_event(original_event):
            return
        forward = [t for t in self.targets
                   if parse_arn(t["Arn"]).service == "events"
                   and parse_arn(t["Arn"]).resource_type == "event-bus"]
        rest = [t for t in self.targets if t not in forward]
        for target in forward:
            arn = parse_arn(target["Arn"])
            backend = models.events_backends[arn.account][arn.region]
            bus = backend.describe_event_bus(arn.resource_id)
            event = copy.deepcopy(original_event)
            if not bus_allows(bus.policy, event["account"], arn.account):
                shown = copy.deepcopy(event)  # as a target would get it (time as moto's SQS)
                if isinstance(shown.get("time"), (int, float)):
                    shown["time"] = iso_8601_datetime_without_milliseconds(
                        utcfromtimestamp(float(shown["time"])))
                with _refused_lock:
                    REFUSED_EVENTS.append({"rule": self.arn, "target": target["Arn"],
                                           "event": shown})
                continue
            for rule in bus.rules.values():
                rule.send_to_targets(copy.deepcopy(event))
        if rest:
            saved = self.targets
            self.targets = rest
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = saved

    models.Rule.send_to_targets = send_to_targets


def aws_managed_s3_key(account: str, region: str) -> str:
    """The stand-in ARN of the account's AWS managed key for S3 (``aws/s3``)."""
    return f"arn:aws:kms:{region}:{account}:alias/aws/s3"


def patch_s3_managed_key() -> None:
    """A PUT asking for ``aws:kms`` without a key id is sealed with the AWS managed key
    ``aws/s3``, as S3's PutObject says ("If you specify x-amz-server-side-encryption:aws:kms
    ... but do not provide x-amz-server-side-encryption-aws-kms-key-id, Amazon S3 uses the
    AWS managed key (aws/s3)", botocore's S3 model), whatever the bucket's default; moto 5.2.5
    takes the bucket's default key instead (kinder: it hides a write that leaves the suite
    key's policy)."""
    from moto.s3.models import S3Backend
    put = S3Backend.put_object

    def put_object(self, bucket_name, key_name, value, *args, **kwargs):
        if kwargs.get("encryption") in ("aws:kms", "aws:kms:dsse") and not kwargs.get("kms_key_id"):
            region = self.get_bucket(bucket_name).region_name
            kwargs["kms_key_id"] = aws_managed_s3_key(self.account_id, region)
        return put(self, bucket_name, key_name, value, *args, **kwargs)
    S3Backend.put_object = put_object


def patch_task_failure() -> None:
    """moto 5.2.5's SendTaskFailure drops `cause` (responses.py passes only the error), so a
    failed Lambda task's error object would never reach the execution's history or a Catch's
    `Cause`, as it does in AWS: pass it on."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def refused_events_app(app):
    """WSGI middleware: ``GET /moto-api/refused-events``, cleared by ``/moto-api/reset``."""
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/refused-events":
            with _refused_lock:
                body = json.dumps(REFUSED_EVENTS).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path == "/moto-api/reset":
            with _refused_lock:
                REFUSED_EVENTS.clear()
        return app(environ, start_response)
    return wrapped


def patch_sfn_start_execution() -> None:
    """The `states:startExecution` integration as AWS runs it. Its parameters are written as
    AWS documents them (`StateMachineArn`, `Input`, `Name`) and its output comes back as
    `ExecutionArn` and `StartDate`; moto's port hands the parameters to boto3 as written (boto3
    wants `stateMachineArn`: KeyError, the task fails States.Runtime) and returns boto3's
    answer (a datetime the execution's JSON cannot carry). The schedule state machine
    (infra/statemachines/schedule.asl.json) starts every pause and resume this way."""
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn)

    shapes = boto3.session.Session()._session.get_service_model("stepfunctions")
    normalise = sfn.StateTaskServiceSfn._normalise_parameters
    evaluate = sfn.StateTaskServiceSfn._eval_service_task

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        normalise(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            self._to_boto_request(parameters, shapes.operation_model("StartExecution").input_shape)

    def eval_service_task(self, env, *args, **kwargs):
        evaluate(self, env, *args, **kwargs)
        if self._get_boto_service_action() == "start_execution" and env.stack:
            answer = env.stack.pop()
            env.stack.append({"ExecutionArn": answer.get("executionArn"),
                              "StartDate": str(answer.get("startDate"))})

    sfn.StateTaskServiceSfn._normalise_parameters = normalise_parameters
    sfn.StateTaskServiceSfn._eval_service_task = eval_service_task


def patch_unnamed_executions() -> None:
    """StartExecution without `name`: AWS names the execution with a UUID (the StartExecution
    API reference). moto 5.2.5's executing backend names it `None` instead, so a second unnamed
    start of a machine fails ExecutionAlreadyExists, or, with the same input, answers the
    first execution as if it were asked again. EventBridge Scheduler starts the schedule state
    machine without a name every night."""
    import uuid

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        if name is None:  # an empty name is AWS's ValidationException, not a UUID
            name = str(uuid.uuid4())
        return start(self, state_machine_arn, name, execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution


def main(argv=None) -> None:
    import iam_moto  # identity policies of the template's roles (README "How the bed ...")
    import iam_states  # ... and of the state machines' roles, for their integration calls

    patch_sts()
    patch_events()
    patch_sfn_start_execution()
    patch_task_failure()
    patch_unnamed_executions()
    patch_s3_managed_key()
    iam_moto.patch_moto()
    iam_states.patch_stepfunctions()
    from moto import server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    init = DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        inner = refused_events_app(lambda e, s: init(self, e, s))
        return iam_moto.admin_app(inner)(environ, start_response)

    DomainDispatcherApplication.__call__ = call
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
