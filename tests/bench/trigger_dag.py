"""Benchmark: trigger-dag (Rust) vs a minimal boto3 Python handler (the baseline).

    .bed/venv/bin/python tests/bench/trigger_dag.py [--binary PATH] [--burst 1000]
        [--warm 100] [--cold 5] [--concurrency 10] [--throttle-rate 0.2] [--dup-rate 0.05]

Prints figures, asserts nothing. Starts the bed (moto + Airflow 2.10.3 + local MWAA control
plane), a small Lambda Runtime API emulator per function, and timing proxies in front of the
MWAA and moto endpoints (to split "waiting on an endpoint" from the function's own time).
Everything binds 127.0.0.1 on free ports and is stopped at the end, also on failure.

Figures, per function:
- cold init: spawn -> first GET /invocation/next (ready), and spawn -> first response
  (the first event is queued before the spawn); median over --cold fresh processes.
- warm: N sequential events to one process; end-to-end per event (runtime hands the event
  out -> response posted), the part spent waiting on MWAA, and the rest (own time; also
  without moto waits: trigger-dag publishes a "DAG Run Started" event to EventBridge, the
  baseline does not).
- max RSS (VmHWM) of the warm process and the largest of the burst processes.
- burst: --burst arrivals (plus --dup-rate re-deliveries) queued at once, served by
  --concurrency processes, throttling injected on the MWAA control plane (--throttle-rate x
  arrivals ThrottlingException answers, in pulses); failed invocations are re-queued twice
  (Lambda async retries), then counted as failed (DLQ). Runs are counted in Airflow.
"""
import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from harness import (ROOT, Function, RuntimeApi, TimingProxy, cold, delete, function_env, log, ms,
                     package_rows, pct, post_json, start_bed, stop_bed, wait_until, warm)
from airflow_bed import auth_headers  # tests/bed, put on sys.path by harness

HERE = Path(__file__).resolve().parent
ENV_NAME = "bench-env"
BUCKET = "landing-zone"
HELD_BUCKET = "mwaa-ops-bench-held"
DAG = "bed_smoke"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
SAMPLE = json.loads((ROOT / "events" / "s3-object-created.json").read_text())


