"""The state machines' own AWS calls held to their roles (iam_states.py): each S3,
EventBridge and Step Functions task of the pause, resume and schedule definitions, run as
written in moto's Step Functions, succeeds with the template's role and fails with AWS's
error name when the role lacks the one statement that grants it.

Run: .bed/venv/bin/python -m pytest tests/bed/test_iam_states.py
"""
from __future__ import annotations

import json
import re
import time
import urllib.request

import boto3
import pytest

import machines
# The same moto under moto_accounts.py as the accounts tests, reset before each test.
from test_accounts import OWNER as ACCOUNT, REGION, TESTING as ADMIN, fresh, moto  # noqa: F401

BUCKET = "mwaa-ops-suite"
ENVIRONMENT = "local-analytics"
# What the tasks below read from their input ($.…), as the machines carry it there.
INPUT = {"environment": ENVIRONMENT, "snapshot": {"export_id": "e1"},
         "export": {"manifest": "exports/local-analytics/e1/manifest.json"},
         "configuration": {"Name": ENVIRONMENT}, "restore": {"snapshot": "e1"},
         "outcome": {"reason": "not paused", "pausing": False}, "replayed": [],
         "creation": {"result": {"snapshot": {"manifest": "m"}}}}

# (machine, task state, the statement of the machine's role that grants its call, the action
# IAM refuses without it, on what: an object key of the suite bucket, the default bus or the
# machine the schedule starts)
TASKS = [
    ("pause", "ConsumeSkipMarker", "ConsumeSkipMarkers", "s3:DeleteObject",
     f"overrides/{ENVIRONMENT}/skip-next-pause"),
    ("pause", "MarkPausing", "PausingMarks", "s3:PutObject", f"pausing/{ENVIRONMENT}"),
    ("pause", "RecordSnapshot", "Snapshots", "s3:PutObject",
     f"snapshots/{ENVIRONMENT}/latest.json"),
    ("pause", "EmitPaused", "PublishSuiteEvents", "events:PutEvents", "default"),
    ("pause", "EndPausing", "PausingMarks", "s3:DeleteObject", f"pausing/{ENVIRONMENT}"),
    ("resume", "RecordRestore", "RestoreRecords", "s3:PutObject",
     f"snapshots/{ENVIRONMENT}/restored.json"),
    ("resume", "EndPausing", "EndPausingMarks", "s3:DeleteObject", f"pausing/{ENVIRONMENT}"),
    ("resume", "EmitResumed", "PublishSuiteEvents", "events:PutEvents", "default"),
    ("resume", "EmitNotResumed", "PublishSuiteEvents", "events:PutEvents", "default"),
    ("schedule", "StartPause", "StartPauseAndResume", "states:StartExecution", "pause"),
    ("schedule", "StartResume", "StartPauseAndResume", "states:StartExecution", "resume"),
]
# What Step Functions names a task's refused call and how its cause ends, by the service.
ERRORS = {"s3": ("S3.AccessDeniedException", "(Service: S3, Status Code: 403,"),
          "events": ("EventBridge.AccessDeniedException",
                     "(Service: EventBridge, Status Code: 400,"),
          "states": ("StepFunctions.AccessDeniedException",
                     "(Service: StepFunctions, Status Code: 400,")}


def admin(moto, service):
    return boto3.client(service, endpoint_url=moto.url, **ADMIN)


def refusals(moto):
    return json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused").read())


def states_of(definition):
    """Every state by name, those inside Map and Parallel states too."""
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for inner in [state.get("ItemProcessor"), state.get("Iterator")] + state.get("Branches", []):
            if inner:
                found.update(states_of(inner))
    return found


