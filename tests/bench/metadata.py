"""Benchmark: mwaa-ops' metadata export/import vs mwaa-dr 2.2.0 (the public DR solution),
on the same history in a real Airflow 2.10.3 metadata database (PostgreSQL).

    .bed/venv/bin/python tests/bench/metadata.py [--runs 10000] [--tis 100]
    (BENCH_PROFILE=1: each step also writes a cProfile pstats file beside work.log)

Prints figures, asserts nothing. Starts the bed with Airflow 2.10.3, seeds --runs dag runs x
--tis task instances (plus an XCom for every 10th, and a connection and a variable holding a
known secret), then times each tool's export of that database and its import into a fresh
database of a new environment (its own Fernet key), each as its own process (wall time, peak
RSS), and reports what each import left: row counts, XComs pointing at the wrong dag run,
whether Airflow's next dag run id is already taken, secrets readable, plaintext secrets in
the exported files. mwaa-dr runs with local storage (its S3 mode only streams the same CSV
to S3); mwaa-ops writes to S3 on moto with a KMS key on moto, as deployed.
"""
import argparse
import base64
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import ROOT, log, start_bed, stop_bed

sys.path.insert(0, str(ROOT / "tests/metadata"))  # the round trips' helpers (task tokens, versioned bucket)
import metadata_bed as mb  # noqa: E402

HERE = Path(__file__).resolve().parent
VERSION = "2.10.3"
MWAA_DR = "mwaa-dr==2.2.0"
SECRET = "bench-s3cr3t-4b1d"
BUCKET = "mwaa-ops-bench-metadata"


def install_mwaa_dr():
    """mwaa-dr into .bed/mwaa-dr (on the work processes' PYTHONPATH only; its one dependency,
    smart-open, is needed for S3 storage alone)."""
    target = ROOT / ".bed" / "mwaa-dr"
    if not (target / "mwaa_dr").exists():
        log(f"installing {MWAA_DR}")
        subprocess.run([str(ROOT / ".bed/uv/bin/uv"), "pip", "install", "--quiet", "--no-deps",
                        "--python", str(ROOT / f".bed/airflow-{VERSION}/bin/python"),
                        "--target", str(target), MWAA_DR], check=True)
    return target


class Database:
    """One Airflow metadata database of the bed's PostgreSQL, with the environment a process
    needs to work on it."""

    def __init__(self, url, fernet, home, pythonpath, moto_url):
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=url,
                        AIRFLOW__CORE__FERNET_KEY=fernet, AIRFLOW__CORE__LOAD_EXAMPLES="False",
                        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"), PYTHONPATH=pythonpath,
                        AWS_ENDPOINT_URL=moto_url, AWS_DEFAULT_REGION="us-east-1",
                        SCARF_ANALYTICS="false", DO_NOT_TRACK="true")
        home.mkdir(parents=True, exist_ok=True)

    def run(self, *args, log_path):
        """Runs metadata_work.py; returns (its JSON answer, wall seconds, peak RSS MiB)."""
        python = ROOT / f".bed/airflow-{VERSION}/bin/python"
        profile = []
        if os.environ.get("BENCH_PROFILE"):  # where the time goes: pstats files beside the log
            profile = ["-m", "cProfile", "-o", f"{log_path}.{args[0]}.pstats"]
        with open(log_path, "ab") as out:
            t0 = time.perf_counter()
            p = subprocess.Popen([str(python), *profile, str(HERE / "metadata_work.py"), *args],
                                 env=self.env,
                                 stdout=subprocess.PIPE, stderr=out)
            stdout = p.stdout.read()
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
        lines = stdout.decode(errors="replace").strip().splitlines()
        if status != 0 or not lines:
            raise SystemExit(f"{args[0]} failed (exit {status}); see {log_path}")
        return json.loads(lines[-1]), wall, usage.ru_maxrss / 1024

    def migrate(self, log_path):
        airflow = ROOT / f".bed/airflow-{VERSION}/bin/airflow"
        with open(log_path, "ab") as out:
            subprocess.run([str(airflow), "db", "migrate"], env=self.env, stdout=out, stderr=out,
                           check=True)


