"""infra/template.yaml: lint-clean, translatable offline, least privilege."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import template

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"EnvironmentNamePrefix": "dev-", "ArrivalBuckets": "landing-zone",
          "PausedEnvironments": "dev-analytics,dev_ml", "AlertEmail": "ops@example.com",
          "EnvironmentExecutionRoles": "arn:aws:iam::123456789012:role/mwaa-exec"}

# Actions AWS does not scope to resources: the only ones allowed on Resource "*".
UNSCOPABLE_PREFIXES = ("ec2:Describe", "airflow:ListEnvironments", "logs:CreateLogDelivery",
                       "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                       "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                       "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
                       "xray:PutTraceSegments", "xray:PutTelemetryRecords")


@pytest.fixture(scope="module")
def cfn():
    cfn = template.translate(overrides=PARAMS)
    return template.resolve(cfn, template.parameter_values(cfn, PARAMS))


def test_cfn_lint_is_clean():
    out = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(template.TEMPLATE)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def iam_statements(cfn):
    for name, res in cfn["Resources"].items():
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                for st in policy["PolicyDocument"]["Statement"]:
                    yield name, st
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in res["Properties"]["PolicyDocument"]["Statement"]:
                yield name, st


def as_list(v):
    return v if isinstance(v, list) else [v]


def test_every_function_has_its_role_and_binary(cfn):
    functions = {n: r for n, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert "TriggerDagFunction" in functions
    sam = template.load()
    for name, res in sam["Resources"].items():
        if isinstance(res, dict) and res["Type"] == "AWS::Serverless::Function":
            assert res["Metadata"]["BuildMethod"] == "rust-cargolambda", name
            binary = res["Metadata"]["BuildProperties"]["Binary"]
            # A crate's only binary (functions/<binary>/src/main.rs) or one of several.
            sources = [ROOT / "functions" / binary / "src" / "main.rs",
                       *(ROOT / "functions").glob(f"*/src/bin/{binary}.rs")]
            assert any(p.exists() for p in sources), binary
    for name, fn in functions.items():
        props = fn["Properties"]
        assert props["Runtime"] == "provided.al2023"
        assert props["Architectures"] == ["arm64"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"


def test_iam_names_its_resources(cfn):
    problems = []
    for role, st in iam_statements(cfn):
        if st.get("Effect") != "Allow":
            continue
        actions = as_list(st.get("Action", []))
        resources = as_list(st.get("Resource", []))
        for action in actions:
            if "*" in action:
                problems.append(f"{role}: wildcard action {action}")
        if "*" in resources:
            for action in actions:
                if not action.startswith(UNSCOPABLE_PREFIXES):
                    problems.append(f"{role}: {action} on Resource '*'")
        if "iam:PassRole" in actions and not resources:
            problems.append(f"{role}: iam:PassRole without a resource")
    assert not problems, "\n".join(problems)


def test_failed_events_are_kept_not_dropped(cfn):
    """Every function's async failures and every rule's undeliverable events reach the queue."""
    res = cfn["Resources"]
    for name, r in res.items():
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            dest = r["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
            assert dest == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}, name
        if r["Type"] == "AWS::Events::Rule":
            for target in r["Properties"]["Targets"]:
                assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}, name
    assert any(r["Type"] == "AWS::Lambda::EventInvokeConfig" for r in res.values())


def test_the_arrival_rule_listens_to_the_configured_buckets_only():
    patterns = template.rule_patterns({**PARAMS, "ArrivalBuckets": "a-bucket,b-bucket"})
    assert patterns["TriggerDagFunctionArrival"] == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["a-bucket", "b-bucket"]}}}


def test_trigger_dag_reads_the_routes_files_under_the_prefix_it_is_given_and_no_more(cfn):
    function = cfn["Resources"]["TriggerDagFunction"]["Properties"]["Environment"]["Variables"]
    prefix = function["ROUTES_PREFIX"]
    assert prefix == "routes/" and int(function["ROUTES_RELOAD_SECONDS"]) <= 60
    # An AVAILABLE answer is trusted for less than a minute (then read again).
    assert 0 < int(function["ENVIRONMENT_CACHE_SECONDS"]) <= 60
    statements = [st for role, st in iam_statements(cfn) if role == "TriggerDagFunctionRole"]
    lists = [st for st in statements if "s3:ListBucket" in as_list(st["Action"])]
    assert len(lists) == 1 and lists[0]["Resource"] == {"Fn::GetAtt": ["SuiteBucket", "Arn"]}
    # pausing/: a pause's mark, listed, never read (a read of a missing object is a 403 to a
    # role that may not list the whole bucket).
    assert lists[0]["Condition"] == {"StringLike": {"s3:prefix": ["held/*", f"{prefix}*", "pausing/*"]}}
    reads = {json.dumps(st["Resource"]) for st in statements if "s3:GetObject" in as_list(st["Action"])}
    assert reads == {json.dumps("${SuiteBucket.Arn}/held/*"), json.dumps(f"${{SuiteBucket.Arn}}/{prefix}*")}
    routes_statement = [st for st in statements if st.get("Resource") == f"${{SuiteBucket.Arn}}/{prefix}*"]
    assert [as_list(st["Action"]) for st in routes_statement] == [["s3:GetObject"]], "read only"


def test_trigger_dag_starts_runs_of_the_prefixed_serverless_workflows_only(cfn):
    statements = [st for role, st in iam_statements(cfn) if role == "TriggerDagFunctionRole"]
    serverless = [st for role, st in iam_statements(cfn)
                  if any(a.startswith("airflow-serverless:") for a in as_list(st.get("Action", [])))]
    assert len(serverless) == 1 and serverless[0] in statements, "trigger-dag's role only"
    st = serverless[0]
    assert as_list(st["Action"]) == ["airflow-serverless:StartWorkflowRun"]
    # Workflows named with the deployment's prefix, in its account and region only.
    assert st["Resource"] == "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/dev-*"
    assert "Condition" not in st


def test_rejected_routes_files_reach_notify():
    patterns = template.rule_patterns(PARAMS)
    assert patterns["NotifyFunctionRoutesRejected"] == {
        "source": ["mwaa-ops"], "detail-type": ["Routes Rejected"]}


def test_the_mwaa_rules_match_what_aws_documents_and_the_functions_know_the_prefix(cfn):
    """AWS documents the MWAA status change by source and detail-type only (no detail field,
    best effort): a rule filtering on detail.status or detail.name never matches the event
    as documented, so the functions read the status and skip other environments."""
    patterns = template.rule_patterns(PARAMS)
    documented = {"source": ["aws.airflow"], "detail-type": ["MWAA Environment Status Change"]}
    mwaa_rules = {name: p for name, p in patterns.items() if "aws.airflow" in p.get("source", [])}
    assert set(mwaa_rules) == {"ProvisionEndpointsFunctionStatusChange",
                               "NotifyFunctionEnvironmentStatus"}
    for name, pattern in mwaa_rules.items():
        assert pattern == documented, name
    for function in ("ProvisionEndpointsFunction", "NotifyFunction"):
        variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["ENVIRONMENT_NAME_PREFIX"] == PARAMS["EnvironmentNamePrefix"], function


def test_the_suite_bucket_is_private_encrypted_and_tls_only(cfn):
    bucket = cfn["Resources"]["SuiteBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = cfn["Resources"]["SuiteBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
               for s in policy)


def test_alerts_go_to_an_encrypted_topic_emailed_to_the_configured_addresses(cfn):
    res = cfn["Resources"]
    assert res["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "SuiteKey"}
    email = res["AlertEmailSubscription"]["Properties"]
    assert (email["Protocol"], email["TopicArn"]) == ("email", {"Ref": "AlertTopic"})
    # The optional subscriptions exist only when their parameter is set.
    assert res["SecondAlertEmailSubscription"]["Condition"] == "HasSecondAlertEmail"
    assert res["AlertHttpsSubscription"]["Properties"]["Protocol"] == "https"
    assert res["AlertHttpsSubscription"]["Condition"] == "HasAlertHttpsEndpoint"


def test_notify_drains_the_failed_events_queue_and_keeps_what_it_could_not_send(cfn):
    res = cfn["Resources"]
    mappings = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    queue = [m for m in mappings if m["EventSourceArn"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}]
    assert len(queue) == 1, mappings
    assert queue[0]["FunctionName"] == {"Ref": "NotifyFunction"}
    assert queue[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    timeout = res["NotifyFunction"]["Properties"]["Timeout"]
    assert res["FailedEventsQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout
    rules = {n for n, r in res.items() if r["Type"] == "AWS::Events::Rule"
             and any(t["Arn"] == {"Fn::GetAtt": ["NotifyFunction", "Arn"]} for t in r["Properties"]["Targets"])}
    assert rules == {"NotifyFunctionExecutionEnded", "NotifyFunctionEnvironmentStatus",
                     "NotifyFunctionMetadataFailed", "NotifyFunctionRoutesRejected",
                     "NotifyFunctionResumeSucceeded"}


def test_the_morning_digest_hears_every_resume_end_and_reads_only_what_it_needs(cfn):
    res = cfn["Resources"]
    resume = "arn:aws:states:us-east-1:123456789012:stateMachine:mwaa-ops-resume"
    pattern = res["NotifyFunctionResumeSucceeded"]["Properties"]["EventPattern"]
    assert pattern["detail"] == {"status": ["SUCCEEDED"], "stateMachineArn": [resume]}
    ended = res["NotifyFunctionExecutionEnded"]["Properties"]["EventPattern"]["detail"]
    assert set(ended["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}, "failed resumes reach the digest there"
    variables = res["NotifyFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["RESUME_STATE_MACHINE_ARN"] == resume
    # DigestTopicArn or else the alert topic; notify may publish to both, to nothing else.
    chosen = variables["DIGEST_TOPIC_ARN"]["Fn::If"]
    assert (chosen[0], chosen[2]) == ("HasDigestTopic", variables["TOPIC_ARN"])
    assert cfn["Conditions"]["HasDigestTopic"] == {"Fn::Not": [{"Fn::Equals": [chosen[1], ""]}]}
    assert "DIGEST_PRICES" in variables
    statements = {s["Sid"]: s for p in res["NotifyFunctionRole"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"] if "Sid" in s}
    send = statements["SendAlerts"]["Resource"]["Fn::If"]
    assert send == ["HasDigestTopic", [variables["TOPIC_ARN"], chosen[1]], variables["TOPIC_ARN"]]
    assert (statements["ReadTheMorningsResumes"]["Action"], statements["ReadTheMorningsResumes"]["Resource"]) == \
        ("states:ListExecutions", resume)
    assert statements["ReadResumesAndPauses"]["Action"] == "states:DescribeExecution"
    assert statements["ReadResumesAndPauses"]["Resource"] == [
        "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-resume:*",
        "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:*"]
    assert statements["ReadSnapshotRecords"]["Action"] == "s3:GetObject"
    assert statements["ReadSnapshotRecords"]["Resource"].endswith("/snapshots/*/latest.json")
    assert statements["RememberSentDigests"]["Resource"].endswith("/digests/*")
    assert statements["ReadSavedConfigurations"]["Action"] == "s3:GetObject"
    assert statements["ReadSavedConfigurations"]["Resource"].endswith("/configurations/*")
    # the marker is written with If-None-Match (no other action) and given back when SNS refused
    assert statements["RememberSentDigests"]["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


def test_what_notify_cannot_report_moves_on_to_an_alarmed_queue(cfn):
    res = cfn["Resources"]
    redrive = res["FailedEventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["UnreportedEventsQueue", "Arn"]}
    assert redrive["maxReceiveCount"] >= 10
    alarm = res["UnreportedEventsAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["UnreportedEventsQueue", "QueueName"]}
    assert {"Ref": "AlertTopic"} in alarm["AlarmActions"]
    key = res["SuiteKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any("cloudwatch.amazonaws.com" in s["Principal"].get("Service", []) for s in key
               if isinstance(s["Principal"], dict)), "alarms publish to the encrypted topic"


def test_the_scheduler_role_can_only_invoke_notify(cfn):
    role = cfn["Resources"]["NotifySchedulerRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert [s["Resource"] for s in invoke] == ["arn:aws:lambda:us-east-1:123456789012:function:mwaa-ops-notify"]
    assert cfn["Resources"]["NotifyFunction"]["Properties"]["FunctionName"] == "mwaa-ops-notify"
    # ... and its one-time schedules dead-letter to the failed-events queue.
    assert {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]} in [s["Resource"] for s in statements]


def test_roles_are_passed_only_to_their_service(cfn):
    """iam:PassRole names the roles and the one service each may go to."""
    passes = {role: st for role, st in iam_statements(cfn) if "iam:PassRole" in as_list(st.get("Action", []))}
    assert set(passes) == {"NotifyFunctionRole", "CreateEnvironmentFunctionRole"}, passes
    notify, create = passes["NotifyFunctionRole"], passes["CreateEnvironmentFunctionRole"]
    assert notify["Resource"] == {"Fn::GetAtt": ["NotifySchedulerRole", "Arn"]}
    assert notify["Condition"]["StringEquals"]["iam:PassedToService"] == "scheduler.amazonaws.com"
    assert create["Resource"] == ["arn:aws:iam::123456789012:role/mwaa-exec"]
    assert create["Condition"]["StringEquals"]["iam:PassedToService"] == "airflow.amazonaws.com"


def test_samconfig_points_at_the_template():
    import tomllib
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["build"]["parameters"]["template_file"] == "infra/template.yaml"
    assert "prod" in config
    json.dumps(config)


def test_sam_build_can_read_the_template():
    """sam build (SAM CLI 1.170) fails on Fn::ForEach ('list' object has no attribute 'get',
    aws-sam-cli#5647), and with it the README's deploy: keep language extensions out."""
    raw = template.load()
    assert not [k for k in raw["Resources"] if k.startswith("Fn::ForEach")]
    transforms = raw["Transform"] if isinstance(raw["Transform"], list) else [raw["Transform"]]
    assert "AWS::LanguageExtensions" not in transforms


METRICS_RS = ROOT / "functions" / "common" / "src" / "metrics.rs"


def emitted_metrics():
    """The catalog in common::metrics, keeping only the metrics some function emits (a
    catalog constant no function uses would be a dashboard line that stays empty)."""
    import re
    text = METRICS_RS.read_text()
    catalog = dict(re.findall(r'pub const (\w+): Metric =\s*metric\(\s*"(\w+)"', text))
    listed = re.search(r"pub const CATALOG: &\[Metric\] = &\[([^\]]*)\]", text).group(1)
    assert sorted(re.findall(r"\w+", listed)) == sorted(catalog), "every metric constant is in CATALOG"
    sources = [p.read_text() for p in (ROOT / "functions").rglob("*.rs") if p != METRICS_RS]
    used = {const for const in catalog if any(re.search(rf"\b{const}\b", src) for src in sources)}
    return {catalog[c] for c in used}, set(catalog.values())


def test_the_dashboard_references_only_metrics_the_functions_emit(cfn):
    import re
    emitted, catalog = emitted_metrics()
    assert len(catalog) == 21 and emitted == catalog, f"in the catalog but emitted by no function: {catalog - emitted}"
    dashboards = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1, "one dashboard per stack"
    body = json.loads(dashboards[0]["Properties"]["DashboardBody"])
    namespaces, names = set(), set()
    for widget in body["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            for item in line:
                if isinstance(item, dict) and "expression" in item:
                    found = re.findall(r"SEARCH\('\{([^,]+),Environment,Function\} MetricName=\"(\w+)\"", item["expression"])
                    assert found, item["expression"]
                    for namespace, name in found:
                        namespaces.add(namespace)
                        names.add(name)
                else:
                    assert isinstance(item, dict), f"a plain metric line {line}: use SEARCH over the emitted ones"
    assert names <= emitted, f"the dashboard shows metrics no function emits: {names - emitted}"
    assert names == emitted, f"emitted but not on the dashboard: {emitted - names}"
    variables = cfn["Resources"]["TriggerDagFunction"]["Properties"]["Environment"]["Variables"]
    assert namespaces == {variables["METRICS_NAMESPACE"]} == {"mwaa-ops/mwaa-ops"}, namespaces
    functions = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert all(f["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"] == "mwaa-ops/mwaa-ops"
               for f in functions), "every function writes to the dashboard's namespace"
