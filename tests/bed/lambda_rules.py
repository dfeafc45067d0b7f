"""The template's EventBridge rules delivering to the bed's Lambda service (served by
lambda_local.py when its config names "rules").

Each rule named (a translated `AWS::Events::Rule` of a SAM `EventBridgeRule` event, e.g.
`TriggerDagFunctionArrival`) is made in moto with its pattern (parameters resolved) and an
SQS bridge queue as target: moto matches the events (S3's EventBridge notifications, the
functions' PutEvents, the MWAA control plane's status changes), the bridge polls the queue
and delivers each event to the rule's function as EventBridge delivers to Lambda, by an
asynchronous Invoke (`X-Amz-Invocation-Type: Event`) of the Lambda service:

- the Invoke is made as the rule (`X-Bed-Source-Arn`, for EventBridge's service principal):
  Lambda refuses it (403 AccessDeniedException) unless the function's resource-based policy
  (the template's `AWS::Lambda::Permission` of the rule) lets `events.amazonaws.com` invoke
  it from that rule. Only the bridge can claim a rule: its Invokes carry the Lambda
  service's secret (`X-Bed-Rule-Secret`, made when the service starts, shared in memory,
  never logged); a source ARN without it is ignored and the Invoke judged as any caller's
  (its signing key's role statements, iam_lambda.py);
- a refused *delivery* is EventBridge's business: throttling (429), Lambda's 5xx and a
  connection failure are retried per the target's `RetryPolicy` (EventBridge's defaults, 185
  attempts and 24 hours, without one) with exponential backoff (`backoff_s`: EventBridge
  does not document its waits, the bed doubles from 1 s up to 5 minutes), times the bed's
  `async_scale`; a missing permission (403) or function (404) is not retried, as AWS says;
- then the event goes to the target's `DeadLetterConfig` queue, if the queue's policy (the
  template's `AWS::SQS::QueuePolicy`) lets `events.amazonaws.com` send from that rule
  (`aws:SourceArn`), with EventBridge's message attributes RULE_ARN, TARGET_ARN, ERROR_CODE,
  ERROR_MESSAGE, RETRY_ATTEMPTS and, when retries ran out, EXHAUSTED_RETRY_CONDITION
  (`MaximumRetryAttempts` | `MaximumEventAgeInSeconds`); the body is the event. Without a
  queue, or with one EventBridge may not send to, the event is dropped.

A scheduled rule (SAM `Type: Schedule`: a `ScheduleExpression`, no pattern) is not timed by
the bed: `POST /_bed/fire/LOGICAL_ID` fires it once, delivering what EventBridge would (the
target's constant `Input`, else the `Scheduled Event`), the same way.

A function's own error is Lambda's business once the Invoke is accepted (202): its async
retries and on-failure destination (lambda_async.py). Every delivery is listed at
`GET /_bed/rules` ({rule, ruleArn, function, eventId, event, attempts, outcome: "delivered" |
"dead-lettered" | "dropped", errorCode, errorMessage, requestId (Lambda's, of the accepted
asynchronous invocation)}).

Not emulated: input transformers and `InputPath` (the template uses none), schedules' timing, the
at-least-once duplicates EventBridge may deliver, its exact waits and jitter, rules on buses
other than the default, FIFO queues, the DLQ's own KMS or send failures beyond the policy.
"""
from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import lambda_async

REGION = lambda_async.REGION
DEFAULT_RETRIES, DEFAULT_MAX_AGE_S = 185, 86400
RETRIED = {429: "THROTTLING", 500: "INTERNAL_ERROR", 502: "INTERNAL_ERROR",
           503: "INTERNAL_ERROR", 504: "INTERNAL_ERROR", None: "CONNECTION_FAILURE"}
NOT_RETRIED = {403: "NO_PERMISSIONS", 404: "NO_RESOURCE", 400: "INVALID_PARAMETER"}
EVENTS = "events.amazonaws.com"
SOURCE_HEADER, SECRET_HEADER = "X-Bed-Source-Arn", "X-Bed-Rule-Secret"


