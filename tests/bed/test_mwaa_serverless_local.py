"""The local MWAA Serverless control plane (mwaa_serverless_local.py) through boto3: client
token idempotency, the refusals of botocore's model, runs and faults.

Run: .bed/venv/bin/python -m pytest tests/bed/test_mwaa_serverless_local.py
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import mwaa_serverless_local

CREDS = {"region_name": "us-east-1", "aws_access_key_id": "testing",
         "aws_secret_access_key": "testing"}
ROLE = "arn:aws:iam::123456789012:role/workflow-role"


@pytest.fixture(scope="module")
def plane():
    handle = mwaa_serverless_local.serve()
    yield handle
    handle.shutdown()


@pytest.fixture
def client(plane):
    plane.plane.reset()
    return boto3.client("mwaa-serverless", endpoint_url=plane.url,
                        config=Config(retries={"total_max_attempts": 1}), **CREDS)


def admin(plane, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{plane.url}/_bed/{path}", data=data,
                                     method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def workflow(client, name="etl") -> str:
    return client.create_workflow(Name=name, RoleArn=ROLE, DefinitionS3Location={
        "Bucket": "dags", "ObjectKey": f"{name}.yaml"})["WorkflowArn"]


def code(err: pytest.ExceptionInfo) -> str:
    return err.value.response["Error"]["Code"]


def test_a_workflow_arn_follows_the_model_and_names_are_unique(client):
    arn = workflow(client)
    model = mwaa_serverless_local.service_model().shape_for("WorkflowArn")
    errors = []
    mwaa_serverless_local.shape_errors(model, arn, "WorkflowArn", errors)
    assert errors == [], errors
    with pytest.raises(ClientError) as err:
        workflow(client)
    assert code(err) == "ConflictException"


def test_the_same_token_and_input_is_the_same_run(client):
    arn = workflow(client)
    first = client.start_workflow_run(WorkflowArn=arn, ClientToken="s3-abc",
                                      OverrideParameters={"key": "in/a.csv", "size": 3})
    again = client.start_workflow_run(WorkflowArn=arn, ClientToken="s3-abc",
                                      OverrideParameters={"key": "in/a.csv", "size": 3})
    assert first["RunId"] == again["RunId"]
    assert first["Status"] == "STARTING"
    runs = client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]
    assert [r["RunId"] for r in runs] == [first["RunId"]]
    got = client.get_workflow_run(WorkflowArn=arn, RunId=first["RunId"])
    assert got["OverrideParameters"] == {"key": "in/a.csv", "size": 3}
    assert got["RunDetail"]["RunState"] == "STARTING"

    # Another token (or none: the SDK fills in a fresh one) is another run.
    client.start_workflow_run(WorkflowArn=arn, ClientToken="s3-def")
    client.start_workflow_run(WorkflowArn=arn)
    assert len(client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]) == 3


def test_the_same_token_with_another_input_is_a_conflict(client, plane):
    arn, other = workflow(client), workflow(client, "other")
    client.start_workflow_run(WorkflowArn=arn, ClientToken="t1", OverrideParameters={"a": 1})
    for kwargs in ({"WorkflowArn": arn, "OverrideParameters": {"a": 2}},
                   {"WorkflowArn": other, "OverrideParameters": {"a": 1}}):
        with pytest.raises(ClientError) as err:
            client.start_workflow_run(ClientToken="t1", **kwargs)
        assert code(err) == "ConflictException"
        assert err.value.response["ResourceId"] == "t1"
    assert len(admin(plane, "runs")) == 1


def test_unknown_workflows_and_runs_are_not_found(client):
    missing = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/gone-0123456789"
    with pytest.raises(ClientError) as err:
        client.start_workflow_run(WorkflowArn=missing, ClientToken="t")
    assert code(err) == "ResourceNotFoundException"
    arn = workflow(client)
    with pytest.raises(ClientError) as err:
        client.get_workflow_run(WorkflowArn=arn, RunId="nope")
    assert code(err) == "ResourceNotFoundException"
    assert client.list_workflow_runs(WorkflowArn=missing)["WorkflowRuns"] == []


@pytest.mark.parametrize("kwargs, message", [
    ({"WorkflowArn": "arn:aws:airflow-serverless:us-east-1:1:workflow/x"},
     "at 'workflowArn' failed to satisfy constraint: Member must satisfy regular expression"),
    ({"ClientToken": "has space"}, "at 'clientToken' failed to satisfy constraint"),
    ({"ClientToken": "x" * 129}, "Member must have length less than or equal to 128"),
    ({"OverrideParameters": {"version_id": None}}, "Member must not be null"),
])
def test_requests_breaking_the_model_are_refused(client, kwargs, message):
    request = {"WorkflowArn": workflow(client), **kwargs}
    body = json.dumps(request).encode()
    # Raw, as boto3 validates some of these itself before sending.
    answer = urllib.request.Request(client.meta.endpoint_url + "/", data=body, method="POST",
                                    headers={"X-Amz-Target": "AmazonMWAAServerless.StartWorkflowRun",
                                             "Content-Type": "application/x-amz-json-1.0"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(answer)
    assert err.value.code == 400
    refused = json.loads(err.value.read())
    assert refused["__type"] == "ValidationException"
    assert message in refused["Message"], refused
    assert refused["Reason"] == "fieldValidationFailed"


def test_injected_faults_and_an_answer_lost_after_the_run_started(client, plane):
    arn = workflow(client)
    admin(plane, "faults", [{"operation": "StartWorkflowRun", "kind": "throttle"},
                            {"operation": "StartWorkflowRun", "kind": "server_error",
                             "after": True}])
    with pytest.raises(ClientError) as err:
        client.start_workflow_run(WorkflowArn=arn, ClientToken="t")
    assert code(err) == "ThrottlingException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(ClientError) as err:
        client.start_workflow_run(WorkflowArn=arn, ClientToken="t")
    assert code(err) == "InternalServerException"
    run = client.start_workflow_run(WorkflowArn=arn, ClientToken="t")
    assert [r["RunId"] for r in client.list_workflow_runs(WorkflowArn=arn)["WorkflowRuns"]] \
        == [run["RunId"]], "the retry found the run the lost answer started"
    calls = [c for c in admin(plane, "calls") if c["operation"] == "StartWorkflowRun"]
    assert [(c.get("fault"), c.get("after", False)) for c in calls] == \
        [("throttle", False), ("server_error", True), (None, False)]
    admin(plane, "faults", [{"kind": "access_denied"}])
    with pytest.raises(ClientError) as err:
        client.start_workflow_run(WorkflowArn=arn, ClientToken="t")
    assert code(err) == "AccessDeniedException"
    assert "airflow-serverless:StartWorkflowRun" in err.value.response["Error"]["Message"]


def test_run_statuses_follow_the_model(client, plane):
    arn = workflow(client)
    run_id = client.start_workflow_run(WorkflowArn=arn)["RunId"]
    admin(plane, "run-status", {"RunId": run_id, "Status": "SUCCESS"})
    assert client.get_workflow_run(WorkflowArn=arn, RunId=run_id)["RunDetail"]["RunState"] \
        == "SUCCESS"
    with pytest.raises(urllib.error.HTTPError):
        admin(plane, "run-status", {"RunId": run_id, "Status": "DONE"})
