//! The alert for each kind of failure: what a person reads (subject and labelled lines),
//! what machines filter on (kind, environment) and what makes two deliveries "the same
//! failure" (fingerprint). Whether to send one at all is decide.rs's question.

use common::Status;
use serde_json::Value;

use crate::event::{EnvironmentStatus, ExecutionEnded, FunctionFailed, Undelivered};
use crate::message::{clean, iso8601, trim, Alert, MAX_CAUSE};
use crate::ops::FailedStep;

const PREFIX: &str = "[mwaa-ops]";

/// A pause or resume (or another state machine of the stack) ended FAILED, TIMED_OUT or
/// ABORTED; `step` is the failed step read from its history, when it could be read.
pub fn execution_failed(ended: &ExecutionEnded, step: Option<&FailedStep>, region: &str) -> Alert {
    let machine = ended
        .state_machine_arn
        .rsplit(':')
        .next()
        .unwrap_or(&ended.state_machine_arn);
    let workflow = if machine.ends_with("pause") {
        "Pause"
    } else if machine.ends_with("resume") {
        "Resume"
    } else {
        machine
    };
    let environment = ended
        .input
        .as_deref()
        .and_then(|input| serde_json::from_str::<Value>(input).ok())
        .and_then(|input| input.get("environment")?.as_str().map(str::to_owned));
    let error = ended
        .error
        .clone()
        .or_else(|| step.and_then(|s| s.error.clone()));
    let cause = ended
        .cause
        .clone()
        .or_else(|| step.and_then(|s| s.cause.clone()));
    let of = environment
        .as_deref()
        .map(|e| format!(" of {e}"))
        .unwrap_or_default();
    let at = step.map(|s| format!(" at {}", s.state)).unwrap_or_default();
    let status = ended.status.replace('_', " ");
    let mut lines = vec![("What", format!("{workflow}{of} ended {status}{at}."))];
    if let Some(environment) = &environment {
        lines.push(("Environment", environment.clone()));
    }
    lines.push((
        "Step",
        step.map(|s| s.state.clone())
            .unwrap_or_else(|| "unknown (see the execution's history)".into()),
    ));
    lines.push(("Error", error.unwrap_or_else(|| ended.status.clone())));
    if let Some(cause) = cause {
        lines.push(("Cause", clean(&cause, MAX_CAUSE)));
    }
    if let Some(start) = ended.start_date {
        lines.push(("Started", iso8601(start)));
    }
    lines.push(("Execution", ended.execution_arn.clone()));
    let region = arn_region(&ended.execution_arn).unwrap_or(region);
    lines.push((
        "Console",
        format!(
            "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{}",
            ended.execution_arn
        ),
    ));
    lines.push((
        "What to do",
        match workflow {
            "Pause" => "A pause deletes nothing before the export is verified: if it failed earlier, the environment is still there and its DAGs were re-enabled. Fix the cause and start the pause again.".into(),
            "Resume" => "The saved configuration and the export are kept. Fix the cause and start the resume again: steps already done are skipped.".into(),
            _ => "Open the execution in the console: the failed step's input and error are there.".to_string(),
        },
    ));
    Alert {
        kind: "execution-failed",
        environment,
        subject: format!("{PREFIX} {workflow}{of} {status}{at}"),
        lines,
        event: None,
        fingerprint: format!("execution|{}|{}", ended.execution_arn, ended.status),
    }
}

/// An environment entered a failing status; `last_error` is its `LastUpdate.Error`, when
/// GetEnvironment could be read.
/// `now` is the failing status: the event's, or GetEnvironment's when the event says none.
pub fn environment_failed(
    status: &EnvironmentStatus,
    now: &Status,
    last_error: Option<&str>,
    region: &str,
) -> Alert {
    let name = &status.name;
    let what = match now {
        Status::CreateFailed => "MWAA could not create the environment. Nothing runs until it is deleted and created again.",
        Status::UpdateFailed => "MWAA could not apply an update; the environment may have rolled back to its previous settings.",
        _ => "The environment is unavailable: Airflow does not run tasks and DAG runs cannot be started.",
    };
    let mut lines = vec![
        ("What", what.to_owned()),
        ("Environment", name.clone()),
        ("Status", now.to_string()),
    ];
    if !status.time.is_empty() {
        lines.push(("Since", status.time.clone()));
    }
    if let Some(error) = last_error {
        lines.push(("Last error", clean(error, MAX_CAUSE)));
    }
    lines.push(("Console", mwaa_console(region, name)));
    Alert {
        kind: "environment-failed",
        environment: Some(name.clone()),
        subject: format!("{PREFIX} MWAA environment {name} is {now}"),
        lines,
        event: None,
        fingerprint: format!("environment|{name}|{now}"),
    }
}