def backoff_s(retry: int) -> float:
    """The wait before retry number `retry` (1-based), real time."""
    return min(2.0 ** (retry - 1), 300.0)


class Rule:
    """One rule of the template and its one Lambda target."""

    def __init__(self, logical: str, name: str, pattern: dict, function: str,
                 function_arn: str, retries: int, max_age_s: float, dead_letter: str | None,
                 dead_letter_allowed: bool, account: str, target_input: str | None = None):
        self.logical, self.name, self.pattern = logical, name, pattern
        self.target_input = target_input
        self.function, self.function_arn = function, function_arn
        self.retries, self.max_age_s = retries, max_age_s
        self.dead_letter, self.dead_letter_allowed = dead_letter, dead_letter_allowed
        self.arn = f"arn:aws:events:{REGION}:{account}:rule/{name}"
        self.account = account

    def scheduled(self, now: float | None = None) -> dict:
        """What a firing of this scheduled rule delivers: the target's `Input`, else
        EventBridge's `Scheduled Event` for this rule."""
        if self.target_input is not None:
            return json.loads(self.target_input)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": self.account, "time": when,
                "region": REGION, "resources": [self.arn], "detail": {}}


def deliver(rule: Rule, event: dict, invoke, send, scale: float, sleep=time.sleep,
            clock=time.monotonic) -> dict:
    """Delivers `event` as EventBridge does: `invoke(function, event, rule_arn)` -> (status,
    error type, message, request id); `send(queue_arn, body, attributes)` to the DLQ."""
    entry = {"rule": rule.logical, "ruleArn": rule.arn, "function": rule.function,
             "eventId": event.get("id"), "event": event, "attempts": 0}
    received, condition = clock(), None
    while True:
        status, error_type, message, request_id = invoke(rule.function, event, rule.arn)
        entry["attempts"] += 1
        if status == 202:
            entry.update(outcome="delivered", requestId=request_id)
            return entry
        entry.update(errorCode=NOT_RETRIED.get(status) or RETRIED.get(status, "INTERNAL_ERROR"),
                     errorMessage=f"{error_type or status}: {message}")
        if status in NOT_RETRIED:
            break
        retry = entry["attempts"]
        if retry > rule.retries:
            condition = "MaximumRetryAttempts"
            break
        wait = backoff_s(retry) * scale
        if clock() + wait - received > rule.max_age_s * scale:
            condition = "MaximumEventAgeInSeconds"
            break
        if sleep(wait):  # the bed is stopping (Event.wait answers True): no more attempts
            entry.update(outcome="dropped", deadLetter="the bed stopped before the next attempt")
            return entry
    if not rule.dead_letter:
        entry["outcome"] = "dropped"
        return entry
    if not rule.dead_letter_allowed:
        entry["outcome"] = "dropped"
        entry["deadLetter"] = "refused: the queue's policy does not let the rule send"
        return entry
    attributes = {"RULE_ARN": rule.arn, "TARGET_ARN": rule.function_arn,
                  "ERROR_CODE": entry["errorCode"], "ERROR_MESSAGE": entry["errorMessage"],
                  "RETRY_ATTEMPTS": str(entry["attempts"] - 1)}
    if condition:
        attributes["EXHAUSTED_RETRY_CONDITION"] = condition
    try:
        send(rule.dead_letter, json.dumps(event), attributes)
        entry["outcome"] = "dead-lettered"
    except Exception as e:  # a queue not there: the event is lost
        entry.update(outcome="dropped", deadLetter=f"refused: {e}")
    return entry


