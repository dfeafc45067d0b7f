"""BASELINE for the notify benchmark -- not part of mwaa-ops, never deployed.

A minimal boto3 Python Lambda handler doing notify's core job for a failed Step Functions
execution, written the plain way, so tests/bench/notify.py can compare against it: read
the EventBridge event, GetExecutionHistory (newest first, 100 events) for the failed step,
skip if an S3 marker says this execution was reported within the hour, format a subject and
a body (connection-URL passwords scrubbed), SNS Publish with kind/environment attributes,
write the marker. boto3's standard retry mode. It does NOT read queue batches, environment
statuses, PENDING watches, or redact JSON secrets by key like notify does.
"""
import datetime
import hashlib
import json
import os
import re

import boto3
import botocore.config
import botocore.exceptions

from runtime_loop import serve

_config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3})
SFN = boto3.client("stepfunctions", config=_config)
SNS = boto3.client("sns", config=_config)
S3 = boto3.client("s3", config=_config)
TOPIC, BUCKET = os.environ["TOPIC_ARN"], os.environ["SUITE_BUCKET"]
URL_PASSWORD = re.compile(r"(://)[^/\s\"'@]*@")


def failed_step(arn):
    try:
        events = SFN.get_execution_history(executionArn=arn, reverseOrder=True,
                                           maxResults=100)["events"]
    except botocore.exceptions.ClientError:
        return None
    for e in events:
        if e["type"].endswith("StateEntered"):
            return e["stateEnteredEventDetails"]["name"]
    return None


def handler(event, deadline):
    d = event["detail"]
    arn = d["executionArn"]
    key = f"alerts/sent/{hashlib.sha256(arn.encode()).hexdigest()}.json"
    try:
        head = S3.head_object(Bucket=BUCKET, Key=key)
        age = datetime.datetime.now(datetime.timezone.utc) - head["LastModified"]
        if age < datetime.timedelta(hours=1):
            return {"duplicate": arn}
    except botocore.exceptions.ClientError:
        pass
    environment = json.loads(d.get("input") or "{}").get("environment", "")
    step = failed_step(arn) or "unknown"
    machine = d["stateMachineArn"].rsplit(":", 1)[-1]
    subject = f"[mwaa-ops] {machine} of {environment} {d['status']} at {step}"[:100]
    cause = URL_PASSWORD.sub(r"\1***@", d.get("cause") or "")[:600]
    body = "\n".join([f"What: {machine} of {environment} ended {d['status']} at {step}.",
                      f"Error: {d.get('error') or d['status']}",
                      f"Cause: {cause}",
                      f"Execution: {arn}", "", "-- mwaa-ops"])
    SNS.publish(TopicArn=TOPIC, Subject=subject, Message=body, MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "execution-failed"},
        "environment": {"DataType": "String", "StringValue": environment or "-"}})
    S3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"subject": subject}).encode())
    return {"sent": subject}


if __name__ == "__main__":
    serve(handler)
