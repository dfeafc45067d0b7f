"""infra/statemachines: the pause and resume definitions as the template deploys them."""
import json
import re
from pathlib import Path

import pytest

import template

ROOT = Path(__file__).resolve().parents[2]
MACHINES = {"PauseStateMachine": "pause.asl.json", "ResumeStateMachine": "resume.asl.json",
            "ScheduleStateMachine": "schedule.asl.json"}
PARAMS = {"EnvironmentNamePrefix": "dev-", "ArrivalBuckets": "landing-zone",
          "PausedEnvironments": "dev-analytics,dev_ml", "AlertEmail": "ops@example.com",
          "EnvironmentExecutionRoles": "arn:aws:iam::123456789012:role/mwaa-exec",
          "ScheduleTimezone": "Europe/Berlin"}


def definition(name):
    return json.loads((ROOT / "infra" / "statemachines" / name).read_text())


def successors(state):
    nxt = [state["Next"]] if "Next" in state else []
    nxt += [c["Next"] for c in state.get("Choices", [])]
    nxt += [state["Default"]] if "Default" in state else []
    nxt += [c["Next"] for c in state.get("Catch", [])]
    return nxt


def reachable(states, start, avoid=()):
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name in avoid:
            continue
        seen.add(name)
        todo.extend(successors(states[name]))
    return seen


@pytest.fixture(scope="module")
def cfn():
    cfn = template.translate(overrides=PARAMS)
    return template.resolve(cfn, template.parameter_values(cfn, PARAMS))


@pytest.mark.parametrize("name", MACHINES.values())
def test_every_task_retries_and_every_failure_ends_in_a_fail_state(name):
    states = definition(name)["States"]
    for state_name, state in states.items():
        assert all(n in states for n in successors(state)), state_name
        if state["Type"] != "Task":
            continue
        assert state.get("Retry") and state.get("TimeoutSeconds"), state_name
        catches = state["Catch"]
        assert catches[-1]["ErrorEquals"] == ["States.ALL"], state_name
        ends = {states[n]["Type"] for c in catches for n in reachable(states, c["Next"]) if "Next" not in states[n]
                and states[n]["Type"] in ("Fail", "Succeed")}
        if state["Resource"].endswith("events:putEvents"):
            continue  # the announcement is best effort; the work is done
        assert ends == {"Fail"}, (state_name, ends)
    assert all(s["Type"] != "Task" or "Next" in s or s.get("End") for s in states.values())


def test_a_pause_never_deletes_an_environment_whose_export_was_not_verified():
    states = definition("pause.asl.json")["States"]
    assert "DeleteEnvironment" in reachable(states, states and definition("pause.asl.json")["StartAt"])
    for gate in ("VerifyExport", "IsAvailable", "RunExport"):
        assert "DeleteEnvironment" not in reachable(states, "Defaults", avoid={gate}), gate
    # A failed verification re-enables the DAGs the export paused, then fails.
    assert states["VerifyExport"]["Catch"][0]["Next"] == "ReenableDags"
    after = reachable(states, "ReenableDags")
    assert "PauseFailed" in after and "DeleteEnvironment" not in after


@pytest.mark.parametrize("name,first,task,more,start", [
    ("pause.asl.json", "ReenableDags", "ReenableDagsBatch", "MoreDagsToReenable", "$.reenabled.result.next"),
    ("resume.asl.json", "StartEnablingDags", "EnableDags", "MoreDagsToEnable", "$.enabled.result.next"),
])
def test_dags_are_enabled_in_batches_the_state_machine_loops_over(name, first, task, more, start):
    states = definition(name)["States"]
    assert states[first]["Result"] == {"result": {"next": 0}} and states[first]["Next"] == task
    assert states[task]["Parameters"]["Payload"]["start.$"] == start
    assert states[task]["ResultSelector"] == {"result.$": "$.Payload"} and states[task]["Next"] == more
    loop = states[more]["Choices"]
    assert loop == [{"Variable": start, "IsNull": False, "Next": task}], loop


def test_held_arrivals_are_replayed_in_batches_until_none_is_left():
    states = definition("resume.asl.json")["States"]
    assert states["StartReplay"]["Next"] == "ReplayHeldArrivals"
    assert states["ReplayHeldArrivals"]["Next"] == "CountReplayed"
    assert states["CountReplayed"]["Next"] == "MoreHeldArrivals"
    assert states["MoreHeldArrivals"]["Choices"] == [
        {"Variable": "$.replay_batch.batch.more", "BooleanEquals": True, "Next": "ReplayHeldArrivals"}]
    counts = states["CountReplayed"]["Parameters"]
    assert set(counts) == {f"{k}.$" for k in states["StartReplay"]["Result"]}
    detail = states["EmitResumed"]["Parameters"]["Entries"][0]["Detail"]
    assert detail["replayed.$"] == "$.replayed"


