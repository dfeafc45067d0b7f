"""Benchmark: provision-endpoints (Rust) vs a minimal boto3 Python handler (the baseline), on
PENDING environments with customer-managed endpoints in one shared VPC.

    .bed/venv/bin/python tests/bench/provision_endpoints.py [--binary PATH] [--warm 50]
        [--cold 5] [--redeliver 20]

Prints figures, asserts nothing. Starts moto and the local MWAA control plane (no Airflow),
a VPC per function with an SQS interface endpoint, and for every event one PRIVATE_ONLY
environment created with EndpointManagement=CUSTOMER and waiting in PENDING; a Lambda
Runtime API emulator per function and timing proxies in front of moto and the control
plane. Figures: cold init, warm per-event latency with and without the AWS waits, max RSS,
package size; environments correctly provisioned (one endpoint per service, the queue once
in the SQS policy), also when every event is delivered twice.
"""
import json
import os
import time
from pathlib import Path

from harness import (BedSession, cold, function_args, function_env, log, package_rows, print_table,
                     timing_rows, wait_until, warm)

HERE = Path(__file__).resolve().parent
SAMPLE = json.loads((HERE.parent.parent / "events" / "mwaa-status-pending.json").read_text())
ACCOUNT = "123456789012"


class SharedVpc:
    """A VPC with two subnets, a security group and an SQS endpoint whose policy lets one
    unrelated queue through (the state a shared VPC is in before the first environment)."""

    def __init__(self, ec2, region, n):
        self.ec2 = ec2
        self.vpc = ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.{n}.{i}.0/24",
                                          AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
                        for i, az in enumerate("ab")]
        self.security_group = ec2.create_security_group(
            GroupName=f"mwaa-{n}", Description="MWAA workers", VpcId=self.vpc)["GroupId"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "sqs:*",
            "Resource": [f"arn:aws:sqs:{region}:{ACCOUNT}:other-team-queue"]}]}
        self.sqs = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=self.vpc, ServiceName=f"com.amazonaws.{region}.sqs",
            SubnetIds=self.subnets, SecurityGroupIds=[self.security_group],
            PolicyDocument=json.dumps(policy))["VpcEndpoint"]["VpcEndpointId"]

    def policy_resources(self):
        e = self.ec2.describe_vpc_endpoints(VpcEndpointIds=[self.sqs])["VpcEndpoints"][0]
        return [r for st in json.loads(e["PolicyDocument"])["Statement"]
                for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])]

    def live_endpoints(self):
        found = self.ec2.describe_vpc_endpoints(
            Filters=[{"Name": "vpc-id", "Values": [self.vpc]}])["VpcEndpoints"]
        return [e for e in found if e.get("State", "").lower() not in ("deleted", "deleting")]


class Pending:
    """`count` CUSTOMER environments in `vpc`, all PENDING, and one event for each."""

    def __init__(self, mwaa, vpc, label, count):
        self.names, self.events, self.next = [], [], 0
        for i in range(count):
            name = f"bench-{label}-{i}"
            mwaa.create_environment(
                Name=name, AirflowVersion="2.10.3", EndpointManagement="CUSTOMER",
                WebserverAccessMode="PRIVATE_ONLY",
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/mwaa-exec",
                SourceBucketArn="arn:aws:s3:::bench-dags", DagS3Path="dags",
                NetworkConfiguration={"SubnetIds": vpc.subnets,
                                      "SecurityGroupIds": [vpc.security_group]})
            self.names.append(name)
        pending = lambda: all(mwaa.get_environment(Name=n)["Environment"]["Status"] == "PENDING"
                              for n in self.names)
        if not wait_until(pending, 120, 0.5):
            raise SystemExit("environments never reached PENDING")
        for name in self.names:
            env = mwaa.get_environment(Name=name)["Environment"]
            ev = json.loads(json.dumps(SAMPLE))
            ev["id"], ev["account"], ev["resources"] = f"{name}-pending", ACCOUNT, [env["Arn"]]
            ev["detail"].update(
                name=name, celeryExecutorQueue=env["CeleryExecutorQueue"],
                databaseVpcEndpointService=env["DatabaseVpcEndpointService"],
                webserverVpcEndpointService=env["WebserverVpcEndpointService"],
                networkConfiguration={"subnetIds": vpc.subnets,
                                      "securityGroupIds": [vpc.security_group]})
            self.events.append(ev)

    def take(self, _i=None):
        ev = self.events[self.next]
        self.next += 1
        return ev


