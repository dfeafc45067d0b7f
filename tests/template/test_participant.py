"""infra/participant.yaml (what each participant account deploys) and the owner's side of the
shared-VPC set-up in infra/template.yaml: lint-clean, least privilege, exactly the accounts
and the role they name."""
import subprocess
import sys
from pathlib import Path

import pytest

import template
from test_template import PARAMS, UNSCOPABLE_PREFIXES, as_list, iam_statements

PARTICIPANT = template.ROOT / "infra" / "participant.yaml"
OWNER_ROLE = "arn:aws:iam::123456789012:role/mwaa-ops-ProvisionEndpointsFunctionRole-ABC"
P_PARAMS = {"OwnerAccountId": "123456789012", "OwnerFunctionRoleArn": OWNER_ROLE,
            "ExternalId": "mwaa-ops-ext-1", "EnvironmentNamePrefix": "dev-"}
P_PSEUDO = dict(template.PSEUDO, **{"AWS::AccountId": "111111111111",
                                    "AWS::StackName": "mwaa-ops-participant"})
DOCUMENTED = {"source": ["aws.airflow"], "detail-type": ["MWAA Environment Status Change"]}
OWNER_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/default"


@pytest.fixture(scope="module")
def participant():
    cfn = template.load(PARTICIPANT)
    values = template.parameter_values(cfn, P_PARAMS)
    values.update(P_PSEUDO)
    return template.resolve(cfn, values)


def test_participant_template_is_cfn_lint_clean():
    out = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(PARTICIPANT)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_participant_iam_names_its_resources(participant):
    problems = []
    for role, st in iam_statements(participant):
        for action in as_list(st["Action"]):
            if "*" in action:
                problems.append(f"{role}: wildcard action {action}")
            if "*" in as_list(st["Resource"]) and not action.startswith(UNSCOPABLE_PREFIXES):
                problems.append(f"{role}: {action} on Resource '*'")
    assert not problems, "\n".join(problems)


def test_the_reader_role_trusts_only_the_owners_function_with_the_external_id(participant):
    role = participant["Resources"]["ReaderRole"]["Properties"]
    assert role["RoleName"] == "mwaa-ops-participant"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"AWS": OWNER_ROLE},
                     "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"sts:ExternalId": "mwaa-ops-ext-1"}}}
    statements = [st for _, st in iam_statements(participant)
                  if _ == "ReaderRole"]
    assert {(st["Action"], st["Resource"]) for st in statements} == {
        ("airflow:GetEnvironment", "arn:aws:airflow:us-east-1:111111111111:environment/dev-*"),
        ("airflow:ListEnvironments", "*"),
    }


def test_the_forward_rule_sends_the_documented_event_to_the_owners_bus_only(participant):
    res = participant["Resources"]
    rule = res["ForwardRule"]["Properties"]
    assert rule["EventPattern"] == DOCUMENTED
    [target] = rule["Targets"]
    assert target["Arn"] == OWNER_BUS
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    [put] = [st for name, st in iam_statements(participant) if name == "ForwardRole"]
    assert (put["Action"], put["Resource"]) == ("events:PutEvents", OWNER_BUS)
    [trust] = res["ForwardRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        f"arn:aws:events:us-east-1:111111111111:rule/{rule['Name']}"


@pytest.fixture(scope="module")
def owner():
    params = dict(PARAMS, ParticipantAccounts="111111111111,222222222222",
                  ParticipantExternalId="mwaa-ops-ext-1")
    cfn = template.translate(overrides=params)
    return template.resolve(cfn, template.parameter_values(cfn, params))


def test_the_owners_bus_accepts_exactly_the_listed_participants(owner):
    policy = owner["Resources"]["ParticipantEventsPolicy"]
    assert policy["Condition"] == "HasParticipants"
    st = policy["Properties"]["Statement"]
    assert (st["Effect"], st["Action"], st["Resource"]) == ("Allow", "events:PutEvents", OWNER_BUS)
    assert st["Condition"] == {"StringEquals": {
        "aws:PrincipalAccount": ["111111111111", "222222222222"]}}


def test_the_function_knows_its_participants_and_may_assume_only_their_reader_role(owner):
    props = owner["Resources"]["ProvisionEndpointsFunction"]["Properties"]
    variables = props["Environment"]["Variables"]
    assert variables["PARTICIPANT_ROLE_NAME"] == "mwaa-ops-participant"
    assert variables["PARTICIPANT_EXTERNAL_ID"] == "mwaa-ops-ext-1"
    assert variables["OWNER_ACCOUNT"] == "123456789012"
    assert variables["PARTICIPANT_ACCOUNTS"] == {"Fn::Join": [",", ["111111111111", "222222222222"]]}
    assumes = [st for name, st in iam_statements(owner)
               if name == "ProvisionEndpointsFunctionRole" and st["Action"] == "sts:AssumeRole"]
    assert [st["Resource"] for st in assumes] == ["arn:aws:iam::*:role/mwaa-ops-participant"]
    # The output participants trust is this function's role.
    assert owner["Outputs"]["ProvisionEndpointsRoleArn"]["Value"] == \
        {"Fn::GetAtt": ["ProvisionEndpointsFunctionRole", "Arn"]}


def test_the_reconciler_runs_on_the_configured_period_with_its_failures_kept(owner):
    rules = {n: r for n, r in owner["Resources"].items() if r["Type"] == "AWS::Events::Rule"
             and "ScheduleExpression" in r["Properties"]}
    [(name, rule)] = [(n, r) for n, r in rules.items() if "Reconcile" in n]
    props = rule["Properties"]
    assert props["Name"] == "mwaa-ops-reconcile-endpoints"
    assert props["ScheduleExpression"]["Fn::If"][0] == "ReconcileEveryMinute"
    assert props["ScheduleExpression"]["Fn::If"][2] == "rate(10 minutes)"
    [target] = props["Targets"]
    assert target["Input"] == '{"reconcile": {}}'
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