/// The environment is still PENDING `minutes` after it got there.
pub fn still_pending(environment: &str, since: &str, minutes: u64, region: &str) -> Alert {
    Alert {
        kind: "environment-pending",
        environment: Some(environment.to_owned()),
        subject: format!("{PREFIX} {environment} still PENDING after {minutes} min: no VPC endpoints"),
        lines: vec![
            ("What", format!("The environment has waited for its customer-managed VPC endpoints for {minutes} minutes.")),
            ("Environment", environment.to_owned()),
            ("Pending since", since.to_owned()),
            ("Console", mwaa_console(region, environment)),
            ("What to do", "Look for provision-endpoints failures (an earlier alert, or the failed-events queue) and check that the environment's subnets and security groups exist.".into()),
        ],
        event: None,
        fingerprint: format!("pending|{environment}|{since}"),
    }
}

/// The export or import DAG failed outside a state machine (the suite's own event).
pub fn dag_failed(event_id: &str, detail_type: &str, detail: &Value, region: &str) -> Alert {
    let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
    let environment = text("environment");
    let of = environment
        .as_deref()
        .map(|e| format!(" of {e}"))
        .unwrap_or_default();
    let what = detail_type.trim_end_matches(" Failed").to_lowercase();
    let mut lines = vec![("What", format!("The {what} DAG failed{of}."))];
    if let Some(environment) = &environment {
        lines.push(("Environment", environment.clone()));
    }
    if let (Some(dag), Some(run)) = (text("dag_id"), text("run_id")) {
        lines.push(("DAG run", format!("{dag} / {run}")));
    }
    lines.push((
        "Error",
        clean(
            &text("error").unwrap_or_else(|| "(none given)".into()),
            MAX_CAUSE,
        ),
    ));
    if let Some(Value::Array(dags)) = detail.get("dags_reenabled") {
        let names: Vec<&str> = dags.iter().filter_map(Value::as_str).collect();
        lines.push(("DAGs re-enabled", names.join(", ")));
    }
    if let Some(environment) = &environment {
        lines.push(("Console", mwaa_console(region, environment)));
    }
    Alert {
        kind: "metadata-failed",
        environment,
        subject: format!("{PREFIX} {detail_type}{of}"),
        lines,
        event: None,
        fingerprint: format!(
            "suite|{detail_type}|{}",
            text("run_id").unwrap_or_else(|| event_id.to_owned())
        ),
    }
}

/// trigger-dag did not use a routes file, or some routes of it: which file, route and field,
/// why, and which routes arrivals follow meanwhile. Two instances reporting the same version
/// of a file are one alert.
pub fn routes_rejected(event_id: &str, detail: &Value) -> Alert {
    let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
    let file = text("file").unwrap_or_else(|| "(file not named)".into());
    let key = text("key").unwrap_or_else(|| file.clone());
    let route = text("route").unwrap_or_else(|| "(the whole document)".into());
    let field = text("field");
    let mut lines = vec![
        (
            "What",
            format!("trigger-dag did not use routes file {key}, or some of its routes."),
        ),
        ("File", file.clone()),
        ("Route", route.clone()),
    ];
    if let Some(field) = &field {
        lines.push(("Field", field.clone()));
    }
    lines.push((
        "Problem",
        clean(
            &text("reason").unwrap_or_else(|| "(none given)".into()),
            MAX_CAUSE,
        ),
    ));
    let problems: Vec<String> = detail
        .get("problems")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|p| p.get("message")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if problems.len() > 1 {
        lines.push(("All problems", clean(&problems.join("; "), MAX_CAUSE)));
    }
    if let Some(kept) = text("kept") {
        lines.push(("Used meanwhile", kept));
    }
    lines.push(("What to do", format!(
        "Fix the file and copy it again (aws s3 cp sales.json {file}): trigger-dag reads it within a minute (ROUTES_RELOAD_SECONDS). Until then arrivals follow the routes named above."
    )));
    let at = match &field {
        Some(field) => format!("{route}: field `{field}`"),
        None => route.clone(),
    };
    Alert {
        kind: "routes-rejected",
        environment: None,
        subject: format!("{PREFIX} Routes file {key} rejected: {at}"),
        lines,
        event: None,
        fingerprint: format!(
            "routes|{file}|{}|{at}",
            text("etag").unwrap_or_else(|| event_id.to_owned())
        ),
    }
}

