"""The test bed: moto, PostgreSQL with real Airflows, the local MWAA control plane and the
local MWAA Serverless control plane.

    bed.py [--airflow 2.10.3,3.0.6,3.2.1] [--workdir DIR]

Prints one JSON line with the endpoints on stdout, then serves until its standard input
closes (the test process that started it ended), or SIGINT/SIGTERM. Then it stops every
process it started and removes its work directory (kept with MWAA_OPS_KEEP_BED=1).
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script (the Rust tests, scripts/local-up, tests/bed/test_bed.py): Python puts this
# folder on sys.path, so its neighbours import by name.
import airflow_bed
import mwaa_local
import mwaa_serverless_local
from moto_bed import Moto

REGION = "us-east-1"
ACCOUNT = "123456789012"


def log(msg):
    # The process that started the bed may be gone (its end is what stops us): a closed
    # stderr must never keep the teardown from running.
    try:
        print(f"[bed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class Bed:
    def __init__(self, versions, workdir: Path):
        self.versions = versions
        self.workdir = workdir
        self.moto = Moto(workdir)
        self.postgres = None
        self.airflows = []
        self.control_plane = None
        self.serverless = None

    def start(self):
        t0 = time.time()
        self.moto.start()
        log(f"moto at {self.moto.url} ({time.time() - t0:.1f}s)")
        if self.versions:
            t1 = time.time()
            # Inherited by every Airflow process: DAG tasks (the export/import DAGs) call AWS
            # with boto3, and the bed's AWS is moto.
            os.environ.update(AWS_ENDPOINT_URL=self.moto.url, AWS_ACCESS_KEY_ID="testing",
                              AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
                              PYTHONPATH=str(airflow_bed.boto_shim(self.workdir)))
            self.postgres = airflow_bed.Postgres()
            self.postgres.start(self.workdir / "postgres")
            # The DAGs every bed Airflow sees: the bed's own and the ones the suite ships.
            folder = airflow_bed.dags_folder(self.workdir / "dags",
                                             (airflow_bed.DAGS, airflow_bed.SUITE_DAGS))
            self.airflows = [airflow_bed.Airflow(v, self.postgres, folder, self.workdir / f"airflow-{v}")
                             for v in self.versions]
            errors = []

            def start(af):
                try:
                    af.start()
                    # Tests may use any bed DAG at once: wait until each is parsed.
                    for dag in sorted(airflow_bed.DAGS.glob("*.py")):
                        af.wait_for_dag(dag.stem, timeout=180)
                except Exception as e:  # reported below, after every start ended
                    errors.append(f"Airflow {af.version}: {e}")

            threads = [threading.Thread(target=start, args=(af,)) for af in self.airflows]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise RuntimeError("; ".join(errors))
            log(f"Airflow {', '.join(self.versions)} ready ({time.time() - t1:.1f}s)")
        self.control_plane = mwaa_local.serve(
            moto_url=self.moto.url, airflows=[af.info() for af in self.airflows],
            region=REGION, account=ACCOUNT)
        self.serverless = mwaa_serverless_local.serve(region=REGION, account=ACCOUNT,
                                                      moto_url=self.moto.url)
        log(f"MWAA control plane at {self.control_plane.url}, MWAA Serverless at "
            f"{self.serverless.url}; bed up in {time.time() - t0:.1f}s")

    def endpoints(self):
        return {"moto_url": self.moto.url, "mwaa_url": self.control_plane.url,
                "serverless_url": self.serverless.url,
                "region": REGION, "account": ACCOUNT,
                "airflows": [af.info() for af in self.airflows], "workdir": str(self.workdir)}

    def stop(self):
        # Each part is stopped even when another one fails to: nothing may be left running.
        parts = ([self.control_plane.shutdown] if self.control_plane else []) + \
            ([self.serverless.shutdown] if self.serverless else []) + \
            [af.stop for af in self.airflows] + \
            ([self.postgres.stop] if self.postgres else []) + [self.moto.stop]
        for stop in parts:
            try:
                stop()
            except Exception as e:
                log(f"stop failed: {e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", default=",".join(airflow_bed.per_commit_versions()),
                        help="comma-separated Airflow versions to run ('' for none; default: the "
                             "per-commit ones of functions/common/airflow-versions.json)")
    parser.add_argument("--workdir", help="where logs and databases go (default: a temp dir)")
    args = parser.parse_args()
    versions = [v for v in args.airflow.split(",") if v]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mwaa-ops-bed-"))
    workdir.mkdir(parents=True, exist_ok=True)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    bed = Bed(versions, workdir)
    try:
        bed.start()
        print(json.dumps(bed.endpoints()), flush=True)
        # Standard input closing means the process that started the bed is gone.
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        while not done.wait(1):
            pass
    except Exception as e:
        log(f"failed: {e} (logs in {workdir})")
        raise SystemExit(1)
    finally:
        log("stopping")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut teardown short
        bed.stop()
        if os.environ.get("MWAA_OPS_KEEP_BED") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        log("stopped")


if __name__ == "__main__":
    main()
