"""BASELINE for the provision-endpoints benchmark -- not part of mwaa-ops, never deployed.

A minimal boto3 Python Lambda handler doing provision-endpoints' core job for a PENDING
environment with customer-managed endpoints, the way the MWAA user guide's tutorial
("Automate managing your own environment endpoints") does it, plus the idempotency checks
a re-delivered event needs: GetEnvironment, DescribeSubnets for the VPC,
DescribeVpcEndpoints in the VPC, add the Celery queue to the SQS endpoint's Allow statement
(ModifyVpcEndpoint) unless it is there, CreateVpcEndpoint to the database service (and the
webserver service for PRIVATE_ONLY) unless one exists, tagged and with a client token.
boto3's standard retry mode. It does NOT handle DELETED (clean-up), validate names, or
refuse odd policies like provision-endpoints does.
"""
import json
import os

import boto3
import botocore.config

from runtime_loop import serve

_config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                 inject_host_prefix=not os.environ.get("AWS_ENDPOINT_URL_MWAA"))
MWAA = boto3.client("mwaa", config=_config)
EC2 = boto3.client("ec2", config=_config)


def widen(policy_text, queue):
    """The policy with `queue` in its first Allow statement, or None when it is there."""
    policy = json.loads(policy_text or '{"Version": "2012-10-17", "Statement": []}')
    for st in policy.get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        resources = st.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if "*" in resources or queue in resources:
            return None
        st["Resource"] = resources + [queue]
        return json.dumps(policy)
    raise ValueError(f"no Allow statement to add {queue} to")


def handler(event, deadline):
    detail = event["detail"]
    if detail.get("status") != "PENDING":
        return {"action": "ignored"}
    env = MWAA.get_environment(Name=detail["name"])["Environment"]
    if env.get("EndpointManagement") != "CUSTOMER":
        return {"action": "ignored"}
    net = env["NetworkConfiguration"]
    vpc = EC2.describe_subnets(SubnetIds=net["SubnetIds"])["Subnets"][0]["VpcId"]
    endpoints = EC2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    live = [e for e in endpoints if e.get("State", "").lower() not in ("deleted", "deleting")]
    queue = env["CeleryExecutorQueue"]
    sqs = [e for e in live if e["ServiceName"].endswith(".sqs")]
    if not sqs:
        raise RuntimeError(f"VPC {vpc} has no SQS endpoint")
    for e in sqs:
        policy = widen(e.get("PolicyDocument"), queue)
        if policy:
            EC2.modify_vpc_endpoint(VpcEndpointId=e["VpcEndpointId"], PolicyDocument=policy)
    services = [env["DatabaseVpcEndpointService"]]
    if env.get("WebserverAccessMode") == "PRIVATE_ONLY":
        services.append(env["WebserverVpcEndpointService"])
    created = []
    for service in services:
        if any(e["ServiceName"] == service for e in live):
            continue
        out = EC2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc, ServiceName=service,
            SubnetIds=net["SubnetIds"], SecurityGroupIds=net["SecurityGroupIds"],
            PrivateDnsEnabled=False, ClientToken=f"{env['Name']}-{service}"[-64:],
            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [
                {"Key": "mwaa-ops:environment", "Value": env["Name"]}]}])
        created.append(out["VpcEndpoint"]["VpcEndpointId"])
    return {"action": "provisioned", "created": created}


if __name__ == "__main__":
    serve(handler)