def arrival(key, n):
    ev = json.loads(json.dumps(SAMPLE))
    ev["id"] = str(uuid.uuid4())
    ev["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ev["detail"]["bucket"]["name"] = BUCKET
    obj = ev["detail"]["object"]
    obj["key"] = key
    obj.pop("version-id", None)
    obj["sequencer"] = f"{int(time.time() * 1e6):016X}{n:08X}"
    return ev


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------
def burst(fn, n, dup_rate, concurrency, throttle_rate, tag, workdir, mwaa_url, time_limit):
    api = RuntimeApi(retries=2)
    stop = threading.Event()
    injected = [0]
    budget = int(throttle_rate * n)

    def pulses():  # throttling in pulses while the burst runs
        while not stop.is_set() and injected[0] < budget:
            k = min(3, budget - injected[0])
            post_json(f"{mwaa_url}/_bed/faults", {"operation": "*", "kind": "throttle", "count": k})
            injected[0] += k
            stop.wait(0.3)

    procs = []
    try:
        rng = random.Random(7)
        keys = [f"bench/{tag}/{fn.label}/burst/{i:05d}.csv" for i in range(n)]
        events = [(arrival(k, i), k) for i, k in enumerate(keys)]
        deliveries = list(events) + [e for e in events if rng.random() < dup_rate]
        rng.shuffle(deliveries)
        for c in range(concurrency):
            procs.append(fn.spawn(api.address, workdir / f"{fn.label}-burst.log"))
        # all ready (first /next seen) before the clock starts
        wait_until(lambda: len(api.next_times) >= concurrency, 60)
        delete(f"{mwaa_url}/_bed/faults")
        delete(f"{mwaa_url}/_bed/calls")
        t0 = time.perf_counter()
        th = threading.Thread(target=pulses, daemon=True)
        th.start()
        for ev, k in deliveries:
            api.submit(ev, k)
        got = api.wait_done(len(deliveries), time_limit)
        wall = time.perf_counter() - t0
        stop.set()
        th.join(5)
        rss = max((fn.kill(p) or 0) for p in procs)
        finals = [r for r in api.done if r["ok"] or r["attempt"] >= api.retries]
        failed = [r for r in finals if not r["ok"]]
        retried = sum(1 for r in api.done if not r["ok"] and r["attempt"] < api.retries)
        delete(f"{mwaa_url}/_bed/faults")
        with urllib.request.urlopen(f"{mwaa_url}/_bed/calls", timeout=60) as r:
            calls = json.loads(r.read())
        throttled = sum(1 for c in calls if c.get("fault") == "throttle")
        return {"unfinished": len(deliveries) - got, "time_limit": time_limit, "throttled": throttled,
                "mwaa_calls": len(calls), "keys": set(keys), "deliveries": len(deliveries), "answered": got, "wall": wall,
                "failed": len(failed), "retried_invocations": retried, "rss_kb": rss,
                "throttles_injected": injected[0],
                "failed_sample": failed[0]["body"][:300] if failed else ""}
    finally:
        stop.set()
        fn.kill_all()
        api.stop()


def airflow_runs(af):
    """Every run of DAG in the bed Airflow: list of (run_id, conf key)."""
    auth = auth_headers(af)
    out, offset = [], 0
    for _ in range(10000):
        url = f"{af['base_url']}{af['api_prefix']}/dags/{DAG}/dagRuns?limit=100&offset={offset}&order_by=dag_run_id"
        req = urllib.request.Request(url, headers=auth)
        with urllib.request.urlopen(req, timeout=60) as r:
            page = json.loads(r.read())["dag_runs"]
        out += [(d["dag_run_id"], (d.get("conf") or {}).get("key")) for d in page]
        if len(page) < 100:
            return out
        offset += 100
    return out


def set_paused(af, paused):
    req = urllib.request.Request(
        f"{af['base_url']}{af['api_prefix']}/dags/{DAG}?update_mask=is_paused",
        data=json.dumps({"is_paused": paused}).encode(), method="PATCH",
        headers={**auth_headers(af), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.expanduser(
        "~/.cache/mwaa-ops/target/release/trigger-dag"))
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--throttle-rate", type=float, default=0.2)
    ap.add_argument("--dup-rate", type=float, default=0.05)
    ap.add_argument("--burst-time-limit", type=float, default=0,
                    help="seconds a burst may take (default max(300, 1.5 s x arrivals))")
    ap.add_argument("--airflow", default="2.10.3")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the baseline")
    args = ap.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        raise SystemExit(f"no binary at {binary}; build it (see --help)")
    profile = "release" if "/release/" in str(binary) else ("debug" if "/debug/" in str(binary) else "?")

    import boto3
    from botocore.config import Config

    bed = proxies = None
    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    fns = []
    try:
        bed, info = start_bed(args.airflow, workdir)
        af = info["airflows"][0]
        mwaa = boto3.client("mwaa", endpoint_url=info["mwaa_url"], region_name="us-east-1",
                            config=Config(inject_host_prefix=False))
        mwaa.create_environment(
            Name=ENV_NAME, AirflowVersion=args.airflow,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa-exec",
            SourceBucketArn="arn:aws:s3:::mwaa-bucket", DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"],
                                  "SecurityGroupIds": ["sg-0123456789"]})
        if not wait_until(lambda: mwaa.get_environment(Name=ENV_NAME)["Environment"]["Status"]
                          == "AVAILABLE", 120, 0.2):
            raise SystemExit("environment never AVAILABLE")
        s3 = boto3.client("s3", endpoint_url=info["moto_url"], region_name="us-east-1")
        s3.create_bucket(Bucket=HELD_BUCKET)
        set_paused(af, True)  # runs are created, not executed: keeps the scheduler quiet
        mwaa_proxy = TimingProxy(info["mwaa_url"])
        moto_proxy = TimingProxy(info["moto_url"])
        proxies = (mwaa_proxy, moto_proxy)
        routes = json.dumps([{"name": "bench", "bucket": BUCKET, "prefix": "bench/",
                              "environment": ENV_NAME, "dag": DAG}])
        base_env = function_env(moto_proxy.url, mwaa_proxy.url, "trigger-dag",
                                ROUTES=routes, HELD_BUCKET=HELD_BUCKET,
                                ENVIRONMENT_CACHE_SECONDS="30")
        rust = Function("rust", [str(binary)], base_env)
        py = Function("python", [args.python, str(HERE / "baseline_trigger_dag.py")], base_env)
        fns = [rust, py]
        tag = time.strftime("%H%M%S")
        results = {}
        for fn in fns:
            log(f"{fn.label}: cold x{args.cold}")
            c = cold(fn, args.cold, lambda i: arrival(f"bench/{tag}/{fn.label}/cold-{i}.csv", i),
                     workdir)
            log(f"{fn.label}: warm x{args.warm}")
            w = warm(fn, args.warm, lambda i: arrival(f"bench/{tag}/{fn.label}/warm-{i}.csv", i),
                     workdir, {"mwaa": mwaa_proxy, "moto": moto_proxy})
            results[fn.label] = {"cold": c, "warm": w}
        before = {k for _, k in airflow_runs(af)}
        for fn in fns:
            log(f"{fn.label}: burst of {args.burst}")
            b = burst(fn, args.burst, args.dup_rate, args.concurrency, args.throttle_rate, tag,
                      workdir, info["mwaa_url"], args.burst_time_limit or max(300, 1.5 * args.burst))
            results[fn.label]["burst"] = b
            # Each side's count as soon as it is known: a long burst stopped during the next
            # side's still leaves this one's figures in the log.
            tally(b, airflow_runs(af))
            log(f"{fn.label}: burst done in {b['wall']:.1f} s: {b['mwaa_calls']} MWAA calls, "
                f"{b['throttled']} throttled, {b['deliveries']} deliveries, ratio "
                f"{b['mwaa_calls'] / (b['deliveries'] + b['throttled']):.3f}, runs created "
                f"{b['created']}, lost {b['lost']}, duplicated {b['duplicated']}")
        runs = airflow_runs(af)
        for fn in fns:
            tally(results[fn.label]["burst"], runs)
        report(results, args, profile, binary)
    finally:
        for fn in fns:
            fn.kill_all()
        if proxies:
            for p in proxies:
                p.stop()
        if bed:
            stop_bed(bed)


def tally(b, runs):
    """Runs created, lost and duplicated for the burst `b`, from Airflow's runs."""
    counts = {}
    for _, k in runs:
        if k in b["keys"]:
            counts[k] = counts.get(k, 0) + 1
    b["created"] = sum(counts.values())
    b["lost"] = len(b["keys"] - set(counts))
    b["duplicated"] = sum(v - 1 for v in counts.values())


def report(results, args, profile, binary):
    r, p = results["rust"], results["python"]
    rows = []

    def row(name, f):
        rows.append((name, f(r), f(p)))

    med = statistics.median
    row(f"cold: spawn -> ready for 1st event, ms (median of {args.cold})",
        lambda x: ms(med(x["cold"]["init"])) if x["cold"]["init"] else "n/a")
    row("cold: spawn -> 1st response (incl. MWAA calls), ms",
        lambda x: ms(med(x["cold"]["first"])) if x["cold"]["first"] else "n/a")
    row(f"warm end-to-end per event, ms median / p90 (N={args.warm})",
        lambda x: f"{ms(med(x['warm']['e2e']))} / {ms(pct(x['warm']['e2e'], 90))}")
    row("warm waiting on MWAA endpoint, ms median",
        lambda x: ms(med(x["warm"]["waits"]["mwaa"])))
    row("warm excl. MWAA wait, ms median / p90",
        lambda x: f"{ms(med(x['warm']['without']['mwaa']))} / {ms(pct(x['warm']['without']['mwaa'], 90))}")
    row("warm excl. MWAA and moto waits, ms median / p90",
        lambda x: f"{ms(med(x['warm']['own']))} / {ms(pct(x['warm']['own'], 90))}")
    row("warm failed invocations", lambda x: str(x["warm"]["fails"] + args.cold - x["cold"]["ok"]))
    rows.extend(package_rows(binary, HERE / "baseline_trigger_dag.py"))
    row("max RSS, warm process, MiB", lambda x: f"{(x['warm']['rss_kb'] or 0) / 1024:.1f}")
    row(f"max RSS, burst processes (largest of {args.concurrency}), MiB",
        lambda x: f"{(x['burst']['rss_kb'] or 0) / 1024:.1f}")
    row("burst: arrivals / deliveries (incl. re-deliveries)",
        lambda x: f"{len(x['burst']['keys'])} / {x['burst']['deliveries']}")
    row("burst: MWAA calls / answered ThrottlingException",
        lambda x: f"{x['burst']['mwaa_calls']} / {x['burst']['throttled']}")
    # The floor is one InvokeRestApi per delivery and per throttled (then retried) call.
    row("burst: MWAA calls per (delivery + throttled retry)",
        lambda x: f"{x['burst']['mwaa_calls'] / (x['burst']['deliveries'] + x['burst']['throttled']):.3f}")
    row("burst: runs created in Airflow", lambda x: str(x["burst"]["created"]))
    row("burst: deliveries not answered within the time limit",
        lambda x: f"{x['burst']['unfinished']} (limit {x['burst']['time_limit']:.0f} s)")
    row("burst: lost (arrival without a run at the end)", lambda x: str(x["burst"]["lost"]))
    row("burst: duplicated runs", lambda x: str(x["burst"]["duplicated"]))
    row("burst: invocations failed after 2 retries (DLQ)", lambda x: str(x["burst"]["failed"]))
    row("burst: invocations retried by 'Lambda'", lambda x: str(x["burst"]["retried_invocations"]))
    row("burst: wall time, s", lambda x: f"{x['burst']['wall']:.1f}")
    row("burst: arrivals per second", lambda x: f"{len(x['burst']['keys']) / x['burst']['wall']:.1f}")
    w0 = max(len(a) for a, _, _ in rows)
    title = (f"trigger-dag benchmark: Rust ({profile} build, {binary}) vs Python baseline "
             f"(boto3, tests/bench/baseline_trigger_dag.py); Airflow {args.airflow}, "
             f"concurrency {args.concurrency}, local emulated Runtime API, "
             f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(title)
    print(f"| {'figure'.ljust(w0)} | trigger-dag (Rust) | Python baseline |")
    print(f"|{'-' * (w0 + 2)}|-------------------:|----------------:|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b:>18} | {c:>15} |")
    for label, x in (("rust", r), ("python", p)):
        if x["burst"]["failed_sample"]:
            print(f"{label}: a failed invocation said: {x['burst']['failed_sample']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
