"""The state machines' own AWS calls held to their roles on the bed (README "How the bed
holds us to AWS's rules").

moto 5.2.5's Step Functions runs every service integration of an execution (``aws-sdk:*``,
``events:putEvents``, ``states:startExecution``, ``sqs:sendMessage``, ...) as a boto3 call
back to the moto server, made by ``boto_client_for``
(moto/stepfunctions/parser/asl/utils/boto_client.py) with a fixed key ("ak") that
iam_moto.py does not check. That function is handed the task's credentials: the state
machine's roleArn. Here it signs instead with the key registered for that role ARN
(``iam_moto.register``'s ``role_arn``), so each call meets the same per-request check as a
function's call: action, resource ARN and condition keys against the role's statements in
the SAM-translated template. A role ARN nobody registered stays unchecked, as any key
iam_moto.py does not know.

Why the client and not each integration's ``_eval_service_task``: one hook covers every
integration moto has, and the checks are the request-level ones iam_moto.py already makes
(the ARNs S3, EventBridge and Step Functions authorise), not a second reading of the ASL
parameters that could drift from what the request really does.

Exempt, on purpose: SQS. The bed rewrites the machines' Lambda tasks into
``sqs:sendMessage.waitForTaskToken`` to step-worker's queue (tests/pause_resume/machines.py);
that SendMessage stands in for ``lambda:InvokeFunction``, which step-worker has the bed's
Lambda service check against the same role (MACHINE_KEYS, iam_lambda.py). The production
definitions have no SQS task (machines.definition refuses one).

A refused call fails its task as AWS's Step Functions names it: ``ServiceName.ErrorName``,
"Exception" appended when the service's error code lacks it (AWS Step Functions developer
guide, "Learning to use AWS service SDK integrations": e.g. ``S3.BucketAlreadyExistsException``
for S3's BucketAlreadyExists; the optimized integrations prefix theirs the same way:
``StepFunctions.ExecutionAlreadyExistsException``, ``EventBridge.FailedEntry``), the cause
the service's message followed by ``(Service: .., Status Code: .., Request ID: ..)``. So
``S3.AccessDeniedException``, ``EventBridge.AccessDeniedException`` and
``StepFunctions.AccessDeniedException``. moto names them ``s3.s3Exception`` (no binding for
s3; unmodelled errors named after the service), ``States.Runtime`` (for events: an error no
Retry or Catch sees, unlike AWS) and ``StepFunctions.AccessDeniedExceptionException``.
"""
from __future__ import annotations

import sys

import iam_moto

def signed(original):
    """``boto_client_for`` signing with the key registered for the task's role ARN."""
    import boto3

    def boto_client_for(region, service, state_credentials=None):
        client = original(region=region, service=service, state_credentials=state_credentials)
        role_arn = getattr(state_credentials, "role_arn", None)
        key = None if service == "sqs" else iam_moto.key_of_role_arn(role_arn)
        if key is None:
            return client
        return boto3.client(service, region_name=region, endpoint_url=client.meta.endpoint_url,
                            config=client.meta.config, aws_access_key_id=key,
                            aws_secret_access_key="bed")
    return boto_client_for


def error_name(service: str, code: str) -> str:
    return f"{service}.{code}" if code.endswith("Exception") else f"{service}.{code}Exception"


def failure(task, env, ex, service: str):
    """The TaskFailed event AWS records for a service's error answer ``ex`` (a ClientError)."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName)
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent)
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error = error_name(service, ex.response["Error"]["Code"])
    meta = ex.response["ResponseMetadata"]
    cause = (f"{ex.response['Error'].get('Message', '')} (Service: {service}, Status Code: "
             f"{meta['HTTPStatusCode']}, Request ID: {meta.get('RequestId')})")
    return FailureEvent(env=env, error_name=CustomErrorName(error),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                            error=error, cause=cause, resource=task._get_sfn_resource(),
                            resourceType=task._get_sfn_resource_type())))


def _named(cls, service_of):
    from botocore.exceptions import ClientError
    moto_from_error = cls._from_error

    def from_error(self, env, ex):
        if isinstance(ex, ClientError):
            return failure(self, env, ex, service_of(self))
        return moto_from_error(self, env, ex)
    cls._from_error = from_error


def patch_stepfunctions() -> None:
    """Signs every integration call of an execution as its role; names refusals as AWS."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk, state_task_service_events as events,
        state_task_service_factory, state_task_service_sfn as sfn)  # noqa: F401 (imports all)
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    boto_client.boto_client_for = signed(original)
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and \
                getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client.boto_client_for

    aws_sdk._SERVICE_ERROR_NAMES.setdefault("s3", "S3")
    _named(aws_sdk.StateTaskServiceAwsSdk,
           lambda task: task._normalise_service_error_name(task.resource.api_name))
    _named(events.StateTaskServiceEvents, lambda task: "EventBridge")
    _named(sfn.StateTaskServiceSfn, lambda task: "StepFunctions")