class Suite:
    """The suite's bucket, key and Lambda-task queue, and the pause and resume machines'
    ARNs (stand-ins: the schedule only starts them)."""

    def __init__(self, moto):
        self.moto = moto
        s3 = admin(moto, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.key_arn = admin(moto, "kms").create_key()["KeyMetadata"]["Arn"]
        self.queue = admin(moto, "sqs").create_queue(QueueName="lambda-tasks")["QueueUrl"]
        self.sfn = admin(moto, "stepfunctions")
        idle = json.dumps({"StartAt": "Idle", "States": {"Idle": {"Type": "Pass", "End": True}}})
        self.targets = {name: self.sfn.create_state_machine(
            name=f"mwaa-ops-{name}", definition=idle,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/unchecked")["stateMachineArn"]
            for name in ("pause", "resume")}
        functions = {k: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
                     for k, fn in machines.FUNCTIONS.items()}
        self.substitutions = {**functions, "SuiteBucket": BUCKET, "SuiteKeyArn": self.key_arn,
                              "Region": REGION, "PauseStateMachineArn": self.targets["pause"],
                              "ResumeStateMachineArn": self.targets["resume"]}

    def arn_of(self, action: str, target: str) -> str:
        """The ARN IAM authorises `action` on (TASKS' last column)."""
        return {"s3": f"arn:aws:s3:::{BUCKET}/{target}",
                "events": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{target}",
                "states": self.targets.get(target)}[action.split(":")[0]]

    def role(self, machine: str, role_arn: str, without=()):
        """Registers the template's role of `machine` for `role_arn`, less `without`."""
        resources = {"SuiteBucket": BUCKET, "SuiteKey": self.key_arn,
                     "PauseStateMachine": self.targets["pause"],
                     "ResumeStateMachine": self.targets["resume"],
                     **{k[:-len("Arn")]: fn for k, fn in machines.FUNCTIONS.items()}}
        machines.register(self.moto.url, {
            "role": f"{machine.title()}StateMachineRole", "role_arn": role_arn,
            "resources": resources, "without": list(without)})

    def task_alone(self, machine: str, state: str) -> dict:
        """`state` of `machine` as the bed deploys it, alone: no Retry or Catch, so the
        execution ends with the task's own outcome."""
        task = dict(states_of(machines.definition(machine, self.substitutions, self.queue))[state])
        for key in ("Retry", "Catch", "Next"):
            task.pop(key, None)
        task["End"] = True
        return {"StartAt": state, "States": {state: task}}

    def run(self, name: str, definition: dict, role_arn: str) -> dict:
        arn = self.sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                            roleArn=role_arn)["stateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=arn,
                                             input=json.dumps(INPUT))["executionArn"]
        deadline = time.monotonic() + 60
        while True:
            described = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, f"{name} still running"
            time.sleep(0.1)


@pytest.mark.parametrize("machine,state,sid,action,target", TASKS,
                         ids=[f"{m}-{s}" for m, s, *_ in TASKS])
def test_each_task_needs_its_statement_of_the_machine_role(moto, machine, state, sid, action,
                                                            target):
    suite = Suite(moto)
    definition = suite.task_alone(machine, state)
    granted, lacking = (f"arn:aws:iam::{ACCOUNT}:role/mwaa-ops-{machine}-{kind}"
                        for kind in ("granted", "lacking"))
    suite.role(machine, granted)
    suite.role(machine, lacking, without=[sid])

    ran = suite.run(f"{machine}-{state}-granted", definition, granted)
    assert (ran["status"], ran.get("error")) == ("SUCCEEDED", None), ran
    assert refusals(moto) == []

    refused = suite.run(f"{machine}-{state}-lacking", definition, lacking)
    error, trailer = ERRORS[action.split(":")[0]]
    assert (refused["status"], refused["error"]) == ("FAILED", error), refused
    assert trailer in refused["cause"], refused["cause"]
    assert [(r["role"], r["action"], r["resource"]) for r in refusals(moto)] == \
        [(f"{machine.title()}StateMachineRole", action, suite.arn_of(action, target))]


def test_the_lambda_task_stand_ins_are_not_held_to_the_machine_role(moto):
    """The rewritten Lambda tasks' sqs:SendMessage (the bed's stand-in for
    lambda:InvokeFunction, which step-worker has checked) is not the machine's own call."""
    suite = Suite(moto)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/mwaa-ops-pause"
    suite.role("pause", role_arn)
    arn = suite.sfn.create_state_machine(
        name="pause-stand-in", roleArn=role_arn,
        definition=json.dumps(suite.task_alone("pause", "SaveConfiguration")))["stateMachineArn"]
    execution = suite.sfn.start_execution(stateMachineArn=arn,
                                          input=json.dumps(INPUT))["executionArn"]
    sqs = admin(moto, "sqs")
    received = []
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=suite.queue, WaitTimeSeconds=1).get("Messages", [])
    suite.sfn.stop_execution(executionArn=execution)
    assert [json.loads(m["Body"])["function"] for m in received] == ["save-configuration"]
    assert refusals(moto) == []


def test_a_machine_whose_role_nobody_registered_is_not_checked(moto):
    suite = Suite(moto)
    ran = suite.run("unregistered", suite.task_alone("pause", "RecordSnapshot"),
                    f"arn:aws:iam::{ACCOUNT}:role/nobody")
    assert ran["status"] == "SUCCEEDED", ran


def test_a_start_without_a_name_gets_a_uuid_as_on_aws(moto):
    """Scheduler starts the schedule machine without a name every night; AWS names each
    execution with a UUID (moto_accounts.patch_unnamed_executions)."""
    sfn = admin(moto, "stepfunctions")
    machine = sfn.create_state_machine(
        name="unnamed-starts", roleArn=f"arn:aws:iam::{ACCOUNT}:role/unregistered",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    )["stateMachineArn"]
    first, second = (sfn.start_execution(stateMachineArn=machine, input='{"action": "pause"}')
                     ["executionArn"] for _ in range(2))
    assert first != second, "the same input started twice is two executions"
    for arn in (first, second):
        name = arn.rsplit(":", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", name), arn


def test_every_task_of_the_machines_but_their_lambda_tasks_is_checked_above():
    """A task added to a definition without a row in TASKS would run unchecked by this file."""
    written = {(machine, name)
               for machine in ("pause", "resume", "schedule")
               for name, state in states_of(json.loads(
                   (machines.MACHINES / f"{machine}.asl.json").read_text())).items()
               if state["Type"] == "Task" and state["Resource"] not in machines.LAMBDA_TASKS}
    assert written == {(machine, state) for machine, state, *_ in TASKS}
