"""The bed's IAM evaluator (iam_policy.py), pure: actions, ARN wildcards, conditions.

Run: .bed/venv/bin/python -m pytest tests/bed/test_iam_policy.py
"""
from iam_policy import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Check, arn_matches, decide

BUCKET = "arn:aws:s3:::mwaa-ops-suite"


def allow(action, resource, condition=None, **extra):
    s = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        s["Condition"] = condition
    return s


def test_default_deny_allow_and_explicit_deny_wins():
    check = Check("s3:GetObject", f"{BUCKET}/held/a")
    assert decide([], check)[0] == IMPLICIT_DENY
    assert decide([allow("s3:GetObject", f"{BUCKET}/held/*")], check)[0] == ALLOW
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert decide([allow("s3:GetObject", "*"), deny], check)[0] == EXPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards_and_not_action():
    check = Check("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")
    assert decide([allow("SQS:sendmessage", "*")], check)[0] == ALLOW
    assert decide([allow("sqs:Send*", "*")], check)[0] == ALLOW
    assert decide([allow("sqs:Send?essage", "*")], check)[0] == ALLOW
    assert decide([allow("sqs:SendMessageBatch", "*")], check)[0] == IMPLICIT_DENY
    not_action = {"Effect": "Allow", "NotAction": "sqs:Delete*", "Resource": "*"}
    assert decide([not_action], check)[0] == ALLOW
    assert decide([not_action], Check("sqs:DeleteMessage", "*"))[0] == IMPLICIT_DENY


def test_arn_wildcards_stay_within_their_part():
    assert arn_matches("arn:aws:airflow:us-east-1:123456789012:role/local*/User",
                       "arn:aws:airflow:us-east-1:123456789012:role/local-a/User")
    # The prefix wildcard crosses "/" inside the resource part, as AWS's does.
    assert arn_matches("arn:aws:airflow:us-east-1:123456789012:role/local*/User",
                       "arn:aws:airflow:us-east-1:123456789012:role/local-a/x/User")
    assert not arn_matches("arn:aws:airflow:us-east-1:123456789012:role/local*/User",
                           "arn:aws:airflow:us-east-1:123456789012:role/local-a/Admin")
    assert not arn_matches("arn:aws:airflow:us-east-1:123456789012:role/local*/User",
                           "arn:aws:airflow:us-east-1:123456789012:role/prod/User")
    # A wildcard in the region part does not swallow the account.
    assert arn_matches("arn:aws:ec2:us-east-1:*:security-group/*",
                       "arn:aws:ec2:us-east-1:111111111111:security-group/sg-1")
    assert not arn_matches("arn:aws:ec2:*:security-group/*",
                           "arn:aws:ec2:us-east-1:111111111111:security-group/sg-1")
    assert arn_matches("arn:aws:states:us-east-1:1:execution:mwaa-ops-*:*",
                       "arn:aws:states:us-east-1:1:execution:mwaa-ops-pause:run-1")
    # Resource ARNs are case-sensitive.
    assert not arn_matches(f"{BUCKET}/Held/*", f"{BUCKET}/held/a")
    assert arn_matches("*", "anything")


