"""moto server for the bed: S3, EventBridge, SQS, SNS, EC2, Scheduler, Step Functions."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from airflow_bed import free_port

BIN = Path(sys.executable).parent
# Step Functions really execute; Lambda tasks never need Docker (moto would run Lambda code
# in a container: the bed serves Lambda tasks with the real handlers instead, see README.md).
CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def post(url, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


class Moto:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        self.port = free_port()
        env = dict(os.environ, MOTO_PORT=str(self.port),  # its Step Functions call back here
                   # moto's Step Functions read S3 bodies (aws-sdk:s3:getObject) as plain streams;
                   # botocore's checksum-validating wrapper breaks that (moto 5.2.5).
                   AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
        log = open(self.workdir / "moto.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_accounts.py")), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True)
        deadline = time.time() + timeout
        while True:
            try:
                post(f"{self.url}/moto-api/config", CONFIG)
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"moto did not start; see {self.workdir / 'moto.log'}")
                time.sleep(0.1)

    def reset(self):
        post(f"{self.url}/moto-api/reset")
        post(f"{self.url}/moto-api/config", CONFIG)  # reset forgets it

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