def queue_allows(policies: list[dict], queue_logical: str, queue_arn: str, rule_arn: str) -> bool:
    """Whether a template queue policy of `queue_logical` lets EventBridge send from
    `rule_arn` (a statement for the events service principal, conditions evaluated)."""
    import iam_policy
    statements = []
    for raw, resolved in policies:
        if {"Ref": queue_logical} not in raw.get("Queues", []):
            continue
        for statement in resolved["PolicyDocument"]["Statement"]:
            principal = statement.get("Principal", {})
            services = principal.get("Service", []) if isinstance(principal, dict) else []
            if EVENTS in (services if isinstance(services, list) else [services]):
                statements.append({k: v for k, v in statement.items() if k != "Principal"})
    check = iam_policy.Check("sqs:SendMessage", queue_arn, {"aws:SourceArn": rule_arn})
    return iam_policy.decide(statements, check)[0] == iam_policy.ALLOW


def rules_of_template(names: list[str], by_logical: dict, parameters: dict, resources: dict,
                      account: str) -> list[Rule]:
    """The named rules, each with the function its target names."""
    import iam_roles
    all_rules = iam_roles.of_type("AWS::Events::Rule", parameters, resources)
    policies = list(iam_roles.of_type("AWS::SQS::QueuePolicy", parameters, resources).values())
    out = []
    for logical in names:
        if logical not in all_rules:
            raise KeyError(f"the template has no rule {logical}: {sorted(all_rules)}")
        raw, resolved = all_rules[logical]
        (raw_target,), (target,) = raw["Targets"], resolved["Targets"]
        function_logical = raw_target["Arn"]["Fn::GetAtt"][0]
        deployed = by_logical[function_logical]
        retry = target.get("RetryPolicy", {})
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        dead_letter = dead_letter if isinstance(dead_letter, str) else None
        queue_logical = (raw_target.get("DeadLetterConfig", {}).get("Arn", {})
                         .get("Fn::GetAtt", [None])[0])
        rule_arn = f"arn:aws:events:{REGION}:{account}:rule/{resolved['Name']}"
        out.append(Rule(
            logical, resolved["Name"], resolved.get("EventPattern"), deployed.name,
            f"arn:aws:lambda:{REGION}:{account}:function:{deployed.name}",
            int(retry.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
            float(retry.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)), dead_letter,
            bool(dead_letter) and queue_allows(policies, queue_logical, dead_letter, rule_arn),
            account, target.get("Input")))
    return out


class Permissions:
    """The functions' resource-based policies: which rule may invoke which function (the
    template's `AWS::Lambda::Permission`s for events.amazonaws.com, minus those a test
    removed), and the secret by which the bridge's Invokes are known to be the rules'."""

    def __init__(self, by_logical: dict, account: str, without: list[str]):
        import iam_roles
        self.secret = secrets.token_hex(32)
        rules = iam_roles.of_type("AWS::Events::Rule", {}, {})
        self.allowed = set()
        for logical, (raw, _) in iam_roles.of_type("AWS::Lambda::Permission", {}, {}).items():
            source = raw.get("SourceArn", {}).get("Fn::GetAtt", [None])[0]
            function = by_logical.get(raw["FunctionName"].get("Ref"))
            if raw.get("Principal") != EVENTS or function is None or source not in rules \
                    or source in without:
                continue
            name = rules[source][1]["Name"]
            self.allowed.add((function.name, f"arn:aws:events:{REGION}:{account}:rule/{name}"))

    def claimed_source(self, headers) -> str | None:
        """The rule ARN an Invoke is made as, if the bridge made it; else None (a caller who
        set the header without the secret is an ordinary caller)."""
        source = headers.get(SOURCE_HEADER)
        offered = headers.get(SECRET_HEADER) or ""
        if source and hmac.compare_digest(offered.encode(), self.secret.encode()):
            return source
        return None

    def refusal(self, function: str, source_arn: str) -> str | None:
        if (function, source_arn) in self.allowed:
            return None
        return (f"The resource-based policy of {function} does not allow {EVENTS} to perform "
                f"lambda:InvokeFunction from {source_arn}")


