"""BASELINE for the pause/resume steps benchmark -- not part of mwaa-ops, never deployed.

Minimal boto3 Python Lambda handlers doing the core job of the pause/resume steps, the
plain way, so tests/bench/pause_resume.py can compare against them (STEP picks one):

- environment-status: GetEnvironment, and HeadObject of the operator's skip marker;
- save-configuration: GetEnvironment (must be AVAILABLE), keep the fields CreateEnvironment
  takes, put the JSON twice (a timestamped copy and latest.json);
- verify-export: read the manifest (check its SHA-256 when given; it must name the environment
  and be written after the pause started), then stream every table's object: SHA-256 and
  gunzipped line count against the manifest.
- create-environment: read the snapshot and the saved configuration, GetEnvironment, and
  CreateEnvironment from the configuration unless the environment exists;
- delete-environment: read the snapshot record (this execution's verified export, else
  refuse), GetEnvironment, DeleteEnvironment unless it is gone or going;
- run-dag: GetEnvironment, unpause the DAG, start a run named after the task token (409:
  started already) through InvokeRestApi;
- enable-dags: unpause each DAG through InvokeRestApi.

boto3's standard retry mode. They do NOT validate input, classify errors for the state
machines' Retry/Catch, or redact like the Rust steps do.
"""
import datetime
import hashlib
import json
import os
import zlib

import boto3
import botocore.config
import botocore.exceptions

from runtime_loop import serve

_config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                 inject_host_prefix=not os.environ.get("AWS_ENDPOINT_URL_MWAA"))
MWAA = boto3.client("mwaa", config=_config)
S3 = boto3.client("s3", config=_config)
BUCKET = os.environ["SUITE_BUCKET"]
CREATE_FIELDS = ("Name", "AirflowVersion", "ExecutionRoleArn", "SourceBucketArn", "DagS3Path",
                 "NetworkConfiguration", "EnvironmentClass", "Schedulers", "MinWorkers",
                 "MaxWorkers", "MinWebservers", "MaxWebservers", "AirflowConfigurationOptions",
                 "PluginsS3Path", "RequirementsS3Path", "StartupScriptS3Path",
                 "LoggingConfiguration", "KmsKey", "WebserverAccessMode", "WeeklyMaintenanceWindowStart",
                 "Tags", "EndpointManagement")


def environment(name):
    try:
        return MWAA.get_environment(Name=name)["Environment"]
    except MWAA.exceptions.ResourceNotFoundException:
        return None


def environment_status(event):
    name = event["environment"]
    env = environment(name)
    out = {"environment": name, "status": env["Status"] if env else "NOT_FOUND"}
    if event.get("skip_marker"):
        try:
            S3.head_object(Bucket=BUCKET, Key=f"overrides/{name}/{event['skip_marker']}")
            out["skip"] = True
        except botocore.exceptions.ClientError:
            out["skip"] = False
    if env:
        out["airflow_version"] = env.get("AirflowVersion")
    return out


def save_configuration(event):
    name = event["environment"]
    env = environment(name)
    if not env or env["Status"] != "AVAILABLE":
        raise RuntimeError(f"{name} is not AVAILABLE")
    config = {k: env[k] for k in CREATE_FIELDS if k in env}
    logging = config.get("LoggingConfiguration", {})
    config["LoggingConfiguration"] = {  # GetEnvironment adds CloudWatchLogGroupArn
        k: {"Enabled": v["Enabled"], "LogLevel": v["LogLevel"]} for k, v in logging.items()}
    body = json.dumps(config, indent=2, default=str).encode()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    S3.put_object(Bucket=BUCKET, Key=f"configurations/{name}/{stamp}.json", Body=body)
    S3.put_object(Bucket=BUCKET, Key=f"configurations/{name}/latest.json", Body=body)
    return {"environment": name, "key": f"configurations/{name}/latest.json"}


