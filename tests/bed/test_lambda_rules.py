"""The template's rules deliver as EventBridge does (lambda_rules.py): a refused delivery is
retried per the rule's RetryPolicy, then dead-lettered with EventBridge's attributes; no bed
needed (the Invoke and the DLQ send are stand-ins here, tests/tests/lambda_async.rs drives
the real ones)."""
import json
import urllib.error
import urllib.request

import lambda_local
import lambda_rules

ACCOUNT = "123456789012"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:mwaa-ops-failed-events"
EVENT = {"id": "event-1", "source": "aws.s3", "detail-type": "Object Created", "detail": {}}


def rule(retries=8, max_age_s=86400.0, dead_letter=QUEUE, allowed=True):
    return lambda_rules.Rule("TriggerDagFunctionArrival", "mwaa-ops-arrival", {}, "trigger-dag",
                             f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:trigger-dag",
                             retries, max_age_s, dead_letter, allowed, ACCOUNT)


class Clock:
    """Time that moves only when the bridge sleeps."""

    def __init__(self):
        self.now, self.waits = 0.0, []

    def sleep(self, s):
        self.waits.append(s)
        self.now += s

    def __call__(self):
        return self.now


def run(r, answers, scale=1.0):
    clock, sent, calls = Clock(), [], []

    def invoke(function, event, rule_arn):
        calls.append((function, rule_arn))
        return answers[min(len(calls), len(answers)) - 1]

    entry = lambda_rules.deliver(r, EVENT, invoke, lambda *a: sent.append(a), scale,
                                 sleep=clock.sleep, clock=clock)
    return entry, sent, calls, clock.waits


THROTTLED = (429, "TooManyRequestsException", "Rate exceeded", None)
ACCEPTED = (202, None, "", "request-1")


