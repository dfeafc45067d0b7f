"""Benchmark: the pause/resume steps (Rust) vs minimal boto3 Python handlers (the baseline,
tests/bench/baseline_pause_resume.py), as the state machines call them: environment-status,
save-configuration, verify-export, create-environment, delete-environment, run-dag and
enable-dags.

    .bed/venv/bin/python tests/bench/pause_resume.py [--bin-dir DIR] [--warm 50] [--cold 5]
        [--export-rows 1000000] [--steps a,b,...] [--airflow 2.10.3 | ""]

Prints one table per step, asserts nothing. Starts moto, the local MWAA control plane and a
real Airflow (run-dag and enable-dags call it through InvokeRestApi; --airflow "" leaves them
out), an AVAILABLE environment with a full configuration and an operator's skip marker, a
metadata export of `--export-rows` JSON Lines rows in 8 gzip objects with its manifest (the
shape the export DAG writes), one AVAILABLE environment per delete-environment event and one
saved configuration and snapshot per create-environment event; a Lambda Runtime API
emulator per function and timing proxies in front of moto and the control plane.
verify-export is also handed a tampered manifest once (a row count off by one): both must
refuse it.
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import sys
from pathlib import Path

from harness import (BedSession, cold, function_env, log, package_rows, print_table, timing_rows,
                     wait_until, warm)

HERE = Path(__file__).resolve().parent
BUCKET = "mwaa-ops-bench-suite"
EXPORT_BUCKET = "mwaa-ops-bench-exports"
ENVIRONMENT = "bench-pause"
AIRFLOW_ENVIRONMENT = "bench-airflow"  # backed by the bed's real Airflow (--airflow)
ACCOUNT = "123456789012"
# The pause execution the verify-export and delete-environment events belong to.
EXECUTION = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:mwaa-ops-pause:bench"
STARTED = "2026-11-21T01:59:00Z"
TABLES = ("task_instance", "dag_run", "xcom", "log", "job", "task_instance_history",
          "rendered_task_instance_fields", "variable")


def configuration(name):
    """CreateEnvironment's input for `name`: the settings a saved configuration has to keep."""
    return dict(
        Name=name, AirflowVersion="2.10.3", EnvironmentClass="mw1.medium",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/mwaa-exec",
        SourceBucketArn="arn:aws:s3:::bench-dags", DagS3Path="dags",
        RequirementsS3Path="requirements.txt", MinWorkers=2, MaxWorkers=10, Schedulers=2,
        AirflowConfigurationOptions={"core.default_timezone": "utc",
                                     "celery.worker_autoscale": "10,2"},
        LoggingConfiguration={"TaskLogs": {"Enabled": True, "LogLevel": "INFO"},
                              "SchedulerLogs": {"Enabled": True, "LogLevel": "WARNING"}},
        NetworkConfiguration={"SubnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b2c3d4e5f6071829"],
                              "SecurityGroupIds": ["sg-0c3d4e5f607182930"]},
        Tags={"team": "data-platform", "cost-center": "42"})


def available(mwaa, names, airflow="2.10.3"):
    """Creates these environments and waits until every one is AVAILABLE."""
    for name in names:
        mwaa.create_environment(**dict(configuration(name), AirflowVersion=airflow))
    if not wait_until(lambda: all(mwaa.get_environment(Name=n)["Environment"]["Status"] == "AVAILABLE"
                                  for n in names), 180, 0.5):
        raise SystemExit("the environments never became AVAILABLE")


def changed(mwaa, step, label, count):
    """How many of a function's `count` environments the step created (now CREATING or
    AVAILABLE) or deleted (DELETING, or gone)."""
    prefix, done = ("bench-new" if step.startswith("create") else "bench-del"), 0
    for i in range(count):
        try:
            status = mwaa.get_environment(Name=f"{prefix}-{label}-{i}")["Environment"]["Status"]
        except mwaa.exceptions.ResourceNotFoundException:
            status = "GONE"
        done += status in (("CREATING", "AVAILABLE") if prefix == "bench-new" else ("DELETING", "GONE"))
    return done


class Events:
    """One event per invocation: `make(i)` for the i-th (cold runs first, then the warm-up)."""

    def __init__(self, make):
        self.make, self.next = make, 0

    def take(self, _i=None):
        self.next += 1
        return self.make(self.next - 1)


def paused(s3, names):
    """What a pause leaves for each name: the saved configuration and the snapshot."""
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"configurations/{name}/latest.json",
                      Body=json.dumps(configuration(name)).encode())
        s3.put_object(Bucket=BUCKET, Key=f"snapshots/{name}/latest.json", Body=json.dumps({
            "environment": name, "manifest": f"s3://{EXPORT_BUCKET}/{name}/manifest.json",
            "paused_at": "2026-11-21T20:00:00Z", "active_dags": ["etl"]}).encode())


