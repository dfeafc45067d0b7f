"""IAM for the local MWAA control plane (mwaa_local.py): calls signed with a key of a role
registered in moto (iam_moto.py), or with a session AssumeRole handed out for a role moto
holds (moto_accounts.py), are held to that role's statements.

Resources as MWAA's IAM reference has them: ``environment/NAME`` for the environment
actions, ``*`` for ListEnvironments, ``role/NAME/AIRFLOW_ROLE`` for InvokeRestApi and
CreateWebLoginToken (the call is allowed when the policy grants any Airflow role of the
environment: Admin, Op, User, Viewer or Public). CreateEnvironment and UpdateEnvironment
also pass the execution role (``iam:PassRole``, ``iam:PassedToService`` airflow.amazonaws.com);
CreateEnvironment and TagResource carry ``aws:RequestTag/*`` and ``aws:TagKeys``. MWAA
Serverless (mwaa_serverless_local.py): ``airflow-serverless:ACTION`` on the ``WorkflowArn``.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import iam_policy

AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")


def role_of(moto_url: str | None, authorization: str | None) -> dict | None:
    match = re.search(r"Credential=([^/,\s]+)/", authorization or "")
    # BEDIAM: a template role's key; ASIA: a session moto's AssumeRole handed out, held to
    # its role's statements (moto_accounts.py). Other keys are not checked.
    if not match or not moto_url or not match.group(1).startswith(("BEDIAM", "ASIA")):
        return None
    try:
        with urllib.request.urlopen(f"{moto_url}/moto-api/bed-iam/keys/{match.group(1)}",
                                    timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def checks(region: str, account: str, operation: str, name: str | None, body: dict,
           principal: dict) -> list[list[iam_policy.Check]]:
    """Alternatives of check lists: the call is allowed if every check of one list is."""
    arn = f"arn:aws:airflow:{region}:{account}"
    ctx = {"aws:PrincipalAccount": principal["account"], "aws:RequestedRegion": region,
           "aws:SecureTransport": "true"}
    action = f"airflow:{operation}"
    if operation == "ListEnvironments":
        return [[iam_policy.Check(action, "*", ctx)]]
    if operation in ("InvokeRestApi", "CreateWebLoginToken"):
        return [[iam_policy.Check(action, f"{arn}:role/{name}/{r}", ctx)] for r in AIRFLOW_ROLES]
    tags = body.get("Tags") or {}
    if operation in ("CreateEnvironment", "TagResource") and tags:
        ctx = {**ctx, "aws:TagKeys": list(tags),
               **{f"aws:RequestTag/{k}": v for k, v in tags.items()}}
    found = [iam_policy.Check(action, f"{arn}:environment/{name}", ctx)]
    if operation in ("CreateEnvironment", "UpdateEnvironment") and body.get("ExecutionRoleArn"):
        found.append(iam_policy.Check("iam:PassRole", body["ExecutionRoleArn"],
                                      {**ctx, "iam:PassedToService": "airflow.amazonaws.com"}))
    return [found]


def serverless_checks(region: str, account: str, operation: str, body: dict,
                      principal: dict) -> list[list[iam_policy.Check]]:
    """MWAA Serverless: its runs are authorised on their workflow's ARN."""
    ctx = {"aws:PrincipalAccount": principal["account"], "aws:RequestedRegion": region,
           "aws:SecureTransport": "true"}
    resource = body.get("WorkflowArn") or "*"
    if operation == "CreateWorkflow":
        resource = f"arn:aws:airflow-serverless:{region}:{account}:workflow/{body.get('Name')}"
    return [[iam_policy.Check(f"airflow-serverless:{operation}", resource, ctx)]]


def refusal(moto_url, authorization, region, account, operation, name, body,
            serverless=False) -> str | None:
    """IAM's message when the caller's role may not make this call, else None."""
    principal = role_of(moto_url, authorization)
    if principal is None:
        return None
    first = None
    found = serverless_checks(region, account, operation, body or {}, principal) if serverless \
        else checks(region, account, operation, name, body or {}, principal)
    for alternative in found:
        refused = iam_policy.first_refused(principal["statements"], alternative)
        if refused is None:
            return None
        first = first or refused
    check, decision, _ = first
    because = "with an explicit deny in an identity-based policy" \
        if decision == iam_policy.EXPLICIT_DENY else \
        f"because no identity-based policy allows the {check.action} action"
    return (f"User: {principal['arn']} is not authorized to perform: {check.action} on "
            f"resource: {check.resource} {because}")
