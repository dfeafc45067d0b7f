"""CreateEventSourceMapping's checks on the bed (lambda_sqs.refusal): the template's SQS
event source mapping passes them; a queue hiding messages for less than the function's
Timeout, a role that may not drain the queue and batch settings out of AWS's limits are
refused, naming the mapping and the queue. No bed needed (tests/tests/lambda_async.rs shows
a refused deployment end to end)."""
import copy
import dataclasses
from pathlib import Path

import iam_roles
import lambda_local
import lambda_sqs

ACCOUNT = "210987654321"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:failed-events"
RESOURCES = {"FailedEventsQueue": QUEUE}


def notify_mapping() -> lambda_sqs.Mapping:
    functions = lambda_local.functions_from_template(
        Path("/bin-folder"), {}, RESOURCES, {}, {}, {}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    [mapping] = lambda_sqs.mappings({d.logical: d for d in functions.values()}, {}, RESOURCES)
    return mapping


def notify_role(statements=None) -> dict:
    return {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/NotifyFunctionRole/notify",
            "account": ACCOUNT,
            "statements": statements or iam_roles.statements("NotifyFunctionRole", {}, RESOURCES)}


def queue(visibility_timeout) -> callable:
    return lambda: {"VisibilityTimeout": str(visibility_timeout), "QueueArn": QUEUE}


def templates_visibility_timeout() -> int:
    return iam_roles.of_type("AWS::SQS::Queue", {}, RESOURCES)["FailedEventsQueue"][1][
        "VisibilityTimeout"]


def test_the_templates_mapping_passes_with_the_templates_queue_and_role():
    mapping = notify_mapping()
    assert mapping.deployed.timeout_s == 60  # the template's Globals
    assert lambda_sqs.refusal(mapping, notify_role(), queue(templates_visibility_timeout())) is None
    # Equal is enough: "less than or equal to the queue's visibility timeout".
    assert lambda_sqs.refusal(mapping, notify_role(), queue(60)) is None


def test_a_queue_hiding_messages_for_less_than_the_functions_timeout_is_refused():
    refused = lambda_sqs.refusal(notify_mapping(), notify_role(), queue(59))
    assert refused == (f"event source mapping NotifyFailedEvents ({QUEUE} -> notify): Queue "
                       "visibility timeout: 59 seconds is less than Function timeout: 60 seconds")


def test_a_missing_queue_is_refused():
    refused = lambda_sqs.refusal(notify_mapping(), notify_role(), lambda: None)
    assert refused.endswith(f"({QUEUE} -> notify): the queue does not exist")


def test_a_role_without_each_action_lambdas_poller_needs_is_refused_before_the_queue_is_read():
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        statements = copy.deepcopy(iam_roles.statements("NotifyFunctionRole", {}, RESOURCES))
        [drain] = [s for s in statements if s.get("Sid") == "DrainFailedEvents"]
        drain["Action"].remove(action)

        def read():
            raise AssertionError("the queue is read only by a role that may")
        refused = lambda_sqs.refusal(notify_mapping(), notify_role(statements), read)
        short = action.split(":")[1]
        assert refused is not None and "NotifyFailedEvents" in refused and QUEUE in refused
        assert f"does not have permissions to call {short} on SQS" in refused, refused
        assert f"implicit-deny, {action} on {QUEUE}" in refused, refused


def test_an_explicit_deny_on_the_queue_is_refused():
    deny = {"Effect": "Deny", "Action": "sqs:*", "Resource": QUEUE}
    statements = iam_roles.statements("NotifyFunctionRole", {}, RESOURCES) + [deny]
    refused = lambda_sqs.refusal(notify_mapping(), notify_role(statements), queue(360))
    assert "call ReceiveMessage on SQS" in refused and "explicit-deny" in refused, refused


def test_batch_settings_out_of_aws_limits_are_refused():
    mapping = notify_mapping()

    def refused(**changes):
        return lambda_sqs.refusal(dataclasses.replace(mapping, **changes), notify_role(),
                                  queue(360))
    assert refused(batch_size=10000, window_s=1) is None
    assert refused(batch_size=11, window_s=300) is None
    assert "needs a MaximumBatchingWindowInSeconds of at least 1 (it is 0)" in refused(batch_size=11)
    assert "(it is 0)" in refused(batch_size=11, window_s=0)
    assert "BatchSize 0 is not within 1-10000" in refused(batch_size=0)
    assert "BatchSize 10001 is not within 1-10000" in refused(batch_size=10001, window_s=1)
    assert "MaximumBatchingWindowInSeconds 301 is not within 0-300" in refused(window_s=301)
    fifo = QUEUE + ".fifo"
    assert "BatchSize 11 is not within 1-10" in refused(batch_size=11, window_s=1, queue_arn=fifo)
    # 10 is within a FIFO queue's limit: the next check (the role names no such queue) speaks.
    assert "call ReceiveMessage on SQS" in refused(batch_size=10, queue_arn=fifo)