class Bridge:
    """The rules in moto, each with its bridge queue and the thread that delivers from it."""

    def __init__(self, rules: list[Rule], moto_url: str, lambda_url: str, scale: float,
                 log: list, secret: str):
        import boto3
        self.rules, self.lambda_url, self.scale, self.log = rules, lambda_url, scale, log
        self.secret = secret
        self.token = uuid.uuid4().hex[:8]
        session = dict(region_name=REGION, endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        with lambda_async.CLIENTS_LOCK:
            self.sqs = boto3.client("sqs", **session)
            self.events = boto3.client("events", **session)
        self.stopping = threading.Event()
        self.threads = []
        self.made = []  # (moto rule name, bridge queue url)

    def start(self):
        for rule in self.rules:
            if rule.pattern is None:  # a schedule: fired by the test (`fire`)
                continue
            # Two services on one bed (tests sharing it) each get their own moto rule.
            moto_name = f"bed-{self.token}-{rule.name}"[:64]
            url = self.sqs.create_queue(QueueName=f"bed-{self.token}-{rule.logical}"[:80])["QueueUrl"]
            arn = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.events.put_rule(Name=moto_name, EventPattern=json.dumps(rule.pattern))
            self.events.put_targets(Rule=moto_name, Targets=[{"Id": "bridge", "Arn": arn}])
            self.made.append((moto_name, url))
            thread = threading.Thread(target=self._poll, args=(rule, url), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)
        for moto_name, url in self.made:
            try:
                self.events.remove_targets(Rule=moto_name, Ids=["bridge"])
                self.events.delete_rule(Name=moto_name)
                self.sqs.delete_queue(QueueUrl=url)
            except Exception:  # the bed may already be gone
                pass

    def _poll(self, rule: Rule, url: str):
        while not self.stopping.is_set():
            try:
                messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1).get("Messages", [])
            except Exception as e:  # the bed going away
                sys.stderr.write(f"rule {rule.logical}: {e}\n")
                self.stopping.wait(1)
                continue
            for m in messages:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                # Each event is delivered on its own: one being retried holds up no other.
                threading.Thread(target=self._deliver, args=(rule, json.loads(m["Body"])),
                                 daemon=True).start()

    def _deliver(self, rule: Rule, event: dict) -> dict:
        entry = deliver(rule, event, self.invoke, self.send, self.scale,
                        sleep=lambda s: self.stopping.wait(s))
        self.log.append(entry)
        return entry

    def fire(self, logical: str) -> dict:
        """Fires the scheduled rule `logical` once; its delivery once it ended."""
        rule = next((r for r in self.rules if r.logical == logical and r.pattern is None), None)
        if rule is None:
            raise KeyError(f"no scheduled rule {logical} among {[r.logical for r in self.rules]}")
        return self._deliver(rule, rule.scheduled())

    def invoke(self, function: str, event: dict, rule_arn: str):
        request = urllib.request.Request(
            f"{self.lambda_url}/2015-03-31/functions/{function}/invocations",
            data=json.dumps(event).encode(), method="POST",
            headers={"X-Amz-Invocation-Type": "Event", SOURCE_HEADER: rule_arn,
                     SECRET_HEADER: self.secret})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, None, "", answer.headers.get("x-amzn-RequestId")
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            return e.code, e.headers.get("x-amzn-ErrorType"), body, None
        except OSError as e:
            return None, "ConnectionFailure", str(e), None

    def send(self, queue_arn: str, body: str, attributes: dict):
        self.sqs.send_message(
            QueueUrl=lambda_async.queue_url(self.sqs.meta.endpoint_url, queue_arn),
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v}
                               for k, v in attributes.items()})


def start(config: dict, by_logical: dict, lambda_url: str, log: list,
          secret: str) -> Bridge | None:
    """The bridge for the rules `config["rules"]` names, or None without any; its Invokes
    carry `secret` (the Lambda service's `Permissions.secret`)."""
    names = config.get("rules") or []
    if not names:
        return None
    account = config.get("account", "123456789012")
    rules = rules_of_template(names, by_logical, config.get("parameters", {}),
                              config.get("resources", {}), account)
    return Bridge(rules, config["endpoints"]["AWS_ENDPOINT_URL"], lambda_url,
                  float(config.get("async_scale", 1)), log, secret).start()
