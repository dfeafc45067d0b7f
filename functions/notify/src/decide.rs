//! From a failure (and what was looked up about it) to what notify does: send an alert,
//! watch a PENDING environment, or nothing. Pure: no I/O, most tests live here.

use serde_json::Value;

use crate::event::{EnvironmentStatus, ExecutionEnded, Failure, FunctionFailed, Undelivered};
use crate::message::{clean, Alert, MAX_CAUSE};

/// MWAA statuses that need a person.
pub const FAILING_STATUSES: [&str; 3] = ["CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE"];

const PREFIX: &str = "[mwaa-ops]";

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the suite runs (for console links when an ARN does not say).
    pub region: String,
    /// Alert when an environment is still PENDING this long after it got there; 0: never.
    pub pending_minutes: u64,
}

/// What was looked up about a failure before deciding (best effort: `None` when unknown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The step of a failed execution, from its history.
    pub failed_step: Option<FailedStep>,
    /// The environment's `LastUpdate.Error`, as "code: message".
    pub last_error: Option<String>,
    /// The environment's status now (`Some("NOT_FOUND")` when it is gone).
    pub status_now: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailedStep {
    pub state: String,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Send(Alert),
    /// Schedule a re-check of a PENDING environment `pending_minutes` from now.
    WatchPending {
        environment: String,
        since: String,
    },
    Ignore(String),
}

pub fn decide(failure: &Failure, facts: &Facts, settings: &Settings) -> Plan {
    match failure {
        Failure::Execution(ended) => Plan::Send(execution_alert(ended, facts, settings)),
        Failure::Environment(status) => environment_plan(status, facts, settings),
        Failure::PendingCheck { environment, since } => match facts.status_now.as_deref() {
            Some("PENDING") => Plan::Send(still_pending_alert(environment, since, settings)),
            now => Plan::Ignore(format!(
                "{environment} is no longer PENDING (now {})",
                now.unwrap_or("unknown")
            )),
        },
        Failure::Suite {
            event_id,
            detail_type,
            detail,
        } => Plan::Send(suite_alert(event_id, detail_type, detail, settings)),
        Failure::Function(failed) => Plan::Send(function_alert(failed, settings)),
        Failure::Undelivered(undelivered) => Plan::Send(undelivered_alert(undelivered)),
        Failure::Unknown {
            event_id,
            kind,
            payload,
        } => Plan::Send(unknown_alert(event_id, kind, payload)),
    }
}

/// notify's own failures (SNS was down) come back through the failed-events queue as
/// destination records: report the failure they carry, not notify's.
pub fn own_failure_payload(failure: &Failure) -> Option<&Value> {
    match failure {
        Failure::Function(f)
            if function_name(&f.request_context.function_arn).contains("notify") =>
        {
            Some(&f.request_payload)
        }
        _ => None,
    }
}

fn execution_alert(ended: &ExecutionEnded, facts: &Facts, settings: &Settings) -> Alert {
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
    let step = facts.failed_step.as_ref();
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
    let region = arn_region(&ended.execution_arn).unwrap_or(&settings.region);
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

fn environment_plan(status: &EnvironmentStatus, facts: &Facts, settings: &Settings) -> Plan {
    let name = &status.name;
    if status.status == "PENDING" {
        return if settings.pending_minutes > 0 {
            Plan::WatchPending {
                environment: name.clone(),
                since: status.time.clone(),
            }
        } else {
            Plan::Ignore("PENDING alerts are turned off".into())
        };
    }
    if !FAILING_STATUSES.contains(&status.status.as_str()) {
        return Plan::Ignore(format!("{name} is {}: not a failure", status.status));
    }
    let what = match status.status.as_str() {
        "CREATE_FAILED" => "MWAA could not create the environment. Nothing runs until it is deleted and created again.",
        "UPDATE_FAILED" => "MWAA could not apply an update; the environment may have rolled back to its previous settings.",
        _ => "The environment is unavailable: Airflow does not run tasks and DAG runs cannot be started.",
    };
    let mut lines = vec![
        ("What", what.to_owned()),
        ("Environment", name.clone()),
        ("Status", status.status.clone()),
    ];
    if !status.time.is_empty() {
        lines.push(("Since", status.time.clone()));
    }
    if let Some(error) = &facts.last_error {
        lines.push(("Last error", clean(error, MAX_CAUSE)));
    }
    lines.push(("Console", mwaa_console(&settings.region, name)));
    Plan::Send(Alert {
        kind: "environment-failed",
        environment: Some(name.clone()),
        subject: format!("{PREFIX} MWAA environment {name} is {}", status.status),
        lines,
        event: None,
        fingerprint: format!("environment|{name}|{}", status.status),
    })
}

fn still_pending_alert(environment: &str, since: &str, settings: &Settings) -> Alert {
    let minutes = settings.pending_minutes;
    Alert {
        kind: "environment-pending",
        environment: Some(environment.to_owned()),
        subject: format!("{PREFIX} {environment} still PENDING after {minutes} min: no VPC endpoints"),
        lines: vec![
            ("What", format!("The environment has waited for its customer-managed VPC endpoints for {minutes} minutes.")),
            ("Environment", environment.to_owned()),
            ("Pending since", since.to_owned()),
            ("Console", mwaa_console(&settings.region, environment)),
            ("What to do", "Look for provision-endpoints failures (an earlier alert, or the failed-events queue) and check that the environment's subnets and security groups exist.".into()),
        ],
        event: None,
        fingerprint: format!("pending|{environment}|{since}"),
    }
}

fn suite_alert(event_id: &str, detail_type: &str, detail: &Value, settings: &Settings) -> Alert {
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
        lines.push(("Console", mwaa_console(&settings.region, environment)));
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

fn function_alert(failed: &FunctionFailed, settings: &Settings) -> Alert {
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
    let region = arn_region(&context.function_arn).unwrap_or(&settings.region);
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

fn undelivered_alert(undelivered: &Undelivered) -> Alert {
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

fn unknown_alert(event_id: &str, kind: &str, payload: &Value) -> Alert {
    let digest = crate::message::trim(&payload.to_string(), 4096);
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
fn function_name(arn: &str) -> &str {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1],
        _ => parts.last().copied().unwrap_or(arn),
    }
}

fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn iso8601(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests;
