"""The SQS event source mappings of the template on the bed (served by lambda_local.py when
its config says "event_source_mappings": true).

Each `AWS::Lambda::EventSourceMapping` whose queue the test named polls that queue with the
function's role key (the bed's IAM holds ReceiveMessage and DeleteMessage to the execution
role, as AWS does): up to `BatchSize` messages (at most 10 a receive), the queue's own
visibility timeout, then one synchronous invocation with the SQS event AWS documents
(`Records` of messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody,
eventSource, eventSourceARN, awsRegion). What is deleted (`settle`):

- a function error (or a timeout) deletes nothing: every message comes back after the
  visibility timeout;
- success without `ReportBatchItemFailures` deletes the batch;
- with it, the messages named in `batchItemFailures` stay and the others are deleted; an
  empty or null answer or list is full success; an answer that is not JSON, or an item with
  no, an empty or an unknown `itemIdentifier`, is a failure of the whole batch (AWS's rules).

The queue's redrive policy (moto's) moves a message past `maxReceiveCount`. Each batch is
listed at `GET /_bed/batches` ({function, messages, deleted, kept, failed}).

Before any poller starts, each mapping gets the checks CreateEventSourceMapping makes
(`refusal`), and the bed refuses to start (`MappingRefused`, Lambda's
InvalidParameterValueException, naming the mapping and the queue) when one fails:
`BatchSize` 1-10000 (10 on a FIFO queue), above 10 only with a
`MaximumBatchingWindowInSeconds` of at least 1 (0-300) (the API reference); the execution
role allowed `sqs:ReceiveMessage`, `sqs:DeleteMessage` and `sqs:GetQueueAttributes` on the
queue (the Lambda and SQS developer guides), judged by iam_policy.py with the statements the
bed holds the function's role key to, else the template's for its role; the queue there and
its `VisibilityTimeout` at least the function's Timeout ("Lambda validates this requirement
when you create or update an event source mapping", services-sqs-configure.html).
Not emulated: the batching window, scaling to several concurrent pollers, FIFO queues,
filter criteria, `ScalingConfig`, partial-batch backoff.
"""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass

import lambda_async

REGION = lambda_async.REGION
# What Lambda's poller calls with the execution role, in the order AWS names a missing one.
POLLER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
KEPT_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                   "ApproximateFirstReceiveTimestamp")


