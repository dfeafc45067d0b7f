"""IAM enforced in moto (iam_moto.py): a template role's key gets what its statements allow
and AWS's refusal (code, status) for the rest; other keys stay unchecked.

Run: .bed/venv/bin/python -m pytest tests/bed/test_iam_moto.py
"""
from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

# The same moto under moto_accounts.py as the accounts tests, reset before each test.
from test_accounts import OWNER as ACCOUNT, REGION, TESTING as ADMIN, fresh, moto  # noqa: F401

BUCKET = "mwaa-ops-suite"


def register(moto, role, resources=None, without=None):
    body = {"role": role, "parameters": {"EnvironmentNamePrefix": "local"},
            "resources": resources or {}, "without": without or []}
    req = urllib.request.Request(f"{moto.url}/moto-api/bed-iam/roles",
                                 data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req) as resp:
        key = json.loads(resp.read())["access_key"]
    return {"region_name": REGION, "aws_access_key_id": key, "aws_secret_access_key": "x"}


def client(moto, service, creds=ADMIN):
    return boto3.client(service, endpoint_url=moto.url, **creds)


def refused(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_trigger_dag_role_in_s3_and_eventbridge(moto):
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    role = register(moto, "TriggerDagFunctionRole", {"SuiteBucket": BUCKET})
    s3 = client(moto, "s3", role)
    s3.put_object(Bucket=BUCKET, Key="held/a.json", Body=b"{}")
    assert s3.get_object(Bucket=BUCKET, Key="held/a.json")["Body"].read() == b"{}"
    s3.list_objects_v2(Bucket=BUCKET, Prefix="held/")
    assert refused(lambda: s3.put_object(Bucket=BUCKET, Key="alerts/x", Body=b"")) == \
        ("AccessDenied", 403)
    # ListBucket is granted only for the held/ and routes/ prefixes (s3:prefix).
    assert refused(lambda: s3.list_objects_v2(Bucket=BUCKET)) == ("AccessDenied", 403)
    assert refused(lambda: s3.delete_object(Bucket=BUCKET, Key="failed/x")) == \
        ("AccessDenied", 403)
    events = client(moto, "events", role)
    events.put_events(Entries=[{"Source": "mwaa-ops", "DetailType": "x", "Detail": "{}"}])
    client(moto, "events").create_event_bus(Name="other")
    assert refused(lambda: events.put_events(Entries=[{
        "Source": "mwaa-ops", "DetailType": "x", "Detail": "{}", "EventBusName": "other"}])) == \
        ("AccessDeniedException", 400)
    refusals = json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused").read())
    assert [r["action"] for r in refusals] == \
        ["s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "events:PutEvents"]


def test_unregistered_keys_are_not_checked_and_reset_forgets_roles(moto):
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    role = register(moto, "TriggerDagFunctionRole", {"SuiteBucket": BUCKET})
    moto.reset()
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    client(moto, "s3", role).put_object(Bucket=BUCKET, Key="anything", Body=b"")


def test_notify_role_in_sns_sqs_scheduler_and_states(moto):
    admin_sns, admin_sqs = client(moto, "sns"), client(moto, "sqs")
    topic = admin_sns.create_topic(Name="alerts")["TopicArn"]
    other = admin_sns.create_topic(Name="other")["TopicArn"]
    queue = admin_sqs.create_queue(QueueName="failed")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed"
    scheduler_role = f"arn:aws:iam::{ACCOUNT}:role/notify-scheduler"
    role = register(moto, "NotifyFunctionRole", {
        "AlertTopic": topic, "FailedEventsQueue": queue_arn,
        "NotifySchedulerRole": scheduler_role, "SuiteBucket": BUCKET})
    sns, sqs = client(moto, "sns", role), client(moto, "sqs", role)
    sns.publish(TopicArn=topic, Message="hi")
    assert refused(lambda: sns.publish(TopicArn=other, Message="hi")) == \
        ("AuthorizationError", 403)
    sqs.receive_message(QueueUrl=queue)
    elsewhere = admin_sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    code, status = refused(lambda: sqs.send_message(QueueUrl=elsewhere, MessageBody="x"))
    assert status == 403 and "AccessDenied" in code
    scheduler = client(moto, "scheduler", role)
    target = {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mwaa-ops-notify",
              "RoleArn": scheduler_role}
    scheduler.create_schedule(Name="mwaa-ops-pending-x", ScheduleExpression="rate(5 minutes)",
                              FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    assert refused(lambda: scheduler.create_schedule(
        Name="someone-else", ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"}, Target=target))[0] == "AccessDeniedException"
    # iam:PassRole on another role than the scheduler role is refused.
    assert refused(lambda: scheduler.create_schedule(
        Name="mwaa-ops-pending-y", ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**target, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/admin"}))[0] == \
        "AccessDeniedException"


def test_provision_endpoints_role_in_ec2(moto):
    ec2 = client(moto, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    role = register(moto, "ProvisionEndpointsFunctionRole")
    mine = client(moto, "ec2", role)
    service = f"com.amazonaws.vpce.{REGION}.vpce-svc-0123456789abcdef0"
    tag = [{"ResourceType": "vpc-endpoint",
            "Tags": [{"Key": "mwaa-ops:managed-by", "Value": "mwaa-ops"}]}]
    create = dict(VpcId=vpc, SubnetIds=[subnet], VpcEndpointType="Interface",
                  ServiceName=service)
    endpoint = mine.create_vpc_endpoint(**create, TagSpecifications=tag)["VpcEndpoint"]
    mine.describe_vpc_endpoints()
    # Untagged, or to a service that is not an endpoint service: refused.
    assert refused(lambda: mine.create_vpc_endpoint(**create)) == ("UnauthorizedOperation", 403)
    assert refused(lambda: mine.create_vpc_endpoint(
        **{**create, "ServiceName": f"com.amazonaws.{REGION}.s3"}, TagSpecifications=tag)) == \
        ("UnauthorizedOperation", 403)
    theirs = ec2.create_vpc_endpoint(**create)["VpcEndpoint"]["VpcEndpointId"]
    assert refused(lambda: mine.delete_vpc_endpoints(VpcEndpointIds=[theirs])) == \
        ("UnauthorizedOperation", 403)
    mine.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])


def test_a_missing_statement_is_refused(moto):
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    role = register(moto, "TriggerDagFunctionRole", {"SuiteBucket": BUCKET},
                    without=["HoldArrivals"])
    assert refused(lambda: client(moto, "s3", role).put_object(
        Bucket=BUCKET, Key="held/a.json", Body=b"{}")) == ("AccessDenied", 403)


def test_a_missing_key_is_403_without_list_bucket_and_404_with_it(moto):
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    lister = client(moto, "s3", register(moto, "NotifyFunctionRole", {"SuiteBucket": BUCKET}))
    with pytest.raises(ClientError) as e:
        lister.head_object(Bucket=BUCKET, Key="alerts/sent/none")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    blind = client(moto, "s3", register(moto, "NotifyFunctionRole", {"SuiteBucket": BUCKET},
                                        without=["MissingMeansNotSent"]))
    with pytest.raises(ClientError) as e:
        blind.head_object(Bucket=BUCKET, Key="alerts/sent/none")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    blind.put_object(Bucket=BUCKET, Key="alerts/sent/one", Body=b"")
    blind.head_object(Bucket=BUCKET, Key="alerts/sent/one")


def test_mwaa_control_planes_hold_a_role_to_its_statements(moto):
    import mwaa_local
    import mwaa_serverless_local
    from botocore.config import Config

    plane = mwaa_local.serve(moto_url=moto.url, region=REGION, account=ACCOUNT)
    serverless = mwaa_serverless_local.serve(region=REGION, account=ACCOUNT, moto_url=moto.url)
    try:
        role = register(moto, "TriggerDagFunctionRole", {"SuiteBucket": BUCKET})
        mwaa = boto3.client("mwaa", endpoint_url=plane.url,
                            config=Config(inject_host_prefix=False), **role)
        # Inside EnvironmentNamePrefix (local*) IAM allows; MWAA then says what it knows.
        with pytest.raises(ClientError) as e:
            mwaa.get_environment(Name="local-a")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as e:
            mwaa.invoke_rest_api(Name="local-a", Path="/dags/x/dagRuns", Method="POST")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        for call in (lambda: mwaa.get_environment(Name="prod-a"),
                     lambda: mwaa.invoke_rest_api(Name="prod-a", Path="/dags", Method="GET"),
                     lambda: mwaa.list_environments()):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "AccessDeniedException"
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        flows = boto3.client("mwaa-serverless", endpoint_url=serverless.url, **role)
        with pytest.raises(ClientError) as e:
            flows.start_workflow_run(
                WorkflowArn=f"arn:aws:airflow-serverless:{REGION}:{ACCOUNT}:workflow/prod-x-0123456789",
                ClientToken="t1")
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError) as e:
            flows.start_workflow_run(
                WorkflowArn=f"arn:aws:airflow-serverless:{REGION}:{ACCOUNT}:workflow/local-x-0123456789",
                ClientToken="t2")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    finally:
        plane.shutdown()
        serverless.shutdown()
