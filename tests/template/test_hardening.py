"""infra/template.yaml keeps what the suite cannot lose and keeps logs for a bounded time."""
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