/// A function gave up on an event after its retries (its on-failure destination record).
pub fn function_failed(failed: &FunctionFailed, region: &str) -> Alert {
    let context = &failed.request_context;
    let function = function_name(&context.function_arn);
    let response = failed.response_payload.as_ref();
    let field = |key: &str| response.and_then(|r| r.get(key)?.as_str().map(str::to_owned));
    let error = clean(
        &field("errorMessage").unwrap_or_else(|| "(no error message)".into()),
        MAX_CAUSE,
    );
    let attempts = context
        .approximate_invoke_count
        .map(|n| format!(" after {n} attempts"))
        .unwrap_or_default();
    let payload = &failed.request_payload;
    let environment = payload
        .get("environment")
        .or_else(|| payload.pointer("/detail/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let region = arn_region(&context.function_arn).unwrap_or(region);
    let mut lines = vec![
        (
            "What",
            format!("{function} gave up on an event{attempts}; the event is below."),
        ),
        ("Function", context.function_arn.clone()),
        ("Error", error.clone()),
    ];
    if let Some(kind) = field("errorType") {
        lines.push(("Error type", kind));
    }
    if let Some(condition) = &context.condition {
        lines.push(("Condition", condition.clone()));
    }
    if let Some(time) = &failed.timestamp {
        lines.push(("At", time.clone()));
    }
    lines.push(("Request id", context.request_id.clone()));
    lines.push((
        "Console",
        format!("https://{region}.console.aws.amazon.com/lambda/home?region={region}#/functions/{function}"),
    ));
    lines.push(("What to do", "Fix the cause, then send the event again (aws events put-events, or aws lambda invoke with the event as payload). Runs are idempotent: a re-sent arrival never starts a second run.".into()));
    Alert {
        kind: "function-failed",
        environment,
        subject: format!("{PREFIX} {function} failed{attempts}: {error}"),
        lines,
        event: Some(payload.clone()),
        fingerprint: format!("function|{}", context.request_id),
    }
}

/// An EventBridge rule could not deliver an event to its target (a rule dead letter).
pub fn undelivered(undelivered: &Undelivered) -> Alert {
    let event_id = common::event::event_id(&undelivered.event);
    let target = undelivered
        .target_arn
        .as_deref()
        .map(function_name)
        .unwrap_or("its target");
    let code = undelivered.error_code.as_deref().unwrap_or("unknown error");
    let mut lines = vec![
        ("What", format!("EventBridge could not deliver an event to {target} and gave up; the event is below.")),
        ("Error", format!("{code}: {}", undelivered.error_message.as_deref().unwrap_or("(no message)"))),
    ];
    if let Some(rule) = &undelivered.rule_arn {
        lines.push(("Rule", rule.clone()));
    }
    if let Some(target) = &undelivered.target_arn {
        lines.push(("Target", target.clone()));
    }
    lines.push(("Event id", event_id.clone()));
    lines.push((
        "What to do",
        "Check the target exists and may be invoked by the rule, then send the event again.".into(),
    ));
    Alert {
        kind: "event-undelivered",
        environment: None,
        subject: format!("{PREFIX} Event not delivered to {target}: {code}"),
        lines,
        event: Some(undelivered.event.clone()),
        fingerprint: format!(
            "undelivered|{}|{event_id}|{}",
            undelivered.rule_arn.as_deref().unwrap_or(""),
            undelivered.message_id
        ),
    }
}

/// Anything notify cannot read as a failure: shown whole, so that nothing is lost.
pub fn unknown(event_id: &str, kind: &str, payload: &Value) -> Alert {
    let digest = trim(&payload.to_string(), 4096);
    Alert {
        kind: "unknown",
        environment: None,
        subject: format!("{PREFIX} Unknown event kind: {kind}"),
        lines: vec![
            ("What", "notify received an event it cannot read as a failure. It is shown below so that nothing is lost.".into()),
            ("Kind", kind.to_owned()),
            ("Event id", event_id.to_owned()),
        ],
        event: Some(payload.clone()),
        fingerprint: format!("unknown|{event_id}|{digest}"),
    }
}

fn mwaa_console(region: &str, environment: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/mwaa/home?region={region}#environments/{environment}")
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` -> NAME (any ARN: its name part).
pub fn function_name(arn: &str) -> &str {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1],
        _ => parts.last().copied().unwrap_or(arn),
    }
}

fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests;