def provisioned(vpc, events):
    """How many of these environments have exactly one live endpoint per service and their
    queue exactly once in the SQS policy; and how many endpoints exist beyond one each."""
    live = vpc.live_endpoints()
    resources = vpc.policy_resources()
    ok = extra = 0
    for ev in events:
        d = ev["detail"]
        per_service = [sum(e["ServiceName"] == s for e in live)
                       for s in (d["databaseVpcEndpointService"], d["webserverVpcEndpointService"])]
        extra += sum(max(0, c - 1) for c in per_service)
        ok += per_service == [1, 1] and resources.count(d["celeryExecutorQueue"]) == 1
    return ok, extra


def main():
    args, binary, profile = function_args(__doc__, "provision-endpoints", warm=50, redeliver=20)

    import boto3
    from botocore.config import Config

    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-pe-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    with BedSession("", workdir) as run:
        region, info = "us-east-1", run.info
        ec2 = boto3.client("ec2", endpoint_url=info["moto_url"], region_name=region)
        mwaa = boto3.client("mwaa", endpoint_url=info["mwaa_url"], region_name=region,
                            config=Config(inject_host_prefix=False))
        moto_proxy, mwaa_proxy = run.proxy(info["moto_url"]), run.proxy(info["mwaa_url"])
        env = function_env(moto_proxy.url, mwaa_proxy.url, "provision-endpoints",
                           ENVIRONMENT_NAME_PREFIX="bench-", OWNER_ACCOUNT=ACCOUNT)
        fns = [run.function("rust", [str(binary)], env),
               run.function("python", [args.python, str(HERE / "baseline_provision_endpoints.py")], env)]
        results = {}
        for n, fn in enumerate(fns, start=30):
            vpc = SharedVpc(ec2, region, n)
            once = args.cold + args.warm + 1
            log(f"{fn.label}: {once + args.redeliver} PENDING environments")
            pending = Pending(mwaa, vpc, fn.label, once + args.redeliver)
            log(f"{fn.label}: cold x{args.cold}, warm x{args.warm}")
            c = cold(fn, args.cold, pending.take, workdir)
            w = warm(fn, args.warm, pending.take, workdir, {"moto": moto_proxy, "mwaa": mwaa_proxy})
            log(f"{fn.label}: {args.redeliver} events delivered twice")
            twice = [pending.take() for _ in range(args.redeliver)]
            doubled = [ev for ev in twice for _ in range(2)]
            r = warm(fn, len(doubled) - 1, lambda i: doubled[i + 1], workdir, {})
            ok_once, _ = provisioned(vpc, pending.events[:once])
            ok_twice, extra = provisioned(vpc, twice)
            results[fn.label] = {"cold": c, "warm": w, "once": once, "ok_once": ok_once,
                                 "ok_twice": ok_twice, "extra": extra,
                                 "failed_redeliveries": r["fails"]}
        report(results, args, profile, binary)


def report(results, args, profile, binary):
    r, p = results["rust"], results["python"]
    rows = timing_rows(r, p, args.cold, args.warm, "first environment provisioned",
                       {"mwaa": "MWAA (control plane)", "moto": "EC2 (moto)"})
    rows.extend(package_rows(binary, HERE / "baseline_provision_endpoints.py"))
    rows.append(("environments provisioned right / events (cold + warm-up + warm)",
                 *(f"{x['ok_once']} / {x['once']}" for x in (r, p))))
    rows.append((f"delivered twice: provisioned right / {args.redeliver}, extra endpoints, "
                 "failed invocations",
                 *(f"{x['ok_twice']}, {x['extra']}, {x['failed_redeliveries']}" for x in (r, p))))
    print_table(f"provision-endpoints benchmark: Rust ({profile} build, {binary}) vs Python "
                f"baseline (boto3, tests/bench/baseline_provision_endpoints.py); moto + local "
                f"MWAA control plane, local emulated Runtime API",
                "provision-endpoints (Rust)", rows)


if __name__ == "__main__":
    main()
