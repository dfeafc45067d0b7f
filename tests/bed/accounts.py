"""A shared VPC's accounts on the bed: the owner (moto's default account) with the owner's
side of infra/template.yaml, and participants that deploy infra/participant.yaml.

    accounts.py --moto-url URL --owner ACCOUNT --participant ACCOUNT[:EXTERNAL_ID] ...
                [--unlisted ACCOUNT ...] [--without SID ...] --external-id ID --prefix PREFIX

Prints one JSON line: {"function": the function's credentials, "function_role_arn",
"participants": {ACCOUNT: credentials of an administrator there}}.

- The owner: the provision-endpoints function's role (in moto, so the participants' trust
  names a role that exists) and a key of it registered with the bed's IAM (iam_moto.py): the
  function's calls are held to the template's ProvisionEndpointsFunctionRole and show the
  session ARN Lambda's would (``assumed-role/ROLE/FUNCTION``); and the default bus's policy
  exactly as the template's ParticipantEventsPolicy makes it for these participants.
- Each participant: infra/participant.yaml deployed through moto's CloudFormation in that
  account (its reader role trusting the function role with the participant's ExternalId,
  ``ACCOUNT:OTHER`` giving it another one than the owner's; its forwarding rule; ``--without``
  leaves a statement out of its roles' policies), and an IAM user whose access key acts in
  that account (moto gives a key the account it was made in), for what the participant's
  people do: create and delete environments. The sessions the function gets by AssumeRole
  into the reader role are held to that role's statements as moto holds them
  (moto_accounts.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

import boto3

import template

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ROLE = "mwaa-ops-ProvisionEndpointsFunctionRole"
FUNCTION_NAME = "mwaa-ops-provision-endpoints"
PARTICIPANT_ROLE = "mwaa-ops-participant"


def client(moto_url, service, account=None, creds=None):
    keys = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    c = boto3.client(service, endpoint_url=moto_url, region_name=REGION, **keys)
    if account:
        c.meta.events.register("before-sign.*.*", lambda request, **_:
                               request.headers.__setitem__("x-moto-account-id", account))
    return c


def function_session(moto_url, owner, prefix):
    """The owner's function role as the owner's stack makes it (in moto, so that the
    participants' trust policies name a role that exists) and a key of it as Lambda hands the
    function one: registered with the bed's IAM, held to the SAM-translated template's
    ProvisionEndpointsFunctionRole, its ARN the session one AWS shows (the function's name as
    the session's)."""
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    arn = client(moto_url, "iam", owner).create_role(
        RoleName=FUNCTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    body = {"role": "ProvisionEndpointsFunctionRole", "account": owner, "name": FUNCTION_ROLE,
            "session": FUNCTION_NAME,
            "parameters": {"EnvironmentNamePrefix": prefix, "ArrivalBuckets": "unused",
                           "ParticipantRoleName": PARTICIPANT_ROLE}}
    request = urllib.request.Request(f"{moto_url}/moto-api/bed-iam/roles", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        registered = json.loads(answer.read())
    return arn, {"access_key_id": registered["access_key"], "secret_access_key": "unchecked",
                 "session_token": None}


def owner_bus_policy(moto_url, owner, participants):
    """The template's ParticipantEventsPolicy statement, as CloudFormation would put it."""
    params = {"EnvironmentNamePrefix": "pe-", "ArrivalBuckets": "unused",
              "AlertEmail": "ops@example.com", "ParticipantAccounts": ",".join(participants),
              "ParticipantExternalId": "unused-here"}
    cfn = template.translate(overrides=params)
    values = template.parameter_values(cfn, params)
    values["AWS::AccountId"] = owner
    res = template.resolve(cfn["Resources"]["ParticipantEventsPolicy"], values)
    statement = dict(res["Properties"]["Statement"], Sid=res["Properties"]["StatementId"])
    client(moto_url, "events", owner).put_permission(
        EventBusName="default", Policy=json.dumps({"Version": "2012-10-17",
                                                    "Statement": [statement]}))


def participant_template(without=()) -> str:
    """infra/participant.yaml as CloudFormation reads it, the statements whose Sid is in
    ``without`` left out of its roles' inline policies (to see a call refused)."""
    body = template.load(ROOT / "infra" / "participant.yaml")
    left = set(without)
    for resource in body["Resources"].values():
        for policy in resource.get("Properties", {}).get("Policies", []):
            statements = policy["PolicyDocument"]["Statement"]
            left -= {s.get("Sid") for s in statements}
            policy["PolicyDocument"]["Statement"] = [s for s in statements
                                                     if s.get("Sid") not in without]
    if left:
        raise SystemExit(f"infra/participant.yaml has no statement {sorted(left)}")
    return json.dumps(body)


def deploy_participant(moto_url, account, owner, role_arn, external_id, prefix, without=()):
    cfn = client(moto_url, "cloudformation", account)
    params = {"OwnerAccountId": owner, "OwnerFunctionRoleArn": role_arn,
              "ExternalId": external_id, "EnvironmentNamePrefix": prefix,
              "RoleName": PARTICIPANT_ROLE}
    cfn.create_stack(StackName="mwaa-ops-participant",
                     TemplateBody=participant_template(without),
                     Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                 for k, v in params.items()],
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName="mwaa-ops-participant")["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise SystemExit(f"participant stack in {account}: {stack['StackStatus']}")
    iam = client(moto_url, "iam", account)
    iam.create_user(UserName="participant-admin")
    key = iam.create_access_key(UserName="participant-admin")["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moto-url", required=True)
    ap.add_argument("--owner", required=True)
    ap.add_argument("--participant", action="append", default=[])
    ap.add_argument("--unlisted", action="append", default=[],
                    help="an account that deploys the participant stack but is left out of "
                         "the owner's bus policy")
    ap.add_argument("--external-id", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--without", action="append", default=[],
                    help="a Sid of infra/participant.yaml's role policies left out of every "
                         "participant's stack")
    args = ap.parse_args(argv)
    role_arn, session = function_session(args.moto_url, args.owner, args.prefix)
    accounts = [p.split(":", 1)[0] for p in args.participant]
    owner_bus_policy(args.moto_url, args.owner, accounts)
    participants = {}
    for p in args.participant + args.unlisted:
        account, _, external_id = p.partition(":")
        participants[account] = deploy_participant(
            args.moto_url, account, args.owner, role_arn, external_id or args.external_id,
            args.prefix, args.without)
    print(json.dumps({"function": session, "function_role_arn": role_arn,
                      "participants": participants}))


if __name__ == "__main__":
    main(sys.argv[1:])
