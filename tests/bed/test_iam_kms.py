"""SQS queues and SNS topics encrypted with a customer managed key on the bed (iam_sse.py): a
template role's key also needs the KMS permissions SQS and SNS use as the caller, scoped as
the template scopes them, and is refused with the service's own KMS error without them.

Run: .bed/venv/bin/python -m pytest tests/bed/test_iam_kms.py
"""
from __future__ import annotations

import json
import urllib.request

import pytest

import iam_moto
import iam_policy
import iam_roles
import iam_sse
from test_accounts import OWNER as ACCOUNT, REGION, fresh, moto  # noqa: F401
from test_iam_moto import client, refused, register

BUCKET = "mwaa-ops-suite"


def suite_key(moto) -> str:
    return client(moto, "kms").create_key(Description="mwaa-ops data key")["KeyMetadata"]["Arn"]


def queue(moto, name, key=None) -> tuple[str, str]:
    """A queue (URL, ARN), encrypted with ``key`` as the template's ``KmsMasterKeyId``."""
    attributes = {"KmsMasterKeyId": key} if key else {}
    url = client(moto, "sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def topic(moto, name, key=None) -> str:
    attributes = {"KmsMasterKeyId": key} if key else {}
    return client(moto, "sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]


def notify(moto, key_arn, topic_arn, queue_arn, without=None):
    return register(moto, "NotifyFunctionRole", {
        "AlertTopic": topic_arn, "FailedEventsQueue": queue_arn, "SuiteKey": key_arn,
        "NotifySchedulerRole": f"arn:aws:iam::{ACCOUNT}:role/notify-scheduler",
        "SuiteBucket": BUCKET}, without)


def refusals(moto) -> list[dict]:
    return json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused").read())


def test_notify_reads_the_encrypted_queue_and_publishes_to_the_encrypted_topic(moto):
    key = suite_key(moto)
    # The template names the key by Ref (its id) on the queue and the topic.
    key_id = key.rsplit("/", 1)[-1]
    url, arn = queue(moto, "failed-events", key_id)
    alerts = topic(moto, "alerts", key_id)
    role = notify(moto, key, alerts, arn)
    sqs, sns = client(moto, "sqs", role), client(moto, "sns", role)
    sqs.send_message(QueueUrl=url, MessageBody="a failure")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "a failure"
    sns.publish(TopicArn=alerts, Message="an alert")
    sns.publish_batch(TopicArn=alerts, PublishBatchRequestEntries=[
        {"Id": "1", "Message": "another alert"}])
    assert refusals(moto) == []


def test_without_its_kms_statement_a_role_gets_the_services_kms_refusal(moto):
    key = suite_key(moto)
    url, arn = queue(moto, "failed-events", key)
    alerts = topic(moto, "alerts", key)
    client(moto, "sqs").send_message(QueueUrl=url, MessageBody="a failure")

    no_queue_key = notify(moto, key, alerts, arn, ["EncryptedQueue"])
    sqs = client(moto, "sqs", no_queue_key)
    assert refused(lambda: sqs.receive_message(QueueUrl=url)) == \
        ("KMS.AccessDeniedException", 400)
    assert refused(lambda: sqs.send_message(QueueUrl=url, MessageBody="x")) == \
        ("KMS.AccessDeniedException", 400)
    assert refused(lambda: sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "x"}])) == ("KMS.AccessDeniedException", 400)
    no_topic_key = notify(moto, key, alerts, arn, ["EncryptedTopic"])
    sns = client(moto, "sns", no_topic_key)
    assert refused(lambda: sns.publish(TopicArn=alerts, Message="x")) == ("KMSAccessDenied", 400)

    seen = refusals(moto)
    assert [(r["action"], r["resource"]) for r in seen] == [
        ("kms:Decrypt", key), ("kms:GenerateDataKey", key), ("kms:GenerateDataKey", key),
        ("kms:GenerateDataKey", key)]
    assert seen[0]["context"]["kms:EncryptionContext:aws:sqs:arn"] == arn
    assert seen[0]["context"]["kms:ViaService"] == f"sqs.{REGION}.amazonaws.com"
    assert seen[3]["context"]["kms:EncryptionContext:aws:sns:topicArn"] == alerts
    assert seen[3]["context"]["kms:ViaService"] == f"sns.{REGION}.amazonaws.com"
    # The message is still there for a role that may decrypt it.
    allowed = client(moto, "sqs", notify(moto, key, alerts, arn))
    assert allowed.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "a failure"


# Every role that sends to the failed-events queue: the three functions' on-failure
# destinations (Lambda sends as the function's role) and the schedules' dead-letter queue
# (Scheduler sends as the schedule's role).
@pytest.mark.parametrize("role", ["TriggerDagFunctionRole", "ProvisionEndpointsFunctionRole",
                                  "NotifyFunctionRole", "NotifySchedulerRole", "ScheduleRole"])
def test_each_sender_to_the_failed_events_queue_may_use_its_key(moto, role):
    key = suite_key(moto)
    url, arn = queue(moto, "failed-events", key)
    sender = client(moto, "sqs", register(moto, role, {
        "FailedEventsQueue": arn, "SuiteKey": key, "SuiteBucket": BUCKET}))
    sender.send_message(QueueUrl=url, MessageBody="a failure")
    assert refusals(moto) == []


# Each of those roles without the statement that lets it use the key through SQS.
@pytest.mark.parametrize("role,sid", [
    ("TriggerDagFunctionRole", "EncryptFailedEvents"),
    ("ProvisionEndpointsFunctionRole", "EncryptFailedEvents"),
    ("NotifyFunctionRole", "EncryptedQueue"),
    ("NotifySchedulerRole", "EncryptFailedEvents"),
    ("ScheduleRole", "EncryptFailedEvents")])