def test_an_accepted_invoke_is_delivered_once_as_the_rule():
    entry, sent, calls, _ = run(rule(), [ACCEPTED])
    assert entry["outcome"] == "delivered" and entry["requestId"] == "request-1"
    assert calls == [("trigger-dag", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mwaa-ops-arrival")]
    assert sent == []


def test_throttles_are_retried_with_growing_waits_until_accepted():
    entry, sent, calls, waits = run(rule(), [THROTTLED, THROTTLED, THROTTLED, ACCEPTED])
    assert entry["outcome"] == "delivered" and entry["attempts"] == 4
    assert waits == [1.0, 2.0, 4.0]
    assert sent == []


def test_retries_run_out_then_the_event_goes_to_the_dead_letter_queue_with_eventbridges_attributes():
    entry, sent, calls, _ = run(rule(retries=2), [THROTTLED], scale=0.01)
    assert entry["outcome"] == "dead-lettered" and len(calls) == 3
    (queue, body, attributes), = sent
    assert queue == QUEUE and json.loads(body) == EVENT
    assert attributes == {
        "RULE_ARN": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mwaa-ops-arrival",
        "TARGET_ARN": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:trigger-dag",
        "ERROR_CODE": "THROTTLING", "ERROR_MESSAGE": "TooManyRequestsException: Rate exceeded",
        "RETRY_ATTEMPTS": "2", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts"}


def test_the_events_age_limit_stops_retries_before_the_attempts_do():
    entry, sent, calls, waits = run(rule(retries=185, max_age_s=10), [(503, None, "down", None)])
    assert entry["outcome"] == "dead-lettered"
    assert sum(waits) <= 10 and len(calls) == 4  # waits 1, 2, 4; the next (8) would pass 10 s
    assert sent[0][2]["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert sent[0][2]["ERROR_CODE"] == "INTERNAL_ERROR"


def test_a_missing_permission_is_not_retried_and_has_no_exhausted_condition():
    denied = (403, "AccessDeniedException", "not allowed", None)
    entry, sent, calls, _ = run(rule(), [denied])
    assert len(calls) == 1 and entry["outcome"] == "dead-lettered"
    attributes = sent[0][2]
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS" and attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes


def test_without_a_queue_or_one_eventbridge_may_not_send_to_the_event_is_dropped():
    missing = (404, "ResourceNotFoundException", "Function not found", None)
    for r in (rule(dead_letter=None), rule(allowed=False)):
        entry, sent, _, _ = run(r, [missing])
        assert entry["outcome"] == "dropped" and entry["errorCode"] == "NO_RESOURCE"
        assert sent == []


def test_the_template_rules_retry_policy_dead_letter_queue_and_its_policy_are_read():
    functions = {"TriggerDagFunction": type("D", (), {"name": "trigger-dag"})()}
    (arrival,) = lambda_rules.rules_of_template(
        ["TriggerDagFunctionArrival"], functions, {"ArrivalBuckets": "landing-zone"},
        {"FailedEventsQueue": QUEUE}, ACCOUNT)
    assert (arrival.name, arrival.function, arrival.retries, arrival.max_age_s) == \
        ("mwaa-ops-arrival", "trigger-dag", 8, 86400.0)
    assert arrival.pattern["detail"]["bucket"]["name"] == ["landing-zone"]
    assert arrival.dead_letter == QUEUE and arrival.dead_letter_allowed
    import iam_roles
    policies = list(iam_roles.of_type("AWS::SQS::QueuePolicy", {}, {"FailedEventsQueue": QUEUE})
                    .values())
    other_stack = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/other-arrival"
    assert not lambda_rules.queue_allows(policies, "FailedEventsQueue", QUEUE, other_stack)


def invoke(url, name, source, secret=None, key=None, body=None):
    """An Invoke claiming to be made as rule `source` (with the bridge's `secret`, or not),
    signed with access key `key` (or not)."""
    headers = {"X-Amz-Invocation-Type": "Event", "X-Bed-Source-Arn": source}
    if secret is not None:
        headers["X-Bed-Rule-Secret"] = secret
    if key is not None:
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/20261201/us-east-1/"
                                    "lambda/aws4_request, SignedHeaders=host, Signature=0")
    request = urllib.request.Request(
        f"{url}/2015-03-31/functions/{name}/invocations", data=b"{}", method="POST",
        headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers.get("x-amzn-RequestId")
    except urllib.error.HTTPError as e:
        if body is not None:
            body.append(json.loads(e.read()))
        return e.code, e.headers.get("x-amzn-ErrorType")


def test_lambda_refuses_a_rule_the_functions_resource_based_policy_does_not_name():
    submitted = []
    fake = type("D", (), {"name": "trigger-dag"})()
    fake.asynchronous = type("A", (), {"submit": lambda self, e: submitted.append(e) or "rid-1"})()
    by_logical = {"TriggerDagFunction": fake}
    arrival = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mwaa-ops-arrival"
    for without, expected in (([], (202, "rid-1")),
                              (["TriggerDagFunctionArrival"], (403, "AccessDeniedException"))):
        permissions = lambda_rules.Permissions(by_logical, ACCOUNT, without)
        server = lambda_local.serve({"trigger-dag": fake}, permissions=permissions)
        url = "http://%s:%d" % server.server_address[:2]
        try:
            assert invoke(url, "trigger-dag", arrival, permissions.secret) == expected
            # Another rule (another stack's, say) is never named by the template's policy.
            other = arrival.replace("mwaa-ops", "x")
            assert invoke(url, "trigger-dag", other, permissions.secret)[0] == 403
        finally:
            server.shutdown()
    assert len(submitted) == 1


def test_only_the_bridge_invokes_as_a_rule_a_forged_source_is_judged_as_its_caller():
    """A test key whose role may not invoke the function, setting the source header of a rule
    the function's policy names: refused as that role (the header is ignored without the
    bridge's secret, or with a wrong one); the bridge's Invokes still pass."""
    import threading
    import wsgiref.simple_server

    import iam_moto

    class Quiet(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *a):
            pass

    def nothing_else(environ, start_response):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    # The bed's IAM keys as moto serves them (GET /moto-api/bed-iam/keys/KEY).
    moto = wsgiref.simple_server.make_server("127.0.0.1", 0, iam_moto.admin_app(nothing_else),
                                             handler_class=Quiet)
    threading.Thread(target=moto.serve_forever, daemon=True).start()
    tester = iam_moto.register_statements(
        "SomeTestRole", [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}],
        ACCOUNT)["access_key"]
    submitted = []
    fake = type("D", (), {"name": "trigger-dag"})()
    fake.asynchronous = type("A", (), {"submit": lambda self, e: submitted.append(e) or "rid"})()
    permissions = lambda_rules.Permissions({"TriggerDagFunction": fake}, ACCOUNT, [])
    server = lambda_local.serve({"trigger-dag": fake}, moto_url="http://%s:%d" % moto.server_address,
                                permissions=permissions)
    url = "http://%s:%d" % server.server_address[:2]
    arrival = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mwaa-ops-arrival"
    try:
        for forged in (None, "", "0" * 64, permissions.secret[:-1] + "x"):
            said = []
            assert invoke(url, "trigger-dag", arrival, forged, tester, said) == \
                (403, "AccessDeniedException"), forged
            assert said[0]["Message"] == (
                f"User: arn:aws:sts::{ACCOUNT}:assumed-role/SomeTestRole/bed is not authorized "
                "to perform: lambda:InvokeFunction on resource: "
                f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:trigger-dag because no "
                "identity-based policy allows the lambda:InvokeFunction action"), said
        assert submitted == []
        assert invoke(url, "trigger-dag", arrival, permissions.secret) == (202, "rid")
        assert invoke(url, "trigger-dag", arrival, permissions.secret, tester) == (202, "rid")
        assert len(submitted) == 2
    finally:
        server.shutdown()
        moto.shutdown()


def test_a_scheduled_rule_delivers_its_targets_input_or_the_scheduled_event():
    functions = {"ProvisionEndpointsFunction": type("D", (), {"name": "provision-endpoints"})()}
    (reconcile,) = lambda_rules.rules_of_template(
        ["ProvisionEndpointsFunctionReconcile"], functions, {}, {"FailedEventsQueue": QUEUE},
        ACCOUNT)
    assert reconcile.pattern is None
    assert (reconcile.retries, reconcile.max_age_s) == (2, 3600.0)
    assert reconcile.scheduled() == {"reconcile": {}}
    assert reconcile.dead_letter == QUEUE and reconcile.dead_letter_allowed
    plain = rule()
    event = plain.scheduled(now=0)
    assert (event["detail-type"], event["source"], event["time"], event["resources"]) == \
        ("Scheduled Event", "aws.events", "1970-01-01T00:00:00Z", [plain.arn])
