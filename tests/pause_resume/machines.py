"""The production state machine definitions, deployed into moto's Step Functions.

Only the Lambda tasks change: moto cannot invoke a Lambda function without Docker, so each
`lambda:invoke` task becomes `sqs:sendMessage.waitForTaskToken` to one queue, where the
step worker (tests/src/bin/step-worker.rs) runs the real Rust handler of the named function
and answers the token the way the Lambda integration would ({"Payload": output}, or the
handler's error type and message). Every other state, Retry, Catch, Choice and the
aws-sdk/events integrations run as written, except one default scaled to the bed: the
time the pause and resume wait for warm trigger-dag instances after setting or removing the
pausing mark (`pausing_wait_seconds`, 150 s in AWS for a 30 s cache and a 90 s Timeout) is
BED_PAUSING_WAIT for step-worker's 1 s cache and invocations of about a second.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "infra" / "statemachines"
BED_PAUSING_WAIT = 4
LAMBDA_TASKS = ("arn:aws:states:::lambda:invoke", "arn:aws:states:::lambda:invoke.waitForTaskToken")
# DefinitionSubstitutions name -> the binary serving it (infra/template.yaml).
FUNCTIONS = {
    "EnvironmentStatusFunctionArn": "environment-status",
    "SaveConfigurationFunctionArn": "save-configuration",
    "CreateEnvironmentFunctionArn": "create-environment",
    "DeleteEnvironmentFunctionArn": "delete-environment",
    "RunDagFunctionArn": "run-dag",
    "VerifyExportFunctionArn": "verify-export",
    "EnableDagsFunctionArn": "enable-dags",
    "TriggerDagFunctionArn": "trigger-dag",
}


def definition(name: str, substitutions: dict, queue_url: str, poll_seconds: int | None = None) -> dict:
    """`name`.asl.json with the template's substitutions and the Lambda tasks rewritten;
    `poll_seconds` scales the machines' default poll (60 s) for a test whose executions are
    started without it in their input, as the schedule starts them."""
    text = (MACHINES / f"{name}.asl.json").read_text()
    for key, value in substitutions.items():
        text = text.replace("${%s}" % key, value)
    machine = json.loads(text)
    unresolved = [k for k in FUNCTIONS if "${%s}" % k in text]
    assert not unresolved, unresolved
    # The bed lets the machines' SQS calls through unchecked: only its own stand-ins for
    # Lambda tasks may be SQS (tests/bed/iam_states.py).
    assert "arn:aws:states:::sqs:" not in text and "arn:aws:states:::aws-sdk:sqs:" not in text, \
        f"{name}: an SQS task the bed would not check"
    defaults = machine["States"].get("Defaults", {}).get("Result", {})
    if "pausing_wait_seconds" in defaults:
        defaults["pausing_wait_seconds"] = BED_PAUSING_WAIT
    if poll_seconds is not None and "poll_seconds" in defaults:
        defaults["poll_seconds"] = poll_seconds
    for state in machine["States"].values():
        if state.get("Resource") not in LAMBDA_TASKS:
            continue
        params = state["Parameters"]
        state["Parameters"] = {"QueueUrl": queue_url, "MessageBody": {
            "machine": name,
            "function": params["FunctionName"].split(":function:")[-1],
            "payload": params["Payload"],
            "token.$": "$$.Task.Token",
            "callback": state["Resource"].endswith(".waitForTaskToken")}}
        state["Resource"] = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    return machine


def deploy(sfn, region: str, account: str, queue_url: str, bucket: str, key_arn: str,
           stack: str = "mwaa-ops", poll_seconds: int | None = None) -> dict:
    """Creates `<stack>-pause` and `<stack>-resume`; returns their ARNs by name."""
    substitutions = {k: f"arn:aws:lambda:{region}:{account}:function:{fn}" for k, fn in FUNCTIONS.items()}
    substitutions.update(SuiteBucket=bucket, SuiteKeyArn=key_arn, Region=region)
    arns = {}
    for name in ("pause", "resume"):
        arns[name] = sfn.create_state_machine(
            name=f"{stack}-{name}", roleArn=role_arn(account, stack, name),
            definition=json.dumps(definition(name, substitutions, queue_url, poll_seconds)))["stateMachineArn"]
    return arns


def role_arn(account: str, stack: str, machine: str) -> str:
    """The role the bed creates state machine `machine` with: its integration calls are held
    to the template's role registered for this ARN (machine_keys, tests/bed/iam_states.py)."""
    return f"arn:aws:iam::{account}:role/{stack}-{machine}"


def register(moto_url: str, body: dict) -> str:
    """An access key for a role of the template (tests/bed/iam_moto.py's registration)."""
    import urllib.request
    request = urllib.request.Request(f"{moto_url}/moto-api/bed-iam/roles",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())["access_key"]


