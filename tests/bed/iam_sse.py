"""The KMS calls SQS and SNS make as the caller for a queue or topic encrypted with a customer
managed key (SSE-KMS), added to the request's IAM checks (iam_moto.py) as AWS authorises them.

moto keeps a queue's and a topic's ``KmsMasterKeyId`` and calls no KMS. AWS does, with the
caller's credentials ("Amazon SQS Key management" and "Managing Amazon SNS encryption keys and
costs" in the developer guides): a producer needs ``kms:GenerateDataKey`` and ``kms:Decrypt``
on the key (SQS SendMessage/SendMessageBatch, SNS Publish/PublishBatch), a consumer
``kms:Decrypt`` (SQS ReceiveMessage), each with ``kms:ViaService`` the service's endpoint and
the service's encryption context: ``aws:sqs:arn`` the queue's ARN, ``aws:sns:topicArn`` the
topic's. The AWS managed keys (``alias/aws/sqs``, ``alias/aws/sns``) have key policies that
let every principal of the account use them through the service: nothing to authorise.

Stricter than AWS on purpose: SQS and SNS reuse a data key for up to 5 minutes per principal
(``KmsDataKeyReusePeriodSeconds``) and an empty ReceiveMessage decrypts nothing; the bed asks
for the permission on every call, which a role allowed by the template has anyway.

Refused as each service answers a KMS refusal (botocore's models): SQS ``KmsAccessDenied``
(400; ``KMS.AccessDeniedException`` to clients, through its query-compatible error header),
SNS ``KMSAccessDenied`` (400, XML).
"""
from __future__ import annotations

import json

import iam_policy

AWS_MANAGED = {"sqs": "alias/aws/sqs", "sns": "alias/aws/sns"}
# IAM authorises a batch as its single call (there is no sqs:SendMessageBatch permission).
BATCH_AS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
            "PublishBatch": "Publish"}
_KMS_ACTIONS = {
    "SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "ReceiveMessage": ("kms:Decrypt",),
    "Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
}


def iam_action(action: str) -> str:
    return BATCH_AS.get(action, action)


def sqs_checks(action: str, queue_arn: str, ctx: dict) -> list[iam_policy.Check]:
    """The KMS checks an SQS call on ``queue_arn`` adds (none for an unencrypted queue)."""
    from moto.sqs.models import sqs_backends
    if iam_action(action) not in ("SendMessage", "ReceiveMessage"):
        return []
    _, _, _, region, account, name = queue_arn.split(":", 5)
    try:
        key_id = sqs_backends[account][region].get_queue(name).kms_master_key_id
    except Exception:  # no such queue: SQS's own error follows
        return []
    return _checks("sqs", iam_action(action), key_id, account, region, ctx,
                   {"aws:sqs:arn": queue_arn})


def sns_checks(action: str, topic_arn: str, ctx: dict) -> list[iam_policy.Check]:
    """The KMS checks an SNS publish to ``topic_arn`` adds (none for an unencrypted topic)."""
    from moto.sns.models import sns_backends
    if iam_action(action) != "Publish" or not topic_arn.startswith("arn:aws:sns:"):
        return []
    _, _, _, region, account, _ = topic_arn.split(":", 5)
    try:
        key_id = sns_backends[account][region].get_topic(topic_arn).kms_master_key_id
    except Exception:  # no such topic (or a TargetArn that is an endpoint): SNS's own error
        return []
    return _checks("sns", "Publish", key_id, account, region, ctx,
                   {"aws:sns:topicArn": topic_arn})


def _checks(service, action, key_id, account, region, ctx, context) -> list[iam_policy.Check]:
    import iam_moto
    if not key_id or key_id.split(":")[-1] == AWS_MANAGED[service]:
        return []
    key_arn = iam_moto.kms_key_arn(account, region, key_id)
    if key_arn is None:
        return []  # an unknown key: the service's KmsNotFound, not modelled
    return kms_checks(service, action, key_arn, region, ctx, context)


def kms_checks(service: str, action: str, key_arn: str, region: str, ctx: dict,
               context: dict) -> list[iam_policy.Check]:
    """The checks of the KMS calls ``service`` makes for ``action`` (SendMessage,
    ReceiveMessage, Publish) with ``key_arn`` and the encryption context ``context``."""
    return [iam_policy.Check(kms_action, key_arn, {
        **ctx, "aws:ViaAWSService": "true", "kms:CallerAccount": ctx["aws:PrincipalAccount"],
        "kms:ViaService": f"{service}.{region}.amazonaws.com",
        **{f"kms:EncryptionContext:{k}": v for k, v in context.items()},
        "kms:EncryptionContextKeys": list(context)})
        for kms_action in _KMS_ACTIONS[action]]


def refusal(resp, service: str, message: str):
    """The service's answer when IAM refused the KMS call it makes for the caller."""
    from moto.core.exceptions import JsonRESTError, _RESTError as RESTError

    if service == "sqs":
        # SQS answers in JSON; its query-compatible header gives clients the query error code.
        resp.response_headers["x-amzn-query-error"] = "KMS.AccessDeniedException;Sender"
        error = JsonRESTError("com.amazonaws.sqs#KmsAccessDenied", message)
        error.description = json.dumps({"__type": "com.amazonaws.sqs#KmsAccessDenied",
                                        "message": message})
        return error
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    error = RESTError("KMSAccessDenied", message)
    error.description = ("<ErrorResponse><Error><Type>Sender</Type><Code>KMSAccessDenied</Code>"
                         f"<Message>{text}</Message></Error>"
                         "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                         "</ErrorResponse>")
    return error