def test_not_resource():
    s = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/secret/*"}
    assert decide([s], Check("s3:GetObject", f"{BUCKET}/held/a"))[0] == ALLOW
    assert decide([s], Check("s3:GetObject", f"{BUCKET}/secret/a"))[0] == IMPLICIT_DENY


def test_s3_prefix_string_like_and_missing_key():
    s = allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["held/*", "routes/*"]}})
    assert decide([s], Check("s3:ListBucket", BUCKET, {"s3:prefix": "held/"}))[0] == ALLOW
    assert decide([s], Check("s3:ListBucket", BUCKET, {"s3:prefix": "alerts/"}))[0] \
        == IMPLICIT_DENY
    # No prefix in the request: the key is absent and StringLike does not hold.
    assert decide([s], Check("s3:ListBucket", BUCKET))[0] == IMPLICIT_DENY


def test_request_and_resource_tags_and_keys_case_insensitive():
    s = allow("ec2:DeleteVpcEndpoints", "arn:aws:ec2:us-east-1:1:vpc-endpoint/*",
              {"StringEquals": {"aws:ResourceTag/mwaa-ops:managed-by": "mwaa-ops"}})
    ours = Check("ec2:DeleteVpcEndpoints", "arn:aws:ec2:us-east-1:1:vpc-endpoint/vpce-1",
                 {"AWS:ResourceTag/mwaa-ops:managed-by": "mwaa-ops"})
    theirs = Check(ours.action, ours.resource, {"aws:ResourceTag/mwaa-ops:managed-by": "x"})
    assert decide([s], ours)[0] == ALLOW
    assert decide([s], theirs)[0] == IMPLICIT_DENY
    assert decide([s], Check(ours.action, ours.resource))[0] == IMPLICIT_DENY


def test_if_exists_null_and_negated_operators():
    s = allow("kms:Decrypt", "*", {"StringEqualsIfExists": {"kms:ViaService": "s3.x"}})
    assert decide([s], Check("kms:Decrypt", "k"))[0] == ALLOW
    assert decide([s], Check("kms:Decrypt", "k", {"kms:ViaService": "sqs.x"}))[0] \
        == IMPLICIT_DENY
    null = allow("kms:Decrypt", "*", {"Null": {"kms:ViaService": "false"}})
    assert decide([null], Check("kms:Decrypt", "k"))[0] == IMPLICIT_DENY
    assert decide([null], Check("kms:Decrypt", "k", {"kms:ViaService": "s3.x"}))[0] == ALLOW
    # A negated operator holds when the key is absent.
    neg = {"Effect": "Deny", "Action": "*", "Resource": "*",
           "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}
    assert decide([allow("*", "*"), neg], Check("s3:GetObject", "x"))[0] == EXPLICIT_DENY
    assert decide([allow("*", "*"), neg],
                  Check("s3:GetObject", "x", {"aws:RequestedRegion": "us-east-1"}))[0] == ALLOW


def test_arn_like_bool_and_pass_role():
    s = allow("iam:PassRole", "arn:aws:iam::1:role/sched",
              {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}})
    assert decide([s], Check("iam:PassRole", "arn:aws:iam::1:role/sched",
                             {"iam:PassedToService": "scheduler.amazonaws.com"}))[0] == ALLOW
    assert decide([s], Check("iam:PassRole", "arn:aws:iam::1:role/sched",
                             {"iam:PassedToService": "lambda.amazonaws.com"}))[0] == IMPLICIT_DENY
    arn = allow("sns:Publish", "*", {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:1:rule/*"}})
    assert decide([arn], Check("sns:Publish", "t",
                               {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r"}))[0] == ALLOW
    secure = allow("s3:*", "*", {"Bool": {"aws:SecureTransport": True}})
    assert decide([secure], Check("s3:GetObject", "o", {"aws:SecureTransport": "true"}))[0] \
        == ALLOW
    assert decide([secure], Check("s3:GetObject", "o", {"aws:SecureTransport": "false"}))[0] \
        == IMPLICIT_DENY


def test_set_operators_on_multi_valued_keys():
    any_value = allow("ec2:CreateVpcEndpoint", "*",
                      {"ForAnyValue:StringEquals": {"aws:TagKeys": ["mwaa-ops:managed-by"]}})
    all_values = allow("ec2:CreateVpcEndpoint", "*",
                       {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}})
    tags = lambda *keys: Check("ec2:CreateVpcEndpoint", "e", {"aws:TagKeys": list(keys)})
    assert decide([any_value], tags("x", "mwaa-ops:managed-by"))[0] == ALLOW
    assert decide([any_value], tags("x"))[0] == IMPLICIT_DENY
    assert decide([any_value], Check("ec2:CreateVpcEndpoint", "e"))[0] == IMPLICIT_DENY
    assert decide([all_values], tags("a"))[0] == ALLOW
    assert decide([all_values], tags("a", "c"))[0] == IMPLICIT_DENY
    assert decide([all_values], Check("ec2:CreateVpcEndpoint", "e"))[0] == ALLOW


def test_statements_the_evaluator_cannot_read_never_allow():
    unresolved = allow("sqs:SendMessage", {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]})
    decision, notes = decide([unresolved], Check("sqs:SendMessage", "arn:aws:sqs:r:1:q"))
    assert decision == IMPLICIT_DENY and "unresolved" in notes[0]
    odd = allow("s3:GetObject", "*", {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}})
    decision, notes = decide([odd], Check("s3:GetObject", "o"))
    assert decision == IMPLICIT_DENY and "DateLessThan" in notes[0]
    odd["Effect"] = "Deny"
    assert decide([allow("*", "*"), odd], Check("s3:GetObject", "o"))[0] == EXPLICIT_DENY


def test_every_role_of_the_template_is_one_the_evaluator_reads_whole():
    """Each role's statements, resolved with a name for every resource of the template,
    use only what the evaluator understands: a statement added to the template later is
    enforced on the bed, not silently never matching."""
    import iam_roles
    from iam_policy import Unsupported, _conditions_hold, statement_applies

    cfn = iam_roles.translated()
    arn = "arn:aws:{}:us-east-1:123456789012:{}"
    resources = {name: {"Ref": arn.format("bed", name), "Arn": arn.format("bed", name)}
                 for name in cfn["Resources"]}
    resources["SuiteBucket"] = "mwaa-ops-suite"
    roles = [n for n, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert "TriggerDagFunctionRole" in roles and "NotifyFunctionRole" in roles
    for role in roles:
        statements = iam_roles.statements(role, {
            "EnvironmentNamePrefix": "local",
            "EnvironmentExecutionRoles": "arn:aws:iam::123456789012:role/exec"}, resources)
        assert statements, role
        for statement in statements:
            if "Principal" in statement:
                continue
            action = (statement.get("Action") or statement.get("NotAction"))
            action = (action if isinstance(action, str) else action[0]).replace("*", "A")
            try:
                statement_applies({**statement, "Condition": None}, Check(action, "x"))
                _conditions_hold(statement.get("Condition"), {})
            except Unsupported as e:
                raise AssertionError(f"{role} {statement.get('Sid')}: {e}") from None


def test_the_dags_execution_role_policy_is_read_whole_and_each_of_its_conditions_refuses():
    """infra/dags/README.md's block (iam_execution.py): every statement understood, and each
    condition key it uses decides on its own."""
    import iam_execution
    key = "arn:aws:kms:us-east-1:123456789012:key/k-1"
    statements = iam_execution.documented_policy("env-a", "mwaa-ops-suite", key, "us-east-1",
                                                 "123456789012")["Statement"]

    def decision(action, resource, **context):
        found, notes = decide(statements, Check(action, resource, context))
        assert notes == [], notes  # nothing skipped as unreadable
        return found

    assert decision("s3:ListBucket", BUCKET, **{"s3:prefix": "metadata/env-a/dt="}) == ALLOW
    assert decision("s3:ListBucket", BUCKET, **{"s3:prefix": "metadata/env-b/"}) == IMPLICIT_DENY
    assert decision("s3:ListBucket", BUCKET) == IMPLICIT_DENY
    via_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com",
              "kms:EncryptionContext:aws:s3:arn": BUCKET, "kms:EncryptionContextKeys": ["aws:s3:arn"]}
    assert decision("kms:GenerateDataKey", key, **via_s3) == ALLOW
    assert decision("kms:GenerateDataKey", key,
                    **dict(via_s3, **{"kms:ViaService": "sqs.us-east-1.amazonaws.com"})) == IMPLICIT_DENY
    assert decision("kms:Decrypt", key, **{k: v for k, v in via_s3.items()
                                           if k != "kms:ViaService"}) == IMPLICIT_DENY
    assert decision("kms:Decrypt", key, **dict(via_s3, **{
        "kms:EncryptionContext:aws:s3:arn": f"{BUCKET}/metadata/env-a/x"})) == IMPLICIT_DENY
    own = {"kms:EncryptionContext:mwaa-ops:environment": "env-a",
           "kms:EncryptionContext:mwaa-ops:export-id": "e-1",
           "kms:EncryptionContextKeys": ["mwaa-ops:environment", "mwaa-ops:export-id"]}
    assert decision("kms:Decrypt", key, **own) == ALLOW
    assert decision("kms:Decrypt", key, **dict(own, **{
        "kms:EncryptionContext:mwaa-ops:environment": "env-b"})) == IMPLICIT_DENY
    assert decision("kms:Decrypt", key, **dict(own, **{  # ForAllValues: no other key
        "kms:EncryptionContextKeys": [*own["kms:EncryptionContextKeys"], "other"],
        "kms:EncryptionContext:other": "x"})) == IMPLICIT_DENY
    no_export = {k: v for k, v in own.items() if "export-id" not in k}
    no_export["kms:EncryptionContextKeys"] = ["mwaa-ops:environment"]
    assert decision("kms:Decrypt", key, **no_export) == IMPLICIT_DENY  # Null: export id required
    assert decision("kms:Encrypt", key, **own) == IMPLICIT_DENY