def proven(s3, names):
    """What a pause records before it deletes (delete-environment's proof): the snapshot of an
    export EXECUTION verified."""
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"snapshots/{name}/latest.json", Body=json.dumps({
            "environment": name, "execution": EXECUTION, "manifest": "s3://b/m.json",
            "verified": {"verified": True, "environment": name, "execution": EXECUTION,
                         "manifest": "s3://b/m.json"}}).encode())


def export(s3, rows):
    """Table objects of `rows` lines in all (like a 2.x export: most of them task instances)
    and the manifest; returns (manifest key, its SHA-256, tampered manifest key, MiB)."""
    rnd = random.Random(7)
    prefix = f"mwaa-ops/metadata/{ENVIRONMENT}/dt=2026-11-21/20261121T020000Z"
    shares = [0.45, 0.1, 0.15, 0.15, 0.02, 0.08, 0.0499, 0.0001]
    entries, size = [], 0
    for table, share in zip(TABLES, shares):
        n = max(1, int(rows * share))
        lines = (json.dumps({"id": i, "dag_id": f"etl_{i % 97}", "run_id": f"scheduled__{i:09d}",
                             "state": rnd.choice(("success", "failed", "up_for_retry")),
                             "try_number": rnd.randint(1, 4), "hostname": f"ip-10-0-{i % 250}",
                             "duration": rnd.random() * 600}) + "\n" for i in range(n))
        body = gzip.compress("".join(lines).encode(), compresslevel=6)
        key = f"{prefix}/{table}/{table}.jsonl.gz"
        s3.put_object(Bucket=EXPORT_BUCKET, Key=key, Body=body)
        entries.append({"table": table, "key": key, "rows": n,
                        "sha256": hashlib.sha256(body).hexdigest()})
        size += len(body)
    manifest = {"format": "mwaa-ops-metadata/1", "export_id": "bench", "airflow_version": "2.10.3",
                "environment": ENVIRONMENT, "created_at": "2026-11-21T02:00:00+00:00",
                "active_dags": ["etl_1"], "tables": entries}
    raw = json.dumps(manifest, indent=1).encode()
    s3.put_object(Bucket=EXPORT_BUCKET, Key=f"{prefix}/manifest.json", Body=raw)
    entries[0] = dict(entries[0], rows=entries[0]["rows"] + 1)
    s3.put_object(Bucket=EXPORT_BUCKET, Key=f"{prefix}/tampered.json",
                  Body=json.dumps(manifest).encode())
    return f"{prefix}/manifest.json", hashlib.sha256(raw).hexdigest(), f"{prefix}/tampered.json", size / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=os.path.expanduser("~/.cache/mwaa-ops/target/release"))
    ap.add_argument("--warm", type=int, default=50)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--export-rows", type=int, default=1_000_000)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the baseline")
    ap.add_argument("--steps", default="environment-status,save-configuration,verify-export,"
                    "create-environment,delete-environment,run-dag,enable-dags")
    ap.add_argument("--airflow", default="2.10.3",
                    help="the bed's Airflow, for run-dag and enable-dags (\"\" without them)")
    args = ap.parse_args()
    bins = Path(args.bin_dir)
    steps = args.steps.split(",")
    missing = [s for s in steps if not (bins / s).exists()]
    if missing:
        raise SystemExit(f"no binaries {missing} in {bins}; build them (see scripts/bench)")
    profile = "release" if "release" in bins.parts else "debug"

    import boto3
    from botocore.config import Config

    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-pr-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.airflow:
        steps = [s for s in steps if s not in ("run-dag", "enable-dags")]
    with BedSession(args.airflow, workdir) as run:
        info = run.info
        s3 = boto3.client("s3", endpoint_url=info["moto_url"], region_name="us-east-1")
        mwaa = boto3.client("mwaa", endpoint_url=info["mwaa_url"], region_name="us-east-1",
                            config=Config(inject_host_prefix=False))
        for b in (BUCKET, EXPORT_BUCKET):
            s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=BUCKET, Key=f"overrides/{ENVIRONMENT}/skip-next-pause", Body=b"")
        available(mwaa, [ENVIRONMENT, AIRFLOW_ENVIRONMENT] if args.airflow else [ENVIRONMENT])
        per_function = args.cold + args.warm + 1
        if "delete-environment" in steps:
            doomed = [f"bench-del-{label}-{i}" for label in ("rust", "python") for i in range(per_function)]
            available(mwaa, doomed)
            proven(s3, doomed)
        if "create-environment" in steps:
            paused(s3, [f"bench-new-{label}-{i}" for label in ("rust", "python")
                        for i in range(per_function)])
        log(f"writing an export of {args.export_rows} rows")
        manifest, sha, tampered, mib = export(s3, args.export_rows)
        moto_proxy, mwaa_proxy = run.proxy(info["moto_url"]), run.proxy(info["mwaa_url"])
        token = "AQB4AAAAKgAAAAMAAAAAAAAAA"  # a task token's shape; each run gets its own
        events = {  # step -> label -> i -> event
            "environment-status": lambda label: lambda i: {"environment": ENVIRONMENT,
                                                           "skip_marker": "skip-next-pause"},
            "save-configuration": lambda label: lambda i: {"environment": ENVIRONMENT},
            "verify-export": lambda label: lambda i: {"bucket": EXPORT_BUCKET, "manifest_key": manifest,
                                                      "manifest_sha256": sha, "manifest_version_id": "v-bench",
                                                      "environment": ENVIRONMENT,
                                                      "execution": EXECUTION, "execution_started": STARTED},
            "create-environment": lambda label: lambda i: {"environment": f"bench-new-{label}-{i}"},
            "delete-environment": lambda label: lambda i: {"environment": f"bench-del-{label}-{i}",
                                                           "execution": EXECUTION},
            "run-dag": lambda label: lambda i: {"environment": AIRFLOW_ENVIRONMENT, "dag": "bed_smoke",
                                                "task_token": f"{token}{label}{i}", "conf": {"bench": i}},
            "enable-dags": lambda label: lambda i: {"environment": AIRFLOW_ENVIRONMENT,
                                                    "dags": ["bed_smoke", "no_such_dag"]},
        }
        # verify-export reads its S3 objects from moto directly: streamed through the timing
        # proxy (Python), 23 MiB cost both sides more than their own work.
        waits = {"environment-status": {"mwaa": "MWAA", "moto": "S3"},
                 "save-configuration": {"mwaa": "MWAA", "moto": "S3"},
                 "verify-export": {},
                 "create-environment": {"mwaa": "MWAA", "moto": "S3"},
                 "delete-environment": {"mwaa": "MWAA", "moto": "S3"},
                 "run-dag": {"mwaa": "MWAA and Airflow"},
                 "enable-dags": {"mwaa": "MWAA and Airflow"}}
        for step in steps:
            moto_url = moto_proxy.url if "moto" in waits[step] else info["moto_url"]
            # Both SDKs ask S3 for the object's CRC by default, and moto computes it in Python
            # per GetObject (S3 stores it): a cost of the emulator, not of either side. The
            # step's own SHA-256 against the manifest checks every byte anyway.
            env = function_env(moto_url, mwaa_proxy.url, step, SUITE_BUCKET=BUCKET, STEP=step,
                               AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
            fns = [run.function("rust", [str(bins / step)], env),
                   run.function("python", [args.python, str(HERE / "baseline_pause_resume.py")], env)]
            results = {}
            for fn in fns:
                log(f"{step} {fn.label}: cold x{args.cold}, warm x{args.warm}")
                each = Events(events[step](fn.label))
                results[fn.label] = {
                    "cold": cold(fn, args.cold, each.take, workdir),
                    "warm": warm(fn, args.warm, each.take, workdir,
                                 {k: {"mwaa": mwaa_proxy, "moto": moto_proxy}[k] for k in waits[step]}),
                }
                if step == "verify-export":
                    bad = dict(each.make(0), manifest_key=tampered, manifest_sha256=None)
                    results[fn.label]["tampered"] = warm(fn, 1, lambda i: bad, workdir, {})["fails"]
                if step in ("create-environment", "delete-environment"):
                    results[fn.label]["done"] = changed(mwaa, step, fn.label, each.next)
            report(step, results, args, profile, bins / step, waits[step], mib)
            print()


def report(step, results, args, profile, binary, waits, mib):
    r, p = results["rust"], results["python"]
    rows = timing_rows(r, p, args.cold, args.warm, "first answer", waits)
    rows.extend(package_rows(binary, HERE / "baseline_pause_resume.py"))
    title = (f"{step} benchmark: Rust ({profile} build, {binary}) vs Python baseline (boto3, "
             f"tests/bench/baseline_pause_resume.py); moto + local MWAA control plane, local "
             f"emulated Runtime API")
    if step == "verify-export":
        title += (f"; export of {args.export_rows:,} rows, {mib:.1f} MiB gzip in {len(TABLES)} "
                  f"objects, read from moto directly (the AWS waits are in every figure)")
        # Handed twice (the warm-up and the measured one): refused both times.
        rows.append(("tampered manifest (a row count off by one) refused",
                     *("yes" if x["tampered"] == 2 else "NO" for x in (r, p))))
    if "done" in r:
        rows.append((f"environments {'created' if step.startswith('create') else 'deleted'} / events",
                     *(f"{x['done']} / {args.cold + args.warm + 1}" for x in (r, p))))
    print_table(title, f"{step} (Rust)", rows)


if __name__ == "__main__":
    main()
