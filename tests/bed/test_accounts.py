"""The bed's accounts: moto (through moto_accounts.py) keeps AWS's trust and bus-policy rules,
and the local MWAA control plane keeps each account's environments apart.

Run: .bed/venv/bin/python -m pytest tests/bed/test_accounts.py
"""
from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import mwaa_local
from moto_bed import Moto

REGION, OWNER = "us-east-1", "123456789012"
PARTICIPANT, OTHER = "111111111111", "222222222222"
TESTING = {"region_name": REGION, "aws_access_key_id": "testing",
           "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto():
    m = Moto(Path(tempfile.mkdtemp(prefix="mwaa-ops-accounts-")))
    m.start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def fresh(moto):
    moto.reset()


def client(moto, service, account=None, creds=None):
    c = boto3.client(service, endpoint_url=moto.url,
                     **(creds or TESTING))
    if account:
        c.meta.events.register("before-sign.*.*", lambda request, **_:
                               request.headers.__setitem__("x-moto-account-id", account))
    return c


def as_creds(assumed):
    c = assumed["Credentials"]
    return {"region_name": REGION, "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}


def trust(principal, external_id=None):
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def owner_function_session(moto):
    """Credentials of a session of the owner's function role (as Lambda would give them)."""
    iam = client(moto, "iam")
    iam.create_role(RoleName="owner-function", AssumeRolePolicyDocument=trust(OWNER))
    return as_creds(client(moto, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{OWNER}:role/owner-function", RoleSessionName="function"))


def test_assume_role_into_another_account_gives_that_accounts_credentials(moto):
    session = owner_function_session(moto)
    client(moto, "iam", PARTICIPANT).create_role(
        RoleName="reader", AssumeRolePolicyDocument=trust(
            f"arn:aws:iam::{OWNER}:role/owner-function", "ext-1"))
    out = client(moto, "sts", creds=session).assume_role(
        RoleArn=f"arn:aws:iam::{PARTICIPANT}:role/reader", RoleSessionName="reader",
        ExternalId="ext-1")
    who = client(moto, "sts", creds=as_creds(out)).get_caller_identity()
    assert who["Account"] == PARTICIPANT
    assert who["Arn"] == f"arn:aws:sts::{PARTICIPANT}:assumed-role/reader/reader"
    # And the participant's resources are what that session sees.
    client(moto, "sqs", PARTICIPANT).create_queue(QueueName="only-in-participant")
    urls = client(moto, "sqs", creds=as_creds(out)).list_queues().get("QueueUrls", [])
    assert [u.rsplit("/", 2)[1:] for u in urls] == [[PARTICIPANT, "only-in-participant"]]
    assert "QueueUrls" not in client(moto, "sqs").list_queues()


@pytest.mark.parametrize("case", ["wrong external id", "no external id", "another caller",
                                  "no such role", "org condition"])
def test_assume_role_the_trust_policy_does_not_allow_is_access_denied(moto, case):
    session = owner_function_session(moto)
    iam = client(moto, "iam", PARTICIPANT)
    principal = f"arn:aws:iam::{OWNER}:role/owner-function"
    if case == "org condition":
        iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps({
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal},
                           "Action": "sts:AssumeRole",
                           "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}}]}))
    elif case != "no such role":
        iam.create_role(RoleName="reader", AssumeRolePolicyDocument=trust(principal, "ext-1"))
    creds = session
    if case == "another caller":
        client(moto, "iam").create_role(RoleName="someone", AssumeRolePolicyDocument=trust(OWNER))
        creds = as_creds(client(moto, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{OWNER}:role/someone", RoleSessionName="someone"))
    args = {"RoleArn": f"arn:aws:iam::{PARTICIPANT}:role/reader", "RoleSessionName": "reader"}
    if case != "no external id":
        args["ExternalId"] = "wrong" if case == "wrong external id" else "ext-1"
    with pytest.raises(ClientError) as err:
        client(moto, "sts", creds=creds).assume_role(**args)
    e = err.value.response
    assert e["Error"]["Code"] == "AccessDenied", e
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 403, e
    assert "is not authorized to perform: sts:AssumeRole on resource: " \
           f"arn:aws:iam::{PARTICIPANT}:role/reader" in e["Error"]["Message"], e


def forwarding(moto, bus_policy_account):
    """A participant rule forwarding to the owner's default bus; the owner's rule to a queue."""
    client(moto, "iam", PARTICIPANT).create_role(
        RoleName="forward", AssumeRolePolicyDocument=json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))
    pe = client(moto, "events", PARTICIPANT)
    pe.put_rule(Name="forward", EventPattern=json.dumps({"source": ["aws.airflow"]}))
    pe.put_targets(Rule="forward", Targets=[{
        "Id": "owner", "Arn": f"arn:aws:events:{REGION}:{OWNER}:event-bus/default",
        "RoleArn": f"arn:aws:iam::{PARTICIPANT}:role/forward"}])
    oe, sqs = client(moto, "events"), client(moto, "sqs")
    if bus_policy_account:
        oe.put_permission(EventBusName="default", Action="events:PutEvents",
                          Principal=bus_policy_account, StatementId="participant")
    url = sqs.create_queue(QueueName="owner-rule")["QueueUrl"]
    oe.put_rule(Name="owner", EventPattern=json.dumps({"source": ["aws.airflow"]}))
    oe.put_targets(Rule="owner", Targets=[{"Id": "q",
                                           "Arn": f"arn:aws:sqs:{REGION}:{OWNER}:owner-rule"}])
    pe.put_events(Entries=[{"Source": "aws.airflow", "DetailType": "MWAA Environment Status Change",
                            "Detail": "{}", "Resources": [
                                f"arn:aws:airflow:{REGION}:{PARTICIPANT}:environment/analytics"]}])
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def test_a_forwarded_event_keeps_its_account_and_resources(moto):
    [event] = forwarding(moto, PARTICIPANT)
    assert event["account"] == PARTICIPANT
    assert event["resources"] == [f"arn:aws:airflow:{REGION}:{PARTICIPANT}:environment/analytics"]
    assert event["detail"] == {}


@pytest.mark.parametrize("allowed", [OTHER, None])
def test_a_bus_whose_policy_does_not_allow_the_sender_gets_nothing(moto, allowed):
    assert forwarding(moto, allowed) == []
    with urllib.request.urlopen(f"{moto.url}/moto-api/refused-events") as r:
        refused = json.loads(r.read())
    assert len(refused) == 1 and refused[0]["event"]["account"] == PARTICIPANT


def test_the_control_plane_keeps_each_accounts_environments(moto):
    plane = mwaa_local.serve(moto_url=moto.url, region=REGION, account=OWNER)
    try:
        plane.plane.store.configure({"create_delay": 0.2})
        session = owner_function_session(moto)
        for account in (PARTICIPANT, OTHER):
            client(moto, "iam", account).create_role(
                RoleName="reader", AssumeRolePolicyDocument=trust(OWNER))

        def mwaa(account=None):
            creds = TESTING
            if account:
                creds = as_creds(client(moto, "sts", creds=session).assume_role(
                    RoleArn=f"arn:aws:iam::{account}:role/reader", RoleSessionName="mwaa"))
            return boto3.client("mwaa", endpoint_url=plane.url,
                                config=Config(inject_host_prefix=False), **creds)

        network = {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
        base = {"ExecutionRoleArn": f"arn:aws:iam::{OWNER}:role/x",
                "SourceBucketArn": "arn:aws:s3:::b", "DagS3Path": "dags",
                "NetworkConfiguration": network}
        arns = {a: mwaa(a).create_environment(Name="analytics", **base)["Arn"]
                for a in (PARTICIPANT, OTHER)}
        assert arns[PARTICIPANT] == f"arn:aws:airflow:{REGION}:{PARTICIPANT}:environment/analytics"
        assert arns[OTHER].split(":")[4] == OTHER
        assert mwaa().list_environments()["Environments"] == []
        assert mwaa(PARTICIPANT).list_environments()["Environments"] == ["analytics"]
        env = mwaa(OTHER).get_environment(Name="analytics")["Environment"]
        assert env["CeleryExecutorQueue"].split(":")[4] == OTHER
        with pytest.raises(ClientError) as err:
            mwaa().get_environment(Name="analytics")
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        deadline = time.time() + 10
        while time.time() < deadline and \
                mwaa(OTHER).get_environment(Name="analytics")["Environment"]["Status"] != "AVAILABLE":
            time.sleep(0.1)
        mwaa(OTHER).delete_environment(Name="analytics")
        deadline = time.time() + 10
        while time.time() < deadline and "analytics" in mwaa(OTHER).list_environments()["Environments"]:
            time.sleep(0.1)
        assert mwaa(PARTICIPANT).get_environment(Name="analytics")["Environment"]["Name"] \
            == "analytics"
        # Each account's events carry its own environment's ARN, on its own bus.
        events = plane.plane.events()
        assert {e["account"] for e in events} == {PARTICIPANT, OTHER}
        assert all(e["resources"][0].split(":")[4] == e["account"] for e in events)
    finally:
        plane.shutdown()
