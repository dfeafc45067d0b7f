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
import json
import os
import time
from pathlib import Path

from harness import (BedSession, cold, function_args, function_env, log, package_rows, print_table,
                     timing_rows, wait_until, warm)

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
    args, binary, profile = function_args(__doc__, "notify", warm=100, redeliver=50)

    import boto3

    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-notify-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    with BedSession("", workdir) as run:
        info = run.info
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
        proxy = run.proxy(info["moto_url"])
        env = function_env(proxy.url, info["mwaa_url"], "notify", TOPIC_ARN=topic,
                           SUITE_BUCKET=BUCKET,
                           SCHEDULER_ROLE_ARN="arn:aws:iam::123456789012:role/scheduler")
        fns = [run.function("rust", [str(binary)], env),
               run.function("python", [args.python, str(HERE / "baseline_notify.py")], env)]
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


def report(results, args, profile, binary):
    r, p = results["rust"], results["python"]
    rows = timing_rows(r, p, args.cold, args.warm, "first alert sent",
                       {"moto": "AWS (moto: SFN, S3 x2, SNS)"})
    rows.extend(package_rows(binary, HERE / "baseline_notify.py"))
    rows.append(("alerts sent / failed executions (cold + warm-up + warm)",
                 *(f"{x['alerts']} / {x['events']}" for x in (r, p))))
    rows.append((f"delivered twice: alerts sent for {args.redeliver} executions",
                 *(f"{x['alerts_redelivered']} (unreported {x['unreported']})" for x in (r, p))))
    print_table(f"notify benchmark: Rust ({profile} build, {binary}) vs Python baseline (boto3, "
                f"tests/bench/baseline_notify.py); moto, local emulated Runtime API",
                "notify (Rust)", rows)


if __name__ == "__main__":
    main()
