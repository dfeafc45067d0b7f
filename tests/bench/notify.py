"""Benchmark: notify (Rust) vs a minimal boto3 Python handler (the baseline), on a failed
Step Functions execution -- the alert people get when a pause or resume fails.

    .bed/venv/bin/python tests/bench/notify.py [--binary PATH] [--warm 100] [--cold 5]
        [--redeliver 50]

Prints figures, asserts nothing. Starts moto and the local MWAA control plane (no Airflow),
a failing state machine in moto's Step Functions with one real failed execution per event
(so both read a real history), an SNS topic with an SQS queue subscribed (to count the
emails that would go out), a Lambda Runtime API emulator per function and a timing proxy
in front of moto. Figures: cold init, warm per-event latency with and without the AWS
waits, max RSS, package size; alerts published per event; alerts published when every
event is delivered twice (EventBridge delivers at least once).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from harness import (Function, TimingProxy, cold, function_env, log, ms, package_rows, pct,
                     start_bed, stop_bed, wait_until, warm)

HERE = Path(__file__).resolve().parent
SAMPLE = json.loads((HERE.parent.parent / "events" / "sfn-execution-failed.json").read_text())
BUCKET = "mwaa-ops-bench-suite"
FAILING = {"StartAt": "ExportMetadata", "States": {"ExportMetadata": {
    "Type": "Fail", "Error": "MwaaOps.ExportFailed",
    "Cause": "export of dev-analytics timed out: postgresql://airflow:hunter2@db:5432/airflow"}}}


class Executions:
    """Failed executions of one state machine, started ahead so events point at them."""

    def __init__(self, sfn, machine_arn, label, count):
        self.events = []
        for i in range(count):
            name = f"{label}-{i}-{int(time.time() * 1000) % 10**9}"
            arn = sfn.start_execution(stateMachineArn=machine_arn, name=name,
                                      input=json.dumps({"environment": "dev-analytics"}))["executionArn"]
            ev = json.loads(json.dumps(SAMPLE))
            ev["id"] = f"{name}-event"
            ev["resources"] = [arn]
            ev["detail"].update(executionArn=arn, stateMachineArn=machine_arn, name=name)
            self.events.append(ev)
        done = lambda: all(sfn.describe_execution(executionArn=e["detail"]["executionArn"])["status"]
                           != "RUNNING" for e in self.events)
        if not wait_until(done, 120, 0.5):
            raise SystemExit("executions never ended")
        self.next = 0

    def take(self, _i=None):
        ev = self.events[self.next]
        self.next += 1
        return ev


def drain(sqs, url):
    """The SNS messages delivered to the queue so far: {execution ARN: count}."""
    counts = {}
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not msgs.get("Messages"):
            return counts
        for m in msgs["Messages"]:
            body = json.loads(m["Body"])
            text = body.get("Message", "")
            arn = next((w for w in text.split() if w.startswith("arn:aws:states:")), "?")
            counts[arn] = counts.get(arn, 0) + 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def redeliver(fn, execs, n, workdir):
    """`n` events, each delivered twice in a row to one warm process."""
    events = [execs.take() for _ in range(n)]
    twice = [ev for ev in events for _ in range(2)]
    return warm(fn, len(twice) - 1, lambda i: twice[i + 1], workdir, {}), events


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.expanduser("~/.cache/mwaa-ops/target/release/notify"))
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--redeliver", type=int, default=50)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the baseline")
    args = ap.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        raise SystemExit(f"no binary at {binary}; build it (see scripts/bench)")
    profile = "release" if "/release/" in str(binary) else "debug"

    import boto3

    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-notify-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    bed = proxy = None
    fns = []
    try:
        bed, info = start_bed("", workdir)
        aws = dict(endpoint_url=info["moto_url"], region_name="us-east-1")
        sfn, sns, sqs, s3 = (boto3.client(s, **aws) for s in ("stepfunctions", "sns", "sqs", "s3"))
        s3.create_bucket(Bucket=BUCKET)
        topic = sns.create_topic(Name="mwaa-ops-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        machine = sfn.create_state_machine(
            name="mwaa-ops-pause", definition=json.dumps(FAILING),
            roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
        proxy = TimingProxy(info["moto_url"])
        env = function_env(proxy.url, info["mwaa_url"], "notify", TOPIC_ARN=topic,
                           SUITE_BUCKET=BUCKET,
                           SCHEDULER_ROLE_ARN="arn:aws:iam::123456789012:role/scheduler")
        rust = Function("rust", [str(binary)], env)
        py = Function("python", [args.python, str(HERE / "baseline_notify.py")], env)
        fns = [rust, py]
        results = {}
        for fn in fns:
            per_event = args.cold + args.warm + 1 + args.redeliver
            log(f"{fn.label}: {per_event} failed executions")
            execs = Executions(sfn, machine, fn.label, per_event)
            drain(sqs, queue_url)
            log(f"{fn.label}: cold x{args.cold}, warm x{args.warm}")
            c = cold(fn, args.cold, execs.take, workdir)
            w = warm(fn, args.warm, execs.take, workdir, {"moto": proxy})
            sent = drain(sqs, queue_url)
            log(f"{fn.label}: {args.redeliver} events delivered twice")
            r, events = redeliver(fn, execs, args.redeliver, workdir)
            again = drain(sqs, queue_url)
            twice = [e["detail"]["executionArn"] for e in events]
            results[fn.label] = {
                "cold": c, "warm": w, "alerts": sum(sent.values()),
                "events": args.cold + args.warm + 1,
                "redelivered": len(twice), "alerts_redelivered": sum(again.get(a, 0) for a in twice),
                "unreported": sum(1 for a in twice if not again.get(a)),
                "failed_redeliveries": r["fails"]}
        report(results, args, profile, binary)
    finally:
        for fn in fns:
            fn.kill_all()
        if proxy:
            proxy.stop()
        if bed:
            stop_bed(bed)


def report(results, args, profile, binary):
    r, p = results["rust"], results["python"]
    med = statistics.median
    rows = []

    def row(name, f):
        rows.append((name, f(r), f(p)))

    row(f"cold: spawn -> ready for the first event, ms (median of {args.cold})",
        lambda x: ms(med(x["cold"]["init"])) if x["cold"]["init"] else "n/a")
    row("cold: spawn -> first alert sent, ms", lambda x: ms(med(x["cold"]["first"])) if x["cold"]["first"] else "n/a")
    row(f"warm per event, end to end, ms median / p90 (N={args.warm})",
        lambda x: f"{ms(med(x['warm']['e2e']))} / {ms(pct(x['warm']['e2e'], 90))}")
    row("warm, of which waiting on AWS (moto: SFN, S3 x2, SNS), ms median",
        lambda x: ms(med(x["warm"]["waits"]["moto"])))
    row("warm, excluding the AWS waits, ms median / p90",
        lambda x: f"{ms(med(x['warm']['own']))} / {ms(pct(x['warm']['own'], 90))}")
    row("max RSS, warm process, MiB", lambda x: f"{(x['warm']['rss_kb'] or 0) / 1024:.1f}")
    rows.extend(package_rows(binary, HERE / "baseline_notify.py"))
    row("alerts sent / failed executions (cold + warm-up + warm)", lambda x: f"{x['alerts']} / {x['events']}")
    row("failed invocations (cold + warm)", lambda x: str(x["warm"]["fails"] + args.cold - x["cold"]["ok"]))
    row(f"delivered twice: alerts sent for {args.redeliver} executions",
        lambda x: f"{x['alerts_redelivered']} (unreported {x['unreported']})")
    w0 = max(len(a) for a, _, _ in rows)
    print(f"notify benchmark: Rust ({profile} build, {binary}) vs Python baseline (boto3, "
          f"tests/bench/baseline_notify.py); moto, local emulated Runtime API, "
          f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| {'figure'.ljust(w0)} | notify (Rust) | Python baseline |")
    print(f"|{'-' * (w0 + 2)}|--------------:|----------------:|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b:>13} | {c:>15} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