def plaintext_in(path, secret):
    """Files under path (gzip opened) that contain the secret in plain text."""
    hits = []
    for f in sorted(Path(path).rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            if f.suffix == ".gz":
                data = gzip.decompress(data)
            if secret.encode() in data:
                hits.append(f.name)
    return hits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--tis", type=int, default=100)
    args = ap.parse_args()
    import boto3

    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-metadata-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    mwaa_dr = install_mwaa_dr()
    bed = None
    try:
        bed, info = start_bed(VERSION, workdir)
        af = info["airflows"][0]
        shim = Path(info["workdir"]) / "boto"  # the bed's boto3 for the Airflow venv
        pythonpath = os.pathsep.join([str(ROOT / "infra/dags"), str(mwaa_dr), str(shim)])
        aws = dict(endpoint_url=info["moto_url"], region_name="us-east-1")
        mb.versioned_bucket(boto3.client("s3", **aws), BUCKET)
        kms_key = boto3.client("kms", **aws).create_key()["KeyMetadata"]["KeyId"]
        # Both DAGs run only for a task token Step Functions knows: one waiting execution each.
        live_token = lambda: mb.state_machine(boto3.client("stepfunctions", **aws),  # noqa: E731
                                              boto3.client("sqs", **aws))[1]
        source = Database(af["database_url"], af["fernet_key"], workdir / "source", pythonpath,
                          info["moto_url"])
        logs = workdir / "work.log"
        log(f"seeding {args.runs} runs x {args.tis} task instances")
        seeded, seed_s, _ = source.run("seed", str(args.runs), str(args.tis), SECRET, log_path=logs)
        log(f"seeded in {seed_s:.0f} s: {seeded}")
        fernet2 = base64.urlsafe_b64encode(os.urandom(32)).decode()  # the new environment's
        results = {}
        for tool in ("mwaa-ops", "mwaa-dr"):
            made, _, _ = source.run("create-database", f"bench_{tool.replace('-', '_')}",
                                    log_path=logs)
            target_url = made["url"]
            target = Database(target_url, fernet2, workdir / f"target-{tool}", pythonpath,
                              info["moto_url"])
            log(f"{tool}: migrating a fresh database")
            target.migrate(logs)
            log(f"{tool}: export")
            if tool == "mwaa-ops":
                out, ex_s, ex_rss = source.run("ours-export", BUCKET, kms_key, live_token(), log_path=logs)
                files = workdir / "ours-export"
                s3 = boto3.client("s3", **aws)
                for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
                    dest = files / obj["Key"]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(BUCKET, obj["Key"], str(dest))
                log(f"{tool}: import")
                conf = dict(mb.snapshot_conf(out, "bench"), task_token=live_token())
                _, im_s, im_rss = target.run("ours-import", json.dumps(conf), log_path=logs)
            else:
                files = workdir / "mwaa-dr-export"
                _, ex_s, ex_rss = source.run("mwaa-dr-export", str(files), log_path=logs)
                log(f"{tool}: import")
                _, im_s, im_rss = target.run("mwaa-dr-import", str(files), log_path=logs)
            facts, _, _ = target.run("facts", SECRET, log_path=logs)
            size = sum(f.stat().st_size for f in files.rglob("*") if f.is_file())
            results[tool] = {"export_s": ex_s, "export_rss": ex_rss, "import_s": im_s,
                             "import_rss": im_rss, "bytes": size, "facts": facts,
                             "plaintext": plaintext_in(files, SECRET)}
        report(seeded, results, args)
    finally:
        if bed:
            stop_bed(bed)


def report(seeded, results, args):
    o, d = results["mwaa-ops"], results["mwaa-dr"]
    rows = []

    def row(name, f):
        rows.append((name, f(o), f(d)))

    row("export: wall time, s", lambda x: f"{x['export_s']:.1f}")
    row("export: peak RSS, MiB", lambda x: f"{x['export_rss']:.0f}")
    row("export: size of the files, MiB", lambda x: f"{x['bytes'] / 2**20:.1f}")
    row("export: files holding the seeded secret in plain text",
        lambda x: ", ".join(x["plaintext"]) or "none")
    row("import into a fresh environment: wall time, s", lambda x: f"{x['import_s']:.1f}")
    row("import: peak RSS, MiB", lambda x: f"{x['import_rss']:.0f}")
    for table in ("dag_run", "task_instance", "xcom"):
        row(f"after import: {table} rows (source {seeded[table]})",
            lambda x, t=table: str(x["facts"][t]))
    row("after import: XComs pointing at another dag run or none",
        lambda x: str(x["facts"]["xcom_pointing_elsewhere"]))
    row("after import: Airflow's next dag run id already taken",
        lambda x: "yes" if x["facts"]["next_dag_run_id_taken"] else "no")
    row("after import: connection password readable (new Fernet key)",
        lambda x: "yes" if x["facts"]["connection_password_ok"] else "no")
    row("after import: secret variable readable",
        lambda x: "yes" if x["facts"]["variable_ok"] else "no")
    w0 = max(len(a) for a, _, _ in rows)
    print(f"metadata benchmark: mwaa-ops (infra/dags) vs {MWAA_DR}; Airflow {VERSION}, "
          f"{args.runs} dag runs x {args.tis} task instances, PostgreSQL, "
          f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| {'figure'.ljust(w0)} | mwaa-ops | mwaa-dr 2.2.0 |")
    print(f"|{'-' * (w0 + 2)}|---------:|--------------:|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b:>8} | {c:>13} |")


if __name__ == "__main__":
    main()
