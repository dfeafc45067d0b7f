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
Not emulated: the batching window, scaling to several concurrent pollers, FIFO queues,
filter criteria, `ScalingConfig`, partial-batch backoff.
"""
from __future__ import annotations

import json
import sys
import threading

import lambda_async

REGION = lambda_async.REGION
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


def start(by_logical: dict, parameters: dict, resources: dict, log: list) -> list:
    """Pollers for the template's SQS event source mappings whose queue the test named."""
    import iam_roles
    pollers = []
    for raw, resolved in iam_roles.of_type("AWS::Lambda::EventSourceMapping", parameters,
                                           resources).values():
        deployed = by_logical.get(raw["FunctionName"].get("Ref"))
        arn = resolved.get("EventSourceArn")
        if deployed is None or not isinstance(arn, str) or not arn.startswith("arn:aws:sqs:"):
            continue
        pollers.append(QueuePoller(
            deployed, arn, int(resolved.get("BatchSize", 10)),
            "ReportBatchItemFailures" in resolved.get("FunctionResponseTypes", []), log).start())
    return pollers