def test_the_deletion_is_proven_by_this_executions_record():
    states = definition("pause.asl.json")["States"]
    verify = states["VerifyExport"]["Parameters"]["Payload"]
    assert (verify["environment.$"], verify["execution.$"], verify["execution_started.$"]) == (
        "$.environment", "$$.Execution.Id", "$$.Execution.StartTime")
    record = states["SnapshotRecord"]["Parameters"]
    assert (record["execution.$"], record["verified.$"]) == ("$$.Execution.Id", "$.verified.result")
    assert states["DeleteEnvironment"]["Parameters"]["Payload"]["execution.$"] == "$$.Execution.Id"
    assert "DeleteEnvironment" not in reachable(states, "Defaults", avoid={"RecordSnapshot"})


def test_a_failed_deletion_re_enables_the_dags(cfn):
    states = definition("pause.asl.json")["States"]
    assert states["IsDeleted"]["Default"] == "DeletionFailed"
    failed = states["DeletionFailed"]
    assert failed["Type"] == "Pass" and failed["ResultPath"] == "$.failure"
    assert failed["Parameters"]["Error"] == "MwaaOps.DeletionFailed" and failed["Next"] == "ReenableDags"
    assert states["PauseFailed"]["ErrorPath"] == "$.failure.Error"
    # delete-environment reads its proof from the suite bucket.
    function = cfn["Resources"]["DeleteEnvironmentFunction"]["Properties"]
    assert "SUITE_BUCKET" in function["Environment"]["Variables"]


def test_a_resume_records_what_it_restored_and_says_when_it_does_nothing(cfn):
    states = definition("resume.asl.json")["States"]
    assert states["ResumeNeeded"]["Choices"][0]["Next"] == "NothingToResume"
    # Resuming nothing, it may replay what is held (create-environment's `pausing.replay`), and
    # leaves that loop by the same variable ResumeNeeded chose by: it never records a restore.
    said = reachable(states, "NothingToResume", avoid={"RestoreRecord"})
    assert said == {"NothingToResume", "ReplayWithoutResuming", "WaitForArrivalsInFlight", "StartReplay",
                    "ReplayHeldArrivals", "CountReplayed", "MoreHeldArrivals", "ResumedOrNot",
                    "CountNotResumed", "EmitNotResumed", "NotResumed", "ResumeFailed"}, said
    assert states["ResumeNeeded"]["Choices"][0] == {
        "Variable": "$.creation.result.resume_needed", "BooleanEquals": False, "Next": "NothingToResume"}
    assert states["ResumedOrNot"]["Choices"] == [
        {"Variable": "$.creation.result.resume_needed", "BooleanEquals": False, "Next": "CountNotResumed"}]
    assert reachable(states, "EmitNotResumed") == {"EmitNotResumed", "NotResumed"}
    assert states["ReplayWithoutResuming"]["Choices"][0]["Variable"] == "$.creation.result.pausing.replay"
    assert states["NothingToResume"]["Parameters"]["reason.$"] == "$.creation.result.reason"
    assert states["NothingToResume"]["Parameters"]["pausing.$"] == "$.creation.result.pausing"
    # The replay loop ends (no more held arrivals) in the record, then the event.
    assert states["ResumedOrNot"]["Default"] == "RestoreRecord"
    order = ["RestoreRecord", "RecordRestore", "EmitResumed"]
    assert [states[a]["Next"] for a in order[:-1]] == order[1:]
    body = states["RestoreRecord"]["Parameters"]
    assert (body["manifest.$"], body["execution.$"]) == (
        "$.creation.result.snapshot.manifest", "$.creation.result.snapshot.execution")
    assert "restored.json" in states["RecordRestore"]["Parameters"]["Key.$"]
    # The resume may write restore records, never the snapshot records delete-environment trusts.
    role = cfn["Resources"]["ResumeStateMachineRole"]["Properties"]["Policies"]
    puts = [r for p in role for st in p["PolicyDocument"]["Statement"] if "s3:PutObject" in str(st["Action"])
            for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])]
    assert puts and all(str(r).endswith("/snapshots/*/restored.json") for r in puts), puts


