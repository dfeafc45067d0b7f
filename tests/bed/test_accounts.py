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


def allow(*actions, resource="*", **extra):
    """An identity policy document allowing ``actions`` on ``resource``."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": list(actions), "Resource": resource, **extra}]})


def owner_function_session(moto, name="owner-function"):
    """Credentials of a session of the owner's function role (as Lambda would give them); the
    role may assume any role (the bed holds the session to that)."""
    iam = client(moto, "iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(OWNER))
    iam.put_role_policy(RoleName=name, PolicyName="assume", PolicyDocument=allow(
        "sts:AssumeRole"))
    return as_creds(client(moto, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{OWNER}:role/{name}", RoleSessionName="function"))


def test_assume_role_into_another_account_gives_that_accounts_credentials(moto):
    session = owner_function_session(moto)
    client(moto, "iam", PARTICIPANT).create_role(
        RoleName="reader", AssumeRolePolicyDocument=trust(
            f"arn:aws:iam::{OWNER}:role/owner-function", "ext-1"))
    client(moto, "iam", PARTICIPANT).put_role_policy(
        RoleName="reader", PolicyName="list", PolicyDocument=allow("sqs:ListQueues"))
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
    if case == "another caller":  # its own policy lets it: the trust refuses
        creds = owner_function_session(moto, "someone")
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
            client(moto, "iam", account).put_role_policy(
                RoleName="reader", PolicyName="mwaa",
                PolicyDocument=allow("airflow:*", "iam:PassRole"))

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


# ---- sessions held to their role's statements (moto_accounts._hold_session_to_role) --------

def reader_session(moto, policy=None, managed=None, session_name="reader"):
    """A session of PARTICIPANT's ``reader`` (its inline ``policy``, a managed policy
    ``managed`` attached), assumed by the owner's function."""
    iam = client(moto, "iam", PARTICIPANT)
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=trust(
        f"arn:aws:iam::{OWNER}:role/owner-function"))
    if policy:
        iam.put_role_policy(RoleName="reader", PolicyName="inline", PolicyDocument=policy)
    if managed:
        arn = iam.create_policy(PolicyName="managed", PolicyDocument=managed)["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="reader", PolicyArn=arn)
    return as_creds(client(moto, "sts", creds=owner_function_session(moto)).assume_role(
        RoleArn=f"arn:aws:iam::{PARTICIPANT}:role/reader", RoleSessionName=session_name))


def refusal(call):
    with pytest.raises(ClientError) as err:
        call()
    e = err.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def test_a_session_is_held_to_its_roles_inline_and_managed_statements(moto):
    session = reader_session(
        moto, policy=allow("sqs:ListQueues"),
        managed=allow("sqs:CreateQueue", resource=f"arn:aws:sqs:*:{PARTICIPANT}:allowed-*"))
    sqs = client(moto, "sqs", creds=session)
    sqs.list_queues()
    sqs.create_queue(QueueName="allowed-1")
    code, status, message = refusal(lambda: sqs.create_queue(QueueName="other"))
    assert (code, status) == ("AccessDeniedException", 403)
    assert message == (
        f"User: arn:aws:sts::{PARTICIPANT}:assumed-role/reader/reader is not authorized to "
        f"perform: sqs:CreateQueue on resource: arn:aws:sqs:{REGION}:{PARTICIPANT}:other "
        "because no identity-based policy allows the sqs:CreateQueue action")
    # Each service's own refusal; GetCallerIdentity needs no permission.
    assert refusal(lambda: client(moto, "sns", creds=session).list_topics())[:2] == \
        ("AuthorizationError", 403)
    assert client(moto, "sts", creds=session).get_caller_identity()["Account"] == PARTICIPANT
    with urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused") as r:
        refused = json.loads(r.read())
    assert [(x["role"], x["action"]) for x in refused] == \
        [("reader", "sqs:CreateQueue"), ("reader", "sns:ListTopics")]


def test_a_session_of_a_role_without_policies_may_do_nothing_and_a_deny_wins(moto):
    bare = reader_session(moto)
    assert refusal(lambda: client(moto, "sqs", creds=bare).list_queues())[:2] == \
        ("AccessDeniedException", 403)
    moto.reset()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalAccount": PARTICIPANT}}},
        {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"}]})
    sqs = client(moto, "sqs", creds=reader_session(moto, policy=policy))
    url = sqs.create_queue(QueueName="kept")["QueueUrl"]
    code, _, message = refusal(lambda: sqs.delete_queue(QueueUrl=url))
    assert code == "AccessDeniedException" and "with an explicit deny" in message, message


def test_a_session_reading_mwaa_is_held_to_its_role(moto):
    plane = mwaa_local.serve(moto_url=moto.url, region=REGION, account=OWNER)
    try:
        session = reader_session(moto, policy=allow(
            "airflow:GetEnvironment",
            resource=f"arn:aws:airflow:{REGION}:{PARTICIPANT}:environment/pe-*"))
        mwaa = boto3.client("mwaa", endpoint_url=plane.url,
                            config=Config(inject_host_prefix=False), **session)
        with pytest.raises(ClientError) as err:
            mwaa.get_environment(Name="pe-x")  # allowed: MWAA's own answer
        assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
        for call in (lambda: mwaa.get_environment(Name="other"), mwaa.list_environments):
            with pytest.raises(ClientError) as err:
                call()
            e = err.value.response
            assert (e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]) == \
                ("AccessDeniedException", 403), e
            assert f"arn:aws:sts::{PARTICIPANT}:assumed-role/reader/reader" in \
                e["Error"]["Message"], e
    finally:
        plane.shutdown()


def register_function_role(moto, without=()):
    """provision-endpoints' key as accounts.py registers it (the template's role)."""
    body = {"role": "ProvisionEndpointsFunctionRole", "name": "owner-function",
            "session": "mwaa-ops-provision-endpoints", "without": list(without),
            "parameters": {"EnvironmentNamePrefix": "pe-", "ParticipantRoleName": "reader"}}
    req = urllib.request.Request(f"{moto.url}/moto-api/bed-iam/roles", method="POST",
                                 data=json.dumps(body).encode())
    with urllib.request.urlopen(req) as r:
        entry = json.loads(r.read())
    assert entry["arn"] == \
        f"arn:aws:sts::{OWNER}:assumed-role/owner-function/mwaa-ops-provision-endpoints"
    return {"region_name": REGION, "aws_access_key_id": entry["access_key"],
            "aws_secret_access_key": "unchecked"}


@pytest.mark.parametrize("case", ["allowed", "identity policy", "trust"])
def test_the_function_roles_key_assumes_a_participant_role_checked_both_ways(moto, case):
    client(moto, "iam").create_role(RoleName="owner-function",
                                    AssumeRolePolicyDocument=trust(OWNER))
    trusted = f"arn:aws:iam::{OWNER}:role/" + ("someone" if case == "trust" else
                                                  "owner-function")
    client(moto, "iam", PARTICIPANT).create_role(
        RoleName="reader", AssumeRolePolicyDocument=trust(trusted, "ext-1"))
    key = register_function_role(
        moto, ["AssumeParticipantRoles"] if case == "identity policy" else [])
    assume = lambda: client(moto, "sts", creds=key).assume_role(  # noqa: E731
        RoleArn=f"arn:aws:iam::{PARTICIPANT}:role/reader",
        RoleSessionName="mwaa-ops-provision-endpoints", ExternalId="ext-1")
    if case == "allowed":
        out = assume()
        assert out["AssumedRoleUser"]["Arn"] == \
            f"arn:aws:sts::{PARTICIPANT}:assumed-role/reader/mwaa-ops-provision-endpoints"
        return
    code, status, message = refusal(assume)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(f"User: arn:aws:sts::{OWNER}:assumed-role/owner-function/"
                              "mwaa-ops-provision-endpoints is not authorized to perform: "
                              f"sts:AssumeRole on resource: arn:aws:iam::{PARTICIPANT}:"
                              "role/reader"), message
    # The identity policy is evaluated first (and recorded); the trust policy after it.
    with urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused") as r:
        refused = json.loads(r.read())
    assert len(refused) == (1 if case == "identity policy" else 0), refused


def test_role_statements_reads_inline_and_the_default_managed_version():
    from types import SimpleNamespace

    import moto_accounts
    doc = {"Statement": [{"Effect": "Allow", "Action": "a:B", "Resource": "*"}]}
    versions = [SimpleNamespace(is_default_version=False, document=json.dumps({"Statement": []})),
                SimpleNamespace(is_default_version=True, document=json.dumps(
                    {"Statement": {"Effect": "Allow", "Action": "c:D", "Resource": "*"}}))]
    role = SimpleNamespace(policies={"one": json.dumps(doc), "two": doc},
                           managed_policies={"arn": SimpleNamespace(versions=versions)})
    assert [s["Action"] for s in moto_accounts.role_statements(role)] == ["a:B", "a:B", "c:D"]