def sqs_event(messages: list, queue_arn: str) -> dict:
    """The event Lambda hands the function for one batch of ReceiveMessage's messages."""
    def attribute(value):
        out = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            out["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            import base64
            out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        return out
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: v for k, v in m.get("Attributes", {}).items() if k in KEPT_ATTRIBUTES},
        "messageAttributes": {k: attribute(v) for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": REGION} for m in messages]}


def settle(ids: list[str], failed: bool, answer: bytes, report_failures: bool) -> set[str]:
    """The message ids to delete after the function's answer to the batch of `ids`."""
    if failed:
        return set()
    if not report_failures:
        return set(ids)
    if not answer.strip():
        return set(ids)
    try:
        response = json.loads(answer)
    except ValueError:
        return set()
    if response is None:
        return set(ids)
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set(ids)
    if not isinstance(failures, list):
        return set()
    keep = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return set()
        keep.add(identifier)
    return set(ids) - keep


class QueuePoller:
    """One event source mapping: a thread polling the queue for the function."""

    def __init__(self, deployed, queue_arn: str, batch_size: int, report_failures: bool,
                 log: list, wait_s: int = 1):
        self.deployed, self.queue_arn = deployed, queue_arn
        self.batch_size, self.report_failures = batch_size, report_failures
        self.log, self.wait_s = log, wait_s
        self.sqs = lambda_async.sqs_client(deployed)
        self.url = lambda_async.queue_url(self.sqs.meta.endpoint_url, queue_arn)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(self.wait_s + 5)

    def _loop(self):
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception as e:  # a refused receive, a queue not there yet: poll again
                sys.stderr.write(f"event source {self.queue_arn}: {e}\n")
                self.stopping.wait(1)

    def poll_once(self):
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=min(self.batch_size, 10),
            WaitTimeSeconds=self.wait_s, AttributeNames=["All"],
            MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return None
        failed, answer = self.deployed.invoke(sqs_event(messages, self.queue_arn))
        ids = [m["MessageId"] for m in messages]
        delete = settle(ids, failed, answer, self.report_failures)
        for m in messages:
            if m["MessageId"] in delete:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        batch = {"function": self.deployed.name, "messages": ids,
                 "deleted": [i for i in ids if i in delete],
                 "kept": [i for i in ids if i not in delete], "failed": failed}
        self.log.append(batch)
        return batch


class MappingRefused(Exception):
    """CreateEventSourceMapping's InvalidParameterValueException: the mapping is not made."""


@dataclass
class Mapping:
    """One `AWS::Lambda::EventSourceMapping` of the template on an SQS queue."""
    logical: str
    deployed: object
    role: str | None  # the function's role, a logical id of the template
    queue_arn: str
    batch_size: int
    window_s: int | None
    report_failures: bool


def mappings(by_logical: dict, parameters: dict, resources: dict) -> list[Mapping]:
    """The template's SQS event source mappings whose queue the test named."""
    import iam_roles
    functions = iam_roles.of_type("AWS::Lambda::Function", parameters, resources)
    out = []
    for logical, (raw, resolved) in iam_roles.of_type(
            "AWS::Lambda::EventSourceMapping", parameters, resources).items():
        deployed = by_logical.get(raw["FunctionName"].get("Ref"))
        arn = resolved.get("EventSourceArn")
        if deployed is None or not isinstance(arn, str) or not arn.startswith("arn:aws:sqs:"):
            continue
        role = functions[deployed.logical][0].get("Role", {})
        window = resolved.get("MaximumBatchingWindowInSeconds")
        out.append(Mapping(
            logical, deployed, role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None,
            arn, int(resolved.get("BatchSize", 10)), None if window is None else int(window),
            "ReportBatchItemFailures" in resolved.get("FunctionResponseTypes", [])))
    return out


def refusal(mapping: Mapping, role: dict, read_queue) -> str | None:
    """Why AWS would refuse to create `mapping` (None: it would not), for the execution
    `role` ({arn, account, statements}); `read_queue()` gives the queue's attributes (None: no
    such queue), read only once the role may read them."""
    import iam_moto
    import iam_policy
    fifo = mapping.queue_arn.endswith(".fifo")
    limit = 10 if fifo else 10000
    size, window = mapping.batch_size, mapping.window_s
    what = (f"event source mapping {mapping.logical} ({mapping.queue_arn} -> "
            f"{mapping.deployed.name})")
    if not 1 <= size <= limit:
        return f"{what}: BatchSize {size} is not within 1-{limit} for this queue"
    if window is not None and not 0 <= window <= 300:
        return f"{what}: MaximumBatchingWindowInSeconds {window} is not within 0-300"
    if size > 10 and not fifo and (window or 0) < 1:
        return (f"{what}: BatchSize {size} is above 10, which needs a "
                f"MaximumBatchingWindowInSeconds of at least 1 (it is {window or 0})")
    context = iam_moto.base_context(role, REGION)
    for action in POLLER_ACTIONS:
        check = iam_policy.Check(action, mapping.queue_arn, context)
        decision, _ = iam_policy.decide(role["statements"], check)
        if decision != iam_policy.ALLOW:
            return (f"{what}: The function execution role does not have permissions to call "
                    f"{action.split(':')[1]} on SQS ({role['arn']}: {decision}, "
                    f"{action} on {mapping.queue_arn})")
    queue = read_queue()
    if queue is None:
        return f"{what}: the queue does not exist"
    visibility = int(queue.get("VisibilityTimeout", 30))
    timeout = mapping.deployed.timeout_s
    if visibility < timeout:
        return (f"{what}: Queue visibility timeout: {visibility} seconds is less than Function "
                f"timeout: {timeout:g} seconds")
    return None


def execution_role(mapping: Mapping, moto_url: str | None, parameters: dict, resources: dict,
                   account: str) -> dict:
    """The statements Lambda's poller is held to: those the bed holds the function's role
    key to (a test may have left some out), else the template's for its role."""
    import iam_mwaa
    import iam_roles
    key = mapping.deployed.process.env.get("AWS_ACCESS_KEY_ID")
    held = iam_mwaa.role_of(moto_url, f"Credential={key}/")
    if held is not None:
        return held
    if mapping.role is None:
        raise MappingRefused(f"event source mapping {mapping.logical}: its function has no "
                             "execution role of the template")
    return {"arn": f"arn:aws:sts::{account}:assumed-role/{mapping.role}/{mapping.deployed.name}",
            "account": account,
            "statements": iam_roles.statements(mapping.role, parameters, resources)}


def queue_attributes(mapping: Mapping) -> dict | None:
    """The queue's attributes as the poller's role reads them (None: no such queue)."""
    sqs = lambda_async.sqs_client(mapping.deployed)
    try:
        return sqs.get_queue_attributes(
            QueueUrl=lambda_async.queue_url(sqs.meta.endpoint_url, mapping.queue_arn),
            AttributeNames=["All"])["Attributes"]
    except sqs.exceptions.QueueDoesNotExist:
        return None


def start(by_logical: dict, parameters: dict, resources: dict, log: list,
          moto_url: str | None = None, account: str = "123456789012") -> list:
    """Pollers for the template's SQS event source mappings whose queue the test named, once
    each passed the checks AWS makes when it is created (else `MappingRefused`)."""
    found = mappings(by_logical, parameters, resources)
    for mapping in found:
        role = execution_role(mapping, moto_url, parameters, resources, account)
        refused = refusal(mapping, role, lambda: queue_attributes(mapping))
        if refused:
            raise MappingRefused(f"InvalidParameterValueException: {refused}")
    return [QueuePoller(m.deployed, m.queue_arn, m.batch_size, m.report_failures, log).start()
            for m in found]
