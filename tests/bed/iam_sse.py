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

Refused as each service answers a KMS refusal (botocore's models name the errors; SQS's API
reference lists the query error codes its query-compatible header gives clients): SQS
``KmsAccessDenied`` (400; ``KMS.AccessDeniedException`` to clients), SNS ``KMSAccessDenied``
(400, XML). A key the service cannot use fails the call before any IAM decision, as on AWS:
one moto does not hold is SQS ``KmsNotFound`` (``KMS.NotFoundException``) / SNS
``KMSNotFound``, a disabled one ``KmsDisabled`` / ``KMSDisabled``, one pending deletion (or in
any other state but Enabled) ``KmsInvalidState`` / ``KMSInvalidState``.
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


class KeyUnusable(Exception):
    """The queue's or topic's key cannot be used (``kind``: NotFound, Disabled, InvalidState):
    the service fails the call whatever the caller may do."""

    def __init__(self, service: str, kind: str, key_id: str):
        super().__init__(f"{key_id}: the KMS key is {'not found' if kind == 'NotFound' else kind}")
        self.service, self.kind = service, kind


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
    import iam_moto  # it imports this module
    if not key_id or key_id.split(":")[-1] == AWS_MANAGED[service]:
        return []
    key = iam_moto.kms_key(account, region, key_id)
    if key is None:
        raise KeyUnusable(service, "NotFound", key_id)
    if key.key_state != "Enabled":
        raise KeyUnusable(service, "Disabled" if key.key_state == "Disabled" else "InvalidState",
                          key_id)
    return kms_checks(service, action, key.arn, region, ctx, context)



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


def refusal(resp, service: str, message: str, kind: str = "AccessDenied"):
    """The service's answer when IAM refused the KMS call it makes for the caller, or when the
    key is unusable (``kind``: KeyUnusable's)."""
    from moto.core.exceptions import JsonRESTError, _RESTError as RESTError

    if service == "sqs":
        # SQS answers in JSON; its query-compatible header gives clients the query error code.
        resp.response_headers["x-amzn-query-error"] = f"KMS.{kind}Exception;Sender"
        error = JsonRESTError(f"com.amazonaws.sqs#Kms{kind}", message)
        error.description = json.dumps({"__type": f"com.amazonaws.sqs#Kms{kind}",
                                        "message": message})
        return error
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    error = RESTError(f"KMS{kind}", message)
    error.description = (f"<ErrorResponse><Error><Type>Sender</Type><Code>KMS{kind}</Code>"
                         f"<Message>{text}</Message></Error>"
                         "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                         "</ErrorResponse>")
    return error