def test_resume_notices_create_failed_at_once_and_imports_only_when_available():
    states = definition("resume.asl.json")["States"]
    waiting = {c.get("StringEquals") for c in states["IsAvailable"]["Choices"]
               if c.get("Next") == "WaitForAvailable"} | {
        o["StringEquals"] for c in states["IsAvailable"]["Choices"] for o in c.get("Or", [])}
    assert "CREATE_FAILED" not in waiting and states["IsAvailable"]["Default"] == "CreateFailed"
    assert "RunImport" not in reachable(states, "Defaults", avoid={"IsAvailable"})
    assert "RunImport" not in reachable(states, "Defaults", avoid={"ResumeNeeded"})
    assert states["ResumeNeeded"]["Choices"][0]["Next"] == "NothingToResume"
    order = ["CreateEnvironment", "RunImport", "EnableDags", "ReplayHeldArrivals", "EmitResumed"]
    for a, b in zip(order, order[1:]):
        assert b in reachable(states, a) and a not in reachable(states, b), (a, b)


def test_callback_tasks_wait_for_the_token_with_a_heartbeat():
    for name, task in (("pause.asl.json", "RunExport"), ("resume.asl.json", "RunImport")):
        state = definition(name)["States"][task]
        assert state["Resource"].endswith(".waitForTaskToken")
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        # moto (and a stuck DAG) would otherwise end it after 60 s / never.
        assert 120 <= state["HeartbeatSeconds"] < state["TimeoutSeconds"]


def test_every_substitution_is_provided_by_the_template():
    sam = template.load()
    for logical, name in MACHINES.items():
        text = (ROOT / "infra" / "statemachines" / name).read_text()
        used = set(re.findall(r"\$\{(\w+)\}", text))
        props = sam["Resources"][logical]["Properties"]
        assert used <= set(props["DefinitionSubstitutions"]), (logical, used - set(props["DefinitionSubstitutions"]))
        assert props["DefinitionUri"] == f"statemachines/{name}"


def test_state_machines_are_named_for_the_alert_rule_and_log_without_execution_data(cfn):
    for logical, name in (("PauseStateMachine", "pause"), ("ResumeStateMachine", "resume"),
                          ("ScheduleStateMachine", "schedule")):
        props = cfn["Resources"][logical]["Properties"]
        assert props["StateMachineName"] == f"mwaa-ops-{name}"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    # notify's rule listens to exactly these names.
    [prefix] = template.rule_patterns(PARAMS)["NotifyFunctionExecutionEnded"]["detail"]["stateMachineArn"]
    assert prefix == {"prefix": "arn:aws:states:us-east-1:123456789012:stateMachine:mwaa-ops-"}


def scheduled_input(target):
    """A schedule's Input as EventBridge Scheduler sends it: its Fn::Sub of a Fn::Join of
    PausedEnvironments (resolved by the fixture to the test's values), evaluated."""
    text, variables = target["Input"]["Fn::Sub"]
    delimiter, names = variables["Names"]["Fn::Join"]
    assert names == PARAMS["PausedEnvironments"].split(",")
    return json.loads(text.replace("${Names}", delimiter.join(names)))


