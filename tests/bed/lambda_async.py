"""Lambda's asynchronous invocation on the bed (served by lambda_local.py).

An Invoke with `X-Amz-Invocation-Type: Event` (how EventBridge rules and Scheduler invoke) is
answered 202 at once and run in the background, as Lambda's internal queue runs it:

- a function error (the binary's error object, `Sandbox.Timedout`, `Runtime.ExitError`) is
  retried up to the function's `EventInvokeConfig.MaximumRetryAttempts` (Lambda's default 2
  when the template gives none), after Lambda's waits: 1 minute before the second attempt, 2
  minutes before the third (`REAL_WAITS`), times the bed's `async_scale`;
- an event older than `MaximumEventAgeInSeconds` (default 6 hours, times the same scale) is
  not tried again (`condition` EventAgeExceeded, else RetriesExhausted);
- then the invocation record AWS documents for destinations goes to the `OnFailure`
  destination (an SQS queue), sent with the function's role key: the bed's IAM holds the send
  to `sqs:SendMessage` on that queue, as AWS holds the execution role. A refused send loses the
  record, as on AWS (which only counts it in DestinationDeliveryFailures).

Every asynchronous invocation is listed at `GET /_bed/async` (function, requestId, attempts,
outcome, condition, response (the last attempt's answer), destination: "delivered" | "none" |
"refused: ...").
Not emulated: retries of throttles and of Lambda's own errors (up to 6 hours), OnSuccess
destinations, destinations other than SQS, a function's DeadLetterConfig, the async payload
limit. Each attempt of one event keeps its request id, as on AWS.
"""
from __future__ import annotations

import datetime
import json
import sys
import threading
import time
import uuid

REGION = "us-east-1"
REAL_WAITS = (60.0, 120.0)
DEFAULT_RETRIES, DEFAULT_MAX_AGE_S = 2, 21600
CLIENTS_LOCK = threading.Lock()


def answer_of(answer: bytes):
    """The function's last answer as JSON (its text if it is not), for the bed's log."""
    try:
        return json.loads(answer)
    except ValueError:
        return answer.decode(errors="replace")


def record(function_arn: str, request_id: str, condition: str, attempts: int, event,
           answer: bytes) -> dict:
    """The invocation record Lambda sends to an on-failure destination."""
    response = answer_of(answer)
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {"requestId": request_id, "functionArn": function_arn,
                           "condition": condition, "approximateInvokeCount": attempts},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "responsePayload": response,
    }


class AsyncInvocations:
    """Lambda's queue of one function's asynchronous invocations."""

    def __init__(self, deployed, account: str, retries: int = DEFAULT_RETRIES,
                 max_age_s: float = DEFAULT_MAX_AGE_S, on_failure: str | None = None,
                 scale: float = 1.0, send=None, log: list | None = None):
        self.deployed, self.retries, self.on_failure = deployed, retries, on_failure
        self.max_age_s, self.scale = max_age_s * scale, scale
        self.function_arn = f"arn:aws:lambda:{REGION}:{account}:function:{deployed.name}:$LATEST"
        self.send = send
        self.log = log if log is not None else []
        self.threads: list[threading.Thread] = []

    def submit(self, event) -> str:
        request_id = str(uuid.uuid4())
        entry = {"function": self.deployed.name, "requestId": request_id, "attempts": 0,
                 "outcome": "queued"}
        self.log.append(entry)
        thread = threading.Thread(target=self._run, args=(event, entry), daemon=True)
        self.threads.append(thread)
        thread.start()
        return request_id

    def wait(self, timeout_s: float):
        for thread in list(self.threads):
            thread.join(timeout_s)

    def _run(self, event, entry):
        received = time.monotonic()
        while True:
            failed, answer = self.deployed.invoke(event, entry["requestId"])
            entry["attempts"] += 1
            if not failed:
                entry.update(outcome="succeeded", response=answer_of(answer))
                return
            if entry["attempts"] > self.retries:
                condition = "RetriesExhausted"
                break
            wait = REAL_WAITS[min(entry["attempts"], len(REAL_WAITS)) - 1] * self.scale
            if time.monotonic() + wait - received > self.max_age_s:
                condition = "EventAgeExceeded"
                break
            time.sleep(wait)
        entry.update(outcome="failed", condition=condition, response=answer_of(answer))
        if not self.on_failure:
            entry["destination"] = "none"
            return
        body = record(self.function_arn, entry["requestId"], condition, entry["attempts"],
                      event, answer)
        try:
            self.send(self.on_failure, json.dumps(body))
            entry["destination"] = "delivered"
        except Exception as e:  # AccessDenied, a missing queue: the record is lost
            entry["destination"] = f"refused: {e}"
            sys.stderr.write(f"{self.deployed.name}: on-failure record lost: {e}\n")


def queue_url(endpoint: str, arn: str) -> str:
    """The queue URL (as moto serves it) of an SQS queue ARN, without asking SQS (Lambda needs
    no sqs:GetQueueUrl)."""
    _, _, _, _, account, name = arn.split(":", 5)
    return f"{endpoint.rstrip('/')}/{account}/{name}"


def sqs_client(deployed):
    """An SQS client signing with the function's role key, where the function's calls go."""
    import boto3
    env = deployed.process.env
    with CLIENTS_LOCK:  # boto3's default session does not make clients thread-safely
        return boto3.client("sqs", region_name=REGION,
                            endpoint_url=env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL"),
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key="unchecked")


def sqs_sender(deployed):
    """Sends a record to a queue ARN; its client is made at the first send (a boto3 client
    per function would slow every start of the service)."""
    clients = []

    def send(arn, body):
        if not arn.startswith("arn:aws:sqs:"):
            raise ValueError(f"the bed sends on-failure records to SQS only, not {arn}")
        if not clients:
            clients.append(sqs_client(deployed))
        client = clients[0]
        client.send_message(QueueUrl=queue_url(client.meta.endpoint_url, arn), MessageBody=body)
    return send


def configure(by_logical: dict, parameters: dict, resources: dict, account: str,
              scale: float, log: list) -> None:
    """Gives each function (by logical id) its queue of asynchronous invocations with the
    template's EventInvokeConfig, or Lambda's defaults without one."""
    import iam_roles
    configs = {}
    for raw, resolved in iam_roles.of_type("AWS::Lambda::EventInvokeConfig", parameters,
                                           resources).values():
        configs[raw["FunctionName"].get("Ref")] = resolved
    for logical, deployed in by_logical.items():
        config = configs.get(logical, {})
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        deployed.asynchronous = AsyncInvocations(
            deployed, account, int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
            float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)),
            # An ARN the test did not name stays unresolved: nowhere to send to.
            destination if isinstance(destination, str) else None, scale,
            sqs_sender(deployed), log)