def role_keys(moto_url: str, bucket: str, key_arn: str, prefix: str,
              account: str = "123456789012") -> dict:
    """An access key per function, naming its role of the template: the step-worker signs
    each function's calls with it (ROLE_KEYS) and the bed holds them to that role's IAM
    statements (README "How the bed holds us to AWS's rules"). `prefix`:
    EnvironmentNamePrefix."""
    keys = {}
    for function in FUNCTIONS.values():
        role = "".join(part.title() for part in function.split("-")) + "FunctionRole"
        # The execution role the bed's environments use (tests/src/environments.rs, cycle.py):
        # the resume may pass only it (EnvironmentExecutionRoles).
        body = {"role": role, "parameters": {
                    "EnvironmentNamePrefix": prefix,
                    "EnvironmentExecutionRoles": f"arn:aws:iam::{account}:role/mwaa-exec"},
                "resources": {"SuiteBucket": bucket, "SuiteKey": key_arn}}
        keys[function] = register(moto_url, body)
    return keys


def machine_keys(moto_url: str, bucket: str, key_arn: str,
                 account: str = "123456789012", region: str = "us-east-1",
                 stack: str = "mwaa-ops") -> dict:
    """An access key per state machine, naming its role of the template (Pause/Resume
    StateMachineRole): step-worker invokes each machine's functions with it (MACHINE_KEYS)
    and the bed's Lambda service holds the Invoke to that role (tests/bed/iam_lambda.py);
    the machine's own S3 and EventBridge tasks sign with it too (its role_arn,
    tests/bed/iam_states.py)."""
    functions = {logical[:-len("Arn")]: binary for logical, binary in FUNCTIONS.items()}
    return {name: register(moto_url, {
                "role": f"{name.title()}StateMachineRole",
                "role_arn": role_arn(account, stack, name),
                "resources": {**functions, "SuiteBucket": bucket, "SuiteKey": key_arn}})
            for name in ("pause", "resume")}


def schedule_key(moto_url: str, arns: dict, account: str = "123456789012",
                 stack: str = "mwaa-ops") -> str:
    """The schedule machine's role of the template (ScheduleStateMachineRole) for the machine
    created with role_arn(account, stack, "schedule"); `arns`: deploy's answer."""
    return register(moto_url, {
        "role": "ScheduleStateMachineRole", "role_arn": role_arn(account, stack, "schedule"),
        "resources": {"PauseStateMachine": arns["pause"], "ResumeStateMachine": arns["resume"]}})


def fire(moto_url: str, schedule: str, parameters: dict, resources: dict,
         region: str = "us-east-1") -> str:
    """EventBridge Scheduler firing the template's `schedule` (PauseSchedule, ResumeSchedule)
    once: the Target's Input as the template renders it from `parameters`
    (PausedEnvironments), started on the Target's state machine with a key of the Target's role
    (ScheduleRole), so that role's statements decide as on AWS. `resources`: logical id ->
    ARN (ScheduleStateMachine). Returns the execution ARN. Not emulated: the
    cron timing, Scheduler's retries and dead-letter queue."""
    # Imported here: the Rust bed and scripts/local-up run this file as a script, with only
    # its own folder on the path.
    import boto3
    import iam_roles
    written, props = iam_roles.of_type("AWS::Scheduler::Schedule", parameters, resources)[schedule]
    target = props["Target"]
    role, _ = written["Target"]["RoleArn"]["Fn::GetAtt"]
    key = register(moto_url, {"role": role, "parameters": parameters, "resources": resources})
    sfn = boto3.client("stepfunctions", endpoint_url=moto_url, region_name=region,
                       aws_access_key_id=key, aws_secret_access_key="bed")
    return sfn.start_execution(stateMachineArn=target["Arn"], input=target["Input"])["executionArn"]


def scheduler_key(moto_url: str, parameters: dict, resources: dict) -> str:
    """A key of the role Scheduler assumes for the schedules (ScheduleRole of the template)."""
    return register(moto_url, {"role": "ScheduleRole", "parameters": parameters,
                               "resources": resources})


def main(argv=None):
    """`machines.py MOTO_URL BUCKET`: deploys both state machines into moto for the local
    suite (scripts/local-up), with a KMS key and the Lambda-task queue, and prints
    {"pause", "resume", "queue_url", "key_arn", "role_keys", "machine_keys"} as one JSON
    line."""
    import argparse
    import boto3
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("moto_url")
    ap.add_argument("bucket")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="123456789012")
    ap.add_argument("--environment-prefix", default="local",
                    help="EnvironmentNamePrefix the functions' roles are scoped to")
    args = ap.parse_args(argv)
    kw = dict(endpoint_url=args.moto_url, region_name=args.region,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    sqs, kms, sfn = (boto3.client(s, **kw) for s in ("sqs", "kms", "stepfunctions"))
    queue_url = sqs.create_queue(QueueName="lambda-tasks")["QueueUrl"]
    key_arn = kms.create_key(Description="mwaa-ops suite key (local)")["KeyMetadata"]["Arn"]
    arns = deploy(sfn, args.region, args.account, queue_url, args.bucket, key_arn)
    keys = role_keys(args.moto_url, args.bucket, key_arn, args.environment_prefix)
    by_machine = machine_keys(args.moto_url, args.bucket, key_arn, args.account, args.region)
    print(json.dumps(dict(arns, queue_url=queue_url, key_arn=key_arn, role_keys=keys,
                          machine_keys=by_machine)), flush=True)


if __name__ == "__main__":
    main()
