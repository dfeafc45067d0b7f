"""A shared VPC's accounts on the bed: the owner (moto's default account) with the owner's
side of infra/template.yaml, and participants that deploy infra/participant.yaml.

    accounts.py --moto-url URL --owner ACCOUNT --participant ACCOUNT[:EXTERNAL_ID] ...
                [--unlisted ACCOUNT ...] --external-id ID --prefix PREFIX

Prints one JSON line: {"function": credentials of a session of the owner's function role,
"function_role_arn", "participants": {ACCOUNT: credentials of an administrator there}}.

- The owner: a role standing in for the provision-endpoints function's (Lambda would hand
  the function a session of it: here the test assumes it), and the default bus's policy
  exactly as the template's ParticipantEventsPolicy makes it for these participants.
- Each participant: infra/participant.yaml deployed through moto's CloudFormation in that
  account (its reader role trusting the function role with the participant's ExternalId,
  ``ACCOUNT:OTHER`` giving it another one than the owner's; its forwarding rule), and an
  IAM user whose access key acts in that account (moto gives a key the account it was made
  in), for what the participant's people do: create and delete environments.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3

import template

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ROLE = "mwaa-ops-ProvisionEndpointsFunctionRole"
PARTICIPANT_ROLE = "mwaa-ops-participant"


def client(moto_url, service, account=None, creds=None):
    keys = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    c = boto3.client(service, endpoint_url=moto_url, region_name=REGION, **keys)
    if account:
        c.meta.events.register("before-sign.*.*", lambda request, **_:
                               request.headers.__setitem__("x-moto-account-id", account))
    return c


def function_session(moto_url, owner):
    iam = client(moto_url, "iam", owner)
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
        "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=FUNCTION_ROLE,
                          AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    creds = client(moto_url, "sts", owner).assume_role(
        RoleArn=arn, RoleSessionName="provision-endpoints")["Credentials"]
    return arn, {"access_key_id": creds["AccessKeyId"],
                 "secret_access_key": creds["SecretAccessKey"],
                 "session_token": creds["SessionToken"]}


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


def deploy_participant(moto_url, account, owner, role_arn, external_id, prefix):
    cfn = client(moto_url, "cloudformation", account)
    params = {"OwnerAccountId": owner, "OwnerFunctionRoleArn": role_arn,
              "ExternalId": external_id, "EnvironmentNamePrefix": prefix,
              "RoleName": PARTICIPANT_ROLE}
    cfn.create_stack(StackName="mwaa-ops-participant",
                     TemplateBody=(ROOT / "infra" / "participant.yaml").read_text(),
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
    args = ap.parse_args(argv)
    role_arn, session = function_session(args.moto_url, args.owner)
    accounts = [p.split(":", 1)[0] for p in args.participant]
    owner_bus_policy(args.moto_url, args.owner, accounts)
    participants = {}
    for p in args.participant + args.unlisted:
        account, _, external_id = p.partition(":")
        participants[account] = deploy_participant(
            args.moto_url, account, args.owner, role_arn, external_id or args.external_id,
            args.prefix)
    print(json.dumps({"function": session, "function_role_arn": role_arn,
                      "participants": participants}))


if __name__ == "__main__":
    main(sys.argv[1:])