def test_a_sender_without_its_key_statement_is_refused_by_sqs(moto, role, sid):
    key = suite_key(moto)
    url, arn = queue(moto, "failed-events", key)
    sender = client(moto, "sqs", register(moto, role, {
        "FailedEventsQueue": arn, "SuiteKey": key, "SuiteBucket": BUCKET}, [sid]))
    assert refused(lambda: sender.send_message(QueueUrl=url, MessageBody="x")) == \
        ("KMS.AccessDeniedException", 400)
    assert [(r["action"], r["resource"]) for r in refusals(moto)] == [("kms:GenerateDataKey", key)]


# A key SQS or SNS cannot use fails the call before IAM decides, whatever the role may do.
@pytest.mark.parametrize("state,sqs_code,sns_code", [
    ("missing", "KMS.NotFoundException", "KMSNotFound"),
    ("disabled", "KMS.DisabledException", "KMSDisabled"),
    ("pending-deletion", "KMS.InvalidStateException", "KMSInvalidState")])
def test_a_key_the_service_cannot_use_fails_the_call(moto, state, sqs_code, sns_code):
    kms = client(moto, "kms")
    if state == "missing":
        key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b6c3c5e-0000-4000-8000-00000000dead"
    else:
        key = suite_key(moto)
        key_id = key.rsplit("/", 1)[-1]  # moto 5.2.5 finds the key by id only here
        if state == "disabled":
            kms.disable_key(KeyId=key_id)
        else:
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    url, arn = queue(moto, "failed-events", key)
    alerts = topic(moto, "alerts", key)
    role = notify(moto, key, alerts, arn)
    assert refused(lambda: client(moto, "sqs", role).send_message(
        QueueUrl=url, MessageBody="x")) == (sqs_code, 400)
    assert refused(lambda: client(moto, "sns", role).publish(TopicArn=alerts, Message="x")) == \
        (sns_code, 400)


@pytest.mark.parametrize("attributes", [
    {},  # not encrypted
    {"KmsMasterKeyId": "alias/aws/sqs"},  # the AWS managed key
    {"SqsManagedSseEnabled": "true"},  # SSE-SQS: SQS's own keys, no KMS
], ids=["unencrypted", "aws-managed-key", "sse-sqs"])
def test_a_queue_without_a_customer_managed_key_needs_no_key_statement(moto, attributes):
    url = client(moto, "sqs").create_queue(QueueName="plain", Attributes=attributes)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:plain"
    role = register(moto, "TriggerDagFunctionRole", {
        "SuiteBucket": BUCKET, "FailedEventsQueue": arn}, ["EncryptFailedEvents"])
    client(moto, "sqs", role).send_message(QueueUrl=url, MessageBody="x")
    assert refusals(moto) == []


def test_a_topic_with_the_aws_managed_key_needs_no_key_statement(moto):
    url, arn = queue(moto, "failed-events")
    alerts = topic(moto, "alerts", "alias/aws/sns")
    role = notify(moto, suite_key(moto), alerts, arn, ["EncryptedTopic", "EncryptedQueue"])
    client(moto, "sns", role).publish(TopicArn=alerts, Message="x")
    client(moto, "sqs", role).receive_message(QueueUrl=url)
    assert refusals(moto) == []


def test_a_batch_is_authorised_as_its_single_call(moto):
    url, arn = queue(moto, "failed-events")
    role = register(moto, "TriggerDagFunctionRole", {"SuiteBucket": BUCKET,
                                                     "FailedEventsQueue": arn})
    client(moto, "sqs", role).send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "x"}])
    other, _ = queue(moto, "other")
    code, status = refused(lambda: client(moto, "sqs", role).send_message_batch(
        QueueUrl=other, Entries=[{"Id": "1", "MessageBody": "x"}]))
    assert (code, status) == ("AccessDeniedException", 403)
    assert refusals(moto)[0]["action"] == "sqs:SendMessage"


KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b6c3c5e-0000-4000-8000-000000000001"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mwaa-ops-failed-events"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:mwaa-ops-alerts"


@pytest.mark.parametrize("service,action,context,allowed", [
    ("sqs", "ReceiveMessage", {"aws:sqs:arn": QUEUE}, True),
    ("sqs", "SendMessage", {"aws:sqs:arn": QUEUE}, True),
    ("sns", "Publish", {"aws:sns:topicArn": TOPIC}, True),
    # Another queue or topic encrypted with the same key: not the one the statement names.
    ("sqs", "ReceiveMessage", {"aws:sqs:arn": QUEUE + "-other"}, False),
    ("sns", "Publish", {"aws:sns:topicArn": TOPIC + "-other"}, False),
    # The queue's context through the wrong service (kms:ViaService sns.) is not allowed.
    ("sns", "Publish", {"aws:sqs:arn": QUEUE}, False),
], ids=["receive", "send", "publish", "other-queue", "other-topic", "wrong-service"])
def test_the_templates_key_statements_hold_to_their_encryption_context(
        service, action, context, allowed):
    statements = iam_roles.statements("NotifyFunctionRole", {"EnvironmentNamePrefix": "local"}, {
        "SuiteKey": KEY, "FailedEventsQueue": QUEUE, "AlertTopic": TOPIC,
        "SuiteBucket": BUCKET})
    entry = {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/notify/notify", "account": ACCOUNT}
    checks = iam_sse.kms_checks(service, action, KEY, REGION,
                                iam_moto.base_context(entry, REGION), context)
    assert checks, "a KMS call is checked"
    assert (iam_policy.first_refused(statements, checks) is None) == allowed
