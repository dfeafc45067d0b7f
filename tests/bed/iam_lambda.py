"""IAM for the bed's Lambda service (lambda_local.py): an Invoke signed with a key of a role
registered in moto (iam_moto.py) — a state machine's role, say — is held to that role's
statements as Lambda authorises it: ``lambda:InvokeFunction`` on the function's ARN (unqualified;
SAM's ``LambdaInvokePolicy`` grants ``function:NAME*``). Calls signed with any other key are
not checked, as in moto.
"""
from __future__ import annotations

import iam_mwaa
import iam_policy


def refusal(moto_url: str | None, authorization: str | None, function_arn: str) -> str | None:
    """Lambda's AccessDeniedException message when the caller's role may not invoke
    ``function_arn``, else None."""
    principal = iam_mwaa.role_of(moto_url, authorization)
    if principal is None:
        return None
    region = function_arn.split(":")[3]
    ctx = {"aws:PrincipalAccount": principal["account"], "aws:RequestedRegion": region,
           "aws:SecureTransport": "true"}
    check = iam_policy.Check("lambda:InvokeFunction", function_arn, ctx)
    refused = iam_policy.first_refused(principal["statements"], [check])
    if refused is None:
        return None
    _, decision, _ = refused
    because = "with an explicit deny in an identity-based policy" \
        if decision == iam_policy.EXPLICIT_DENY else \
        "because no identity-based policy allows the lambda:InvokeFunction action"
    return (f"User: {principal['arn']} is not authorized to perform: lambda:InvokeFunction "
            f"on resource: {function_arn} {because}")