def test_one_pause_and_one_resume_schedule_start_every_environment(cfn):
    schedules = {n: r for n, r in cfn["Resources"].items() if r["Type"] == "AWS::Scheduler::Schedule"}
    assert set(schedules) == {"PauseSchedule", "ResumeSchedule"}
    for name, action in (("PauseSchedule", "pause"), ("ResumeSchedule", "resume")):
        schedule = schedules[name]
        assert schedule["Condition"] == "HasPausedEnvironments", "no schedule without environments"
        props = schedule["Properties"]
        assert "Name" not in props, "CloudFormation names them: one stack may be deployed twice"
        assert props["Target"]["Arn"] == {"Ref": "ScheduleStateMachine"}
        assert scheduled_input(props["Target"]) == {"action": action, "environments": ["dev-analytics", "dev_ml"]}
        assert props["ScheduleExpressionTimezone"] == "Europe/Berlin"
        assert props["ScheduleExpression"].startswith("cron(")
        assert props["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    # The scheduler may start the fan-out only; the fan-out may start pause and resume only.
    role = cfn["Resources"]["ScheduleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s["Resource"] for s in role if s["Action"] == "states:StartExecution"] == [{"Ref": "ScheduleStateMachine"}]
    subs = cfn["Resources"]["ScheduleStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert subs == {"PauseStateMachineArn": {"Ref": "PauseStateMachine"},
                    "ResumeStateMachineArn": {"Ref": "ResumeStateMachine"}}


def test_the_schedule_starts_one_pause_or_resume_per_environment_and_nothing_else():
    each = definition("schedule.asl.json")["States"]["EachEnvironment"]
    assert each["Type"] == "Map" and each["ItemsPath"] == "$.environments"
    assert each["MaxConcurrency"] == 0, "all at once: a slow start must not delay the others"
    assert each["ItemSelector"] == {"environment.$": "$$.Map.Item.Value", "action.$": "$.action"}
    states = each["ItemProcessor"]["States"]
    choice = states[each["ItemProcessor"]["StartAt"]]
    routes = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert routes == {"pause": "StartPause", "resume": "StartResume"}
    assert states[choice["Default"]]["Type"] == "Fail"
    for start, machine in (("StartPause", "${PauseStateMachineArn}"), ("StartResume", "${ResumeStateMachineArn}")):
        task = states[start]
        # Not .sync: the fan-out must not wait hours for a resume; each execution alerts itself.
        assert task["Resource"] == "arn:aws:states:::states:startExecution"
        assert task["Parameters"] == {
            "StateMachineArn": machine, "Input": {"environment.$": "$.environment"},
            # Named per schedule execution and environment: a retried start (its first answer
            # lost) is the same execution, or ExecutionAlreadyExists once that one ended.
            "Name.$": "States.Hash(States.Format('{}/{}', $$.Execution.Id, $.environment), 'SHA-1')"}
        assert task["Retry"] and task["TimeoutSeconds"] and task.get("End") is True
        [catch] = task["Catch"]
        assert catch["ErrorEquals"] == ["StepFunctions.ExecutionAlreadyExistsException"]
        assert states[catch["Next"]]["Type"] == "Succeed"


@pytest.mark.parametrize("name", MACHINES.values())
def test_intrinsic_string_literals_use_no_reserved_characters(name):
    """In intrinsic functions, { } ' \\ are reserved inside string literals ('{}' is Format's
    placeholder): the emulator is lenient about it, Step Functions is not."""
    text = json.dumps(definition(name))
    for call in re.findall(r"States\.\w+\((?:[^()]|\([^()]*\))*\)", text):
        for literal in re.findall(r"'([^']*)'", call):
            assert not re.search(r"[{}]", literal.replace("{}", "")), (name, call)


def statements(cfn, role):
    return [st for p in cfn["Resources"][role]["Properties"]["Policies"] for st in p["PolicyDocument"]["Statement"]]


def grants(cfn, role, action):
    """The resources `role` may do `action` on."""
    out = []
    for st in statements(cfn, role):
        if "Fn::If" in st:  # a statement only some deployments have (e.g. EnvironmentKeys)
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if action in actions:
            out += st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
    return [json.dumps(r) for r in out]


def test_a_pause_marks_the_environment_before_the_export_and_waits_out_warm_instances(cfn):
    states = definition("pause.asl.json")["States"]
    assert states["SaveConfiguration"]["Next"] == "MarkPausing"
    assert states["MarkPausing"]["Parameters"]["Key.$"] == "States.Format('pausing/{}', $.environment)"
    assert states["MarkPausing"]["Next"] == "WaitForWarmInstances"
    assert states["WaitForWarmInstances"] == {**states["WaitForWarmInstances"], "Type": "Wait",
                                              "SecondsPath": "$.pausing_wait_seconds", "Next": "RunExport"}
    assert "RunExport" not in reachable(states, "Defaults", avoid={"MarkPausing"})
    assert "RunExport" not in reachable(states, "Defaults", avoid={"WaitForWarmInstances"})
    # The wait covers what a warm trigger-dag may still do on what it read before the mark:
    # its cache time, an invocation's length, and MWAA's 10 s to reach Airflow.
    function = cfn["Resources"]["TriggerDagFunction"]["Properties"]
    cache = int(function["Environment"]["Variables"]["ENVIRONMENT_CACHE_SECONDS"])
    for name in ("pause.asl.json", "resume.asl.json"):
        wait = definition(name)["States"]["Defaults"]["Result"]["pausing_wait_seconds"]
        assert wait >= cache + function["Timeout"] + 10, (name, wait)


def test_every_ending_that_leaves_the_environment_up_ends_the_mark_and_replays(cfn):
    states = definition("pause.asl.json")["States"]
    assert states["MarkPausing"]["Catch"][-1]["Next"] == "EndPausing"
    assert states["EndPausing"]["Parameters"]["Key.$"] == states["MarkPausing"]["Parameters"]["Key.$"]
    assert [states[s]["Next"] for s in ("EndPausing", "WaitForArrivalsInFlight")] == [
        "WaitForArrivalsInFlight", "ReplayHeldArrivals"]
    assert states["ReplayHeldArrivals"]["Parameters"]["FunctionName"] == "${TriggerDagFunctionArn}"
    assert states["MoreHeldArrivals"]["Choices"][0]["Next"] == "ReplayHeldArrivals"
    # From where the environment is known to stay up, no way to PauseFailed skips EndPausing.
    up = [c["Next"] for s in ("MarkPausing", "RunExport", "VerifyExport", "RecordSnapshot", "DeleteEnvironment",
                              "ReenableDagsBatch") for c in states[s]["Catch"]] + ["DeletionFailed"]
    for start in up:
        assert "PauseFailed" not in reachable(states, start, avoid={"EndPausing"}), start
    # The successful pause keeps the mark: the environment is gone, the resume ends it.
    assert "EndPausing" not in reachable(states, "EmitPaused")
    resume = definition("resume.asl.json")["States"]
    assert resume["MoreDagsToEnable"]["Default"] == "EndPausing"
    assert resume["EndPausing"]["Parameters"]["Key.$"] == states["MarkPausing"]["Parameters"]["Key.$"]
    assert [resume[s]["Next"] for s in ("EndPausing", "WaitForArrivalsInFlight")] == [
        "WaitForArrivalsInFlight", "StartReplay"]
    # ... or create-environment found no mark, or ended the mark of a pause that is over
    # (steps/stale_pause.rs), when it answers `pausing.replay`.
    assert "ReplayHeldArrivals" not in reachable(resume, "Defaults", avoid={"EndPausing", "ReplayWithoutResuming"})
    assert resume["ReplayWithoutResuming"]["Choices"] == [{
        "Variable": "$.creation.result.pausing.replay", "BooleanEquals": True, "Next": "WaitForArrivalsInFlight"}]


def test_only_the_state_machines_write_the_mark_and_trigger_dag_lists_it(cfn):
    marks = json.dumps("${SuiteBucket.Arn}/pausing/*")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert marks in grants(cfn, "PauseStateMachineRole", action), action
    assert marks in grants(cfn, "ResumeStateMachineRole", "s3:DeleteObject")
    assert marks not in grants(cfn, "ResumeStateMachineRole", "s3:PutObject")
    # create-environment ends the mark of a pause that is over (the version it read), and
    # asks Step Functions whether that pause runs; it never writes one.
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert marks in grants(cfn, "CreateEnvironmentFunctionRole", action), action
    assert marks not in grants(cfn, "CreateEnvironmentFunctionRole", "s3:PutObject")
    assert grants(cfn, "CreateEnvironmentFunctionRole", "states:DescribeExecution") == [
        json.dumps("arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:*")]
    # Listed, not read: a read of a missing object is 403 without ListBucket on the whole
    # bucket, which trigger-dag does not have (the strict bed refused it).
    assert marks not in grants(cfn, "TriggerDagFunctionRole", "s3:GetObject")
    assert marks not in grants(cfn, "TriggerDagFunctionRole", "s3:PutObject")
    listing = [st for st in statements(cfn, "TriggerDagFunctionRole") if st["Action"] == "s3:ListBucket"]
    assert "pausing/*" in listing[0]["Condition"]["StringLike"]["s3:prefix"], "the mark is listed"
    invoked = json.dumps(grants(cfn, "PauseStateMachineRole", "lambda:InvokeFunction"))
    assert "TriggerDagFunction" in invoked


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "infra" / "statemachines").glob("*.json")),
                         ids=lambda p: p.name)
def test_no_state_machine_names_a_field_twice(path):
    """JSON parsers keep one of two equal keys in silence (which one is theirs to choose):
    a definition says each field once."""
    twice = []

    def pairs(items):
        keys = [k for k, _ in items]
        twice.extend(sorted({k for k in keys if keys.count(k) > 1}))
        return dict(items)
    json.loads(path.read_text(), object_pairs_hook=pairs)
    assert twice == [], twice
