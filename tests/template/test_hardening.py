"""infra/template.yaml keeps what the suite cannot lose and keeps logs for a bounded time."""
import json
import re

import pytest

import template

PARAMS = {"EnvironmentNamePrefix": "dev-", "ArrivalBuckets": "landing-zone",
          "PausedEnvironments": "dev-analytics", "AlertEmail": "ops@example.com",
          "EnvironmentExecutionRoles": "arn:aws:iam::123456789012:role/mwaa-exec"}


@pytest.fixture(scope="module")
def cfn():
    cfn = template.translate(overrides=PARAMS)
    return template.resolve(cfn, template.parameter_values(cfn, PARAMS))


def test_the_key_and_the_bucket_outlive_the_stack(cfn):
    # Deleting the stack must not schedule the key's deletion: every export, saved
    # configuration and held arrival is encrypted with it.
    for name in ("SuiteKey", "SuiteBucket"):
        res = cfn["Resources"][name]
        assert res.get("DeletionPolicy") == "Retain", name
        assert res.get("UpdateReplacePolicy") == "Retain", name


def test_every_function_logs_to_its_own_group_with_a_retention(cfn):
    resources = cfn["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == 10
    groups = set()
    for name, fn in functions.items():
        logging = fn["Properties"]["LoggingConfig"]
        # The function's group and the Globals' JSON format, merged (not one replacing the other).
        assert logging["LogFormat"] == "JSON", name
        group = logging["LogGroup"]
        assert isinstance(group, dict) and "Ref" in group, (name, group)
        target = resources[group["Ref"]]
        assert target["Type"] == "AWS::Logs::LogGroup", name
        assert target["Properties"]["RetentionInDays"] == 90, name
        groups.add(group["Ref"])
    assert len(groups) == len(functions), "each function has a group of its own"
    for name, res in resources.items():
        if res["Type"] == "AWS::Logs::LogGroup":
            assert res["Properties"].get("RetentionInDays") == 90, name
            assert res["Properties"].get("KmsKeyId") == {"Fn::GetAtt": ["SuiteKey", "Arn"]}, name
    key = resources["SuiteKey"]["Properties"]["KeyPolicy"]["Statement"]
    logs = [st for st in key if st["Principal"].get("Service") == "logs.us-east-1.amazonaws.com"]
    assert len(logs) == 1 and "log-group:*" in json.dumps(logs[0]["Condition"]["ArnLike"])


def test_the_retention_is_a_parameter():
    params = template.load()["Parameters"]
    assert params["LogRetentionDays"]["Default"] == 90
    assert 3653 in params["LogRetentionDays"]["AllowedValues"]


def test_incomplete_uploads_are_aborted(cfn):
    rules = cfn["Resources"]["SuiteBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert aborts and aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert aborts[0]["Status"] == "Enabled" and "Prefix" not in aborts[0]


@pytest.mark.parametrize("value,ok", [
    ("arn:aws:iam::123456789012:role/mwaa-exec", True),
    ("arn:aws:iam::123456789012:role/service-role/AmazonMWAA-dev-abc123", True),
    ("arn:aws-cn:iam::123456789012:role/x", True),
    ("arn:aws:iam::123456789012:role/*", False),
    ("*", False),
    ("arn:aws:iam::12345:role/x", False),
    ("mwaa-exec", False),
])
def test_execution_roles_must_be_role_arns(value, ok):
    # iam:PassRole is limited to these ARNs: a wildcard here would let resume pass any role.
    pattern = template.load()["Parameters"]["EnvironmentExecutionRoles"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


@pytest.mark.parametrize("value,ok", [
    ("", True),
    ("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
    ("arn:aws:kms:eu-west-1:123456789012:key/*", False),
    ("*", False),
])
def test_environment_keys_must_be_key_arns_or_none(value, ok):
    pattern = template.load()["Parameters"]["EnvironmentKmsKeys"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


# The services through which each function, state machine and scheduler uses the suite key.
SUITE_KEY_ROLES = 10


def suite_key_statements(cfn):
    for name, res in cfn["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st.get("Action", [])
                actions = actions if isinstance(actions, list) else [actions]
                if any(a.startswith("kms:") for a in actions) and "SuiteKey" in json.dumps(st["Resource"]):
                    yield name, actions, st


def test_the_suite_key_is_used_only_through_the_services_that_hold_its_data(cfn):
    statements = list(suite_key_statements(cfn))
    assert len(statements) >= SUITE_KEY_ROLES
    for role, _, st in statements:
        via = st.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
        assert via, f"{role}: kms on the suite key without kms:ViaService"
        for service in via:
            assert re.fullmatch(r"(s3|sqs|sns)\.us-east-1\.amazonaws\.com", service), (role, service)


def test_roles_that_only_read_cannot_encrypt(cfn):
    # A role that never writes an object, sends a message or publishes has no use for
    # GenerateDataKey: with it, a stolen role could seal data as the suite.
    writers = {"s3:PutObject", "sqs:SendMessage", "sns:Publish"}
    for role, actions, _ in suite_key_statements(cfn):
        role_actions = set()
        for policy in cfn["Resources"][role]["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                acts = st.get("Action", [])
                role_actions.update(acts if isinstance(acts, list) else [acts])
        destinations = any(
            r["Type"] == "AWS::Lambda::EventInvokeConfig"
            and json.dumps(r["Properties"]["FunctionName"]).find(role.removesuffix("Role")) >= 0
            for r in cfn["Resources"].values())
        if not (role_actions & writers) and not destinations:
            assert "kms:GenerateDataKey" not in actions, role


def test_a_broken_alert_path_still_reaches_people(cfn):
    resources = cfn["Resources"]
    alarm = resources["NotifyErrorsAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/Lambda" and alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"][0]["Value"] == {"Ref": "NotifyFunction"}
    for name in ("NotifyErrorsAlarm", "UnreportedEventsAlarm"):
        topics = [a["Ref"] for a in resources[name]["Properties"]["AlarmActions"]]
        fallback = [t for t in topics if "KmsMasterKeyId" not in resources[t]["Properties"]]
        assert fallback, f"{name}: every action topic needs the suite key"
        subscribed = [r["Properties"]["Endpoint"] for r in resources.values()
                      if r["Type"] == "AWS::SNS::Subscription"
                      and r["Properties"]["TopicArn"] == {"Ref": fallback[0]}]
        assert "ops@example.com" in subscribed, name


def test_notify_may_drain_only_the_failed_events_queue(cfn):
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            managed = json.dumps(res["Properties"].get("ManagedPolicyArns", []))
            assert "AWSLambdaSQSQueueExecutionRole" not in managed, name
    statements = [st for policy in cfn["Resources"]["NotifyFunctionRole"]["Properties"]["Policies"]
                  for st in policy["PolicyDocument"]["Statement"]]
    sqs = [st for st in statements
           if any(a.startswith("sqs:") for a in (st["Action"] if isinstance(st["Action"], list)
                                                  else [st["Action"]]))]
    receive = [st for st in sqs if "sqs:ReceiveMessage" in st["Action"]]
    assert len(receive) == 1
    assert receive[0]["Resource"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    assert {"sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(receive[0]["Action"])


def test_the_failed_events_queue_takes_dead_letters_from_the_suites_rules_only(cfn):
    import fnmatch
    resources = cfn["Resources"]
    [statement] = resources["FailedEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    pattern = statement["Condition"]["ArnLike"]["aws:SourceArn"]
    dead_lettering = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"
                      and any("DeadLetterConfig" in t for t in r["Properties"]["Targets"])]
    # arrival, status change and reconcile schedule (provision-endpoints), notify's four
    # (one: Routes Rejected), and the morning digest's resume-succeeded rule
    assert len(dead_lettering) == 8
    for rule in dead_lettering:
        arn = f"arn:aws:events:us-east-1:123456789012:rule/{rule['Properties']['Name']}"
        assert fnmatch.fnmatchcase(arn, pattern), (arn, pattern)
        assert len(rule["Properties"]["Name"]) <= 64
    assert not fnmatch.fnmatchcase("arn:aws:events:us-east-1:123456789012:rule/someone-elses",
                                   pattern)


def role_statements(cfn, role):
    for policy in cfn["Resources"][role]["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def test_each_function_may_log_only_to_its_own_group(cfn):
    # SAM attaches AWSLambdaBasicExecutionRole (logs on "*") to every role it makes; an
    # explicit deny outside the function's own group takes that back.
    resources = cfn["Resources"]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    for name, fn in functions.items():
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        denies = [st for st in role_statements(cfn, role) if st.get("Effect") == "Deny"
                  and "logs:PutLogEvents" in st.get("Action", [])]
        assert len(denies) == 1, name
        [deny] = denies
        assert set(deny["Action"]) == {"logs:CreateLogGroup", "logs:CreateLogStream",
                                       "logs:PutLogEvents"}, name
        assert "Resource" not in deny, name
        # Only the function's own group (its streams and the group itself) stays allowed.
        assert deny["NotResource"][0] == {"Fn::GetAtt": [group, "Arn"]}, name
        assert json.dumps(deny["NotResource"]).count("log-group:") == 1, name
        assert f"${{{group}}}" in deny["NotResource"][1], name
        others = [g for g in resources if resources[g]["Type"] == "AWS::Logs::LogGroup" and g != group]
        assert not any(g in json.dumps(deny["NotResource"]) for g in others), name


def context_conditions(st):
    return {key: value for block in st.get("Condition", {}).values()
            for key, value in block.items() if key.startswith("kms:EncryptionContext:")}


def test_the_suite_key_is_used_only_for_the_suites_own_bucket_queue_and_topic(cfn):
    # Each service passes the resource it encrypts for as encryption context: with a
    # condition on it, a stolen role cannot use the key through S3 (or SQS, SNS) for a
    # bucket (queue, topic) of its own choosing.
    expected = {
        "s3": ("kms:EncryptionContext:aws:s3:arn",
               [{"Fn::GetAtt": ["SuiteBucket", "Arn"]}, "${SuiteBucket.Arn}/*"]),
        "sqs": ("kms:EncryptionContext:aws:sqs:arn", {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}),
        "sns": ("kms:EncryptionContext:aws:sns:topicArn", {"Ref": "AlertTopic"}),
    }
    statements = list(suite_key_statements(cfn))
    statements += [("OperatorPolicy", None, st) for st in
                   cfn["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
                   if "SuiteKey" in json.dumps(st.get("Resource"))]
    seen = set()
    for role, _, st in statements:
        [via] = st["Condition"]["StringEquals"]["kms:ViaService"]
        service = via.split(".")[0]
        key, value = expected[service]
        assert context_conditions(st) == {key: value}, (role, st)
        seen.add(service)
    assert seen == {"s3", "sqs", "sns"}


def test_dead_letters_of_the_schedules_come_through_their_own_roles(cfn):
    # EventBridge Scheduler sends a schedule's dead letters with the schedule's execution role
    # (no resource-policy grant); the queue's policy lets in no service but EventBridge for
    # the suite's rules.
    resources = cfn["Resources"]
    schedules = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert len(schedules) == 2
    roles = {s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules}
    roles.add("NotifySchedulerRole")  # the pending-alert schedules notify creates
    for role in roles:
        trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [st["Principal"] for st in trust] == [{"Service": "scheduler.amazonaws.com"}], role
        assert trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012", role
        sends = [st for st in role_statements(cfn, role) if "sqs:SendMessage" in as_list(st["Action"])]
        assert [st["Resource"] for st in sends] == [{"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}], role
    policy = resources["FailedEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [st["Principal"] for st in policy] == [{"Service": "events.amazonaws.com"}]


def as_list(value):
    return value if isinstance(value, list) else [value]


def allowed(statements):
    """(action, resource) pairs an Allow grants, resources as JSON text."""
    pairs = set()
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                pairs.add((action, json.dumps(resource)))
    return pairs


def test_the_state_machines_invoke_their_own_steps_and_write_only_their_records(cfn):
    steps = {
        "PauseStateMachineRole": {"EnvironmentStatusFunction", "SaveConfigurationFunction",
                                  "RunDagFunction", "VerifyExportFunction",
                                  "DeleteEnvironmentFunction", "EnableDagsFunction",
                                  # the replay of what was held when a pause ends leaving the
                                  # environment up
                                  "TriggerDagFunction"},
        "ResumeStateMachineRole": {"EnvironmentStatusFunction", "CreateEnvironmentFunction",
                                   "RunDagFunction", "EnableDagsFunction", "TriggerDagFunction"},
        "ScheduleStateMachineRole": set(),
    }
    writes = {
        "PauseStateMachineRole": {("s3:PutObject", '"${SuiteBucket.Arn}/snapshots/*"'),
                                  ("s3:DeleteObject", '"${SuiteBucket.Arn}/overrides/*"'),
                                  # the pausing mark trigger-dag honours
                                  ("s3:PutObject", '"${SuiteBucket.Arn}/pausing/*"'),
                                  ("s3:DeleteObject", '"${SuiteBucket.Arn}/pausing/*"')},
        "ResumeStateMachineRole": {("s3:PutObject", '"${SuiteBucket.Arn}/snapshots/*/restored.json"'),
                                   ("s3:DeleteObject", '"${SuiteBucket.Arn}/pausing/*"')},
        "ScheduleStateMachineRole": set(),
    }
    for role, functions in steps.items():
        pairs = allowed(role_statements(cfn, role))
        invoked = {json.loads(r)["Fn::Sub"][1]["functionName"]["Ref"]
                   for a, r in pairs if a == "lambda:InvokeFunction"}
        assert invoked == functions, role
        s3 = {(a, r) for a, r in pairs if a.startswith("s3:")}
        assert s3 == writes[role], role
        services = {a.split(":")[0] for a, _ in pairs}
        assert services <= {"lambda", "s3", "kms", "events", "logs", "states"}, (role, services)
    schedule = allowed(role_statements(cfn, "ScheduleStateMachineRole"))
    assert {(a, r) for a, r in schedule if a.startswith("states:")} == {
        ("states:StartExecution", '{"Ref": "PauseStateMachine"}'),
        ("states:StartExecution", '{"Ref": "ResumeStateMachine"}')}


def test_an_operator_steers_but_reads_no_export_configuration_or_held_arrival(cfn):
    policy = cfn["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    pairs = allowed(policy)
    s3 = {(a, r) for a, r in pairs if a.startswith("s3:")}
    assert s3 == {("s3:GetObject", '"${SuiteBucket.Arn}/overrides/*"'),
                  ("s3:PutObject", '"${SuiteBucket.Arn}/overrides/*"'),
                  ("s3:DeleteObject", '"${SuiteBucket.Arn}/overrides/*"'),
                  ("s3:GetObject", '"${SuiteBucket.Arn}/snapshots/*"'),
                  ("s3:ListBucket", '{"Fn::GetAtt": ["SuiteBucket", "Arn"]}')}
    [listing] = [st for st in policy if st.get("Sid") == "ListHeldAndSnapshots"]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["held/*", "snapshots/*", "overrides/*"]
    assert {(a, r) for a, r in pairs if a.startswith("lambda:")} == {
        ("lambda:InvokeFunction", '{"Fn::GetAtt": ["TriggerDagFunction", "Arn"]}')}
    assert {a for a, _ in pairs if a.startswith("states:")} == {
        "states:StartExecution", "states:ListExecutions", "states:DescribeExecution"}
    services = {a.split(":")[0] for a, _ in pairs}
    assert services == {"cloudformation", "airflow", "states", "s3", "kms", "lambda"}
    assert not any(a.startswith(("iam:", "airflow:Create", "airflow:Delete", "airflow:Update",
                                 "sqs:", "sns:")) for a, _ in pairs)