def verify_export(event):
    bucket, key = event["bucket"], event["manifest_key"]
    raw = S3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if event.get("manifest_sha256") and hashlib.sha256(raw).hexdigest() != event["manifest_sha256"]:
        raise RuntimeError("manifest SHA-256 does not match")
    manifest = json.loads(raw)
    problems = []
    if manifest.get("environment") != event["environment"]:
        problems.append("the manifest names another environment")
    created = datetime.datetime.fromisoformat(manifest.get("created_at") or "1970-01-01T00:00:00+00:00")
    if created < datetime.datetime.fromisoformat(event["execution_started"].replace("Z", "+00:00")):
        problems.append("the manifest was written before the pause started")
    if problems:
        raise RuntimeError("; ".join(problems))
    for t in manifest["tables"]:
        try:
            body = S3.get_object(Bucket=bucket, Key=t["key"])["Body"]
        except botocore.exceptions.ClientError:
            problems.append(f"{t['table']}: missing")
            continue
        sha, gunzip, lines, last = hashlib.sha256(), zlib.decompressobj(zlib.MAX_WBITS | 16), 0, b""
        for chunk in body.iter_chunks(1 << 20):
            sha.update(chunk)
            text = gunzip.decompress(chunk)
            lines += text.count(b"\n")
            last = text[-1:] or last
        lines += bool(last) and last != b"\n"
        if sha.hexdigest() != t["sha256"] or lines != t["rows"]:
            problems.append(f"{t['table']}: sha256/rows differ")
    if problems:
        raise RuntimeError("; ".join(problems))
    return {"verified": True, "tables": len(manifest["tables"]),
            "rows": sum(t["rows"] for t in manifest["tables"])}


def read_json(key):
    return json.loads(S3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def create_environment(event):
    name = event["environment"]
    snapshot = read_json(f"snapshots/{name}/latest.json")
    env = environment(name)
    if env:
        return {"environment": name, "created": False, "status": env["Status"], "snapshot": snapshot}
    config = read_json(f"configurations/{name}/latest.json")
    MWAA.create_environment(**config)
    return {"environment": name, "created": True, "status": "CREATING", "snapshot": snapshot}


def delete_environment(event):
    name, execution = event["environment"], event["execution"]
    record = read_json(f"snapshots/{name}/latest.json")
    verified = record.get("verified") or {}
    if (record.get("environment"), record.get("execution"), verified.get("environment"),
            verified.get("execution"), verified.get("verified")) != (name, execution, name, execution, True):
        raise RuntimeError(f"refusing to delete {name}: no snapshot record of this execution")
    env = environment(name)
    if not env or env["Status"] in ("DELETING", "DELETED"):
        return {"environment": name, "deleted": False}
    MWAA.delete_environment(Name=name)
    return {"environment": name, "deleted": True, "status": "DELETING"}


def rest(name, method, path, body=None, query=None):
    kwargs = {"Name": name, "Method": method, "Path": path}
    if body is not None:
        kwargs["Body"] = body
    if query:
        kwargs["QueryParameters"] = query
    try:
        return MWAA.invoke_rest_api(**kwargs)["RestApiStatusCode"]
    except botocore.exceptions.ClientError as e:
        status = e.response.get("RestApiStatusCode")
        if status in (404, 409):
            return status
        raise


def run_dag(event):
    name, dag, token = event["environment"], event["dag"], event["task_token"]
    env = environment(name)
    if not env or env["Status"] != "AVAILABLE":
        raise RuntimeError(f"{name} is not AVAILABLE")
    if event.get("unpause", True):
        rest(name, "PATCH", f"/dags/{dag}", {"is_paused": False}, {"update_mask": "is_paused"})
    run_id = "mwaa_ops_" + hashlib.sha256(token.encode()).hexdigest()[:32]
    conf = dict(event.get("conf") or {}, task_token=token)
    body = {"dag_run_id": run_id, "conf": conf}
    if env["AirflowVersion"].startswith("3"):
        body["logical_date"] = None
    status = rest(name, "POST", f"/dags/{dag}/dagRuns", body)
    return {"environment": name, "dag": dag, "run_id": run_id, "already_started": status == 409}


def enable_dags(event):
    name, enabled, missing = event["environment"], [], []
    for dag in dict.fromkeys(event["dags"]):
        status = rest(name, "PATCH", f"/dags/{dag}", {"is_paused": False}, {"update_mask": "is_paused"})
        (missing if status == 404 else enabled).append(dag)
    return {"environment": name, "enabled": enabled, "missing": missing}


STEPS = {"environment-status": environment_status, "save-configuration": save_configuration,
         "verify-export": verify_export, "create-environment": create_environment,
         "delete-environment": delete_environment, "run-dag": run_dag, "enable-dags": enable_dags}

if __name__ == "__main__":
    step = STEPS[os.environ["STEP"]]
    serve(lambda event, deadline: step(event))
