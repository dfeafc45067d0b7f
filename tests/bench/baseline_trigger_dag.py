"""BASELINE for the trigger-dag benchmark -- not part of mwaa-ops, never deployed.

A minimal boto3 Python Lambda handler doing trigger-dag's core job, written the plain way
one would without the suite, so tests/bench/trigger_dag.py can compare against it:
parse the S3 "Object Created" EventBridge event, match a prefix route (ROUTES, same JSON
as trigger-dag, only bucket/prefix/suffix used), derive the same kind of run id
(s3__<file>__<24 hex of SHA-256 of bucket, key, version>), GetEnvironment (Airflow
major), InvokeRestApi POST /dags/{dag}/dagRuns with conf; 409 counts as success.
Throttling/5xx: boto3's standard retry mode plus a small jittered backoff loop.
It does NOT hold arrivals, publish suite events or validate routes like trigger-dag does.

Run as a Lambda custom runtime: `python baseline_trigger_dag.py` with
AWS_LAMBDA_RUNTIME_API set; runtime_loop.py is the minimal loop awslambdaric would run.
"""
import hashlib
import json
import os
import random
import time

import boto3
import botocore.config
import botocore.exceptions

from runtime_loop import serve

RETRYABLE = {"ThrottlingException", "InternalServerException", "ServiceUnavailableException",
             "RestApiServerException", "TooManyRequestsException"}

ROUTES = json.loads(os.environ.get("ROUTES", "[]"))
_config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                 inject_host_prefix=not os.environ.get("AWS_ENDPOINT_URL_MWAA"))
MWAA = boto3.client("mwaa", config=_config)


def _readable(text):
    return "".join(c if (c.isascii() and c.isalnum()) or c in ".-_" else "_" for c in text)[:64]


def run_id(bucket, key, version):
    h = hashlib.sha256()
    for part in (bucket, key, version):
        b = part.encode()
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    file = next((s for s in reversed(key.split("/")) if s), key)
    return f"s3__{_readable(file)}__{h.hexdigest()[:24]}"


def _with_retries(call, deadline):
    delay = 0.2
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            wait = random.uniform(0, delay)
            if code not in RETRYABLE or time.time() + wait >= deadline:
                raise
            time.sleep(wait)
            delay = min(delay * 2, 5.0)


def handler(event, deadline):
    detail = event["detail"]
    bucket, obj = detail["bucket"]["name"], detail["object"]
    key = obj["key"]
    version = obj.get("version-id") or obj["sequencer"]
    runs = []
    for route in ROUTES:
        if route["bucket"] != bucket or not key.startswith(route.get("prefix", "")) \
                or not key.endswith(route.get("suffix", "")):
            continue
        env, dag = route["environment"], route["dag"]
        rid = run_id(bucket, key, version)
        conf = dict(route.get("conf", {}))
        conf.update(bucket=bucket, key=key, size=obj.get("size"), etag=obj.get("etag"),
                    version_id=obj.get("version-id"), sequencer=obj.get("sequencer"),
                    event_time=event.get("time"), event_id=event.get("id"))
        environment = _with_retries(lambda: MWAA.get_environment(Name=env), deadline)["Environment"]
        body = {"dag_run_id": rid, "conf": conf}
        if environment["AirflowVersion"].startswith("3."):
            body["logical_date"] = None
        try:
            _with_retries(lambda: MWAA.invoke_rest_api(
                Name=env, Method="POST", Path=f"/dags/{dag}/dagRuns", Body=body), deadline)
            outcome = "started"
        except botocore.exceptions.ClientError as e:
            if e.response.get("RestApiStatusCode") != 409:
                raise
            outcome = "already_started"
        runs.append({"environment": env, "dag_id": dag, "run_id": rid, "outcome": outcome})
    return {"event_id": event.get("id"), "runs": runs}


if __name__ == "__main__":
    serve(handler)
