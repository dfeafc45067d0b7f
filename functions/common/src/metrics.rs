//! Metrics as CloudWatch embedded metric format (EMF) log lines: one JSON line on standard
//! output per report, which CloudWatch Logs turns into metrics in the function's log group
//! (no PutMetricData call, no extra permission). The functions' runtime (`provided.al2023`)
//! passes standard output through unchanged, so the line reaches the log as written.
//!
//! Every metric the suite emits is in [`CATALOG`]; the dashboard in the template may only
//! reference those (tests/tests/dashboard.rs). Dimensions: `Environment` and `Function`
//! only — environment names are few (one prefix), run ids and keys never become dimensions.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Where the metrics go: `METRICS_NAMESPACE` (the template sets `mwaa-ops/<stack>`, so two
/// stacks in one account keep theirs apart), else [`DEFAULT_NAMESPACE`].
pub const NAMESPACE_VARIABLE: &str = "METRICS_NAMESPACE";
pub const DEFAULT_NAMESPACE: &str = "mwaa-ops";

/// CloudWatch units the suite uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
    /// A plain number (hours, dollars: CloudWatch has no unit for either).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One metric: its name in CloudWatch, its unit, and who emits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub emitted_by: &'static str,
}

const fn metric(name: &'static str, unit: Unit, emitted_by: &'static str) -> Metric {
    Metric {
        name,
        unit,
        emitted_by,
    }
}

pub const ARRIVALS_ROUTED: Metric = metric("ArrivalsRouted", Unit::Count, "trigger-dag");
pub const RUNS_STARTED: Metric = metric("RunsStarted", Unit::Count, "trigger-dag");
pub const RUNS_ALREADY_STARTED: Metric = metric("RunsAlreadyStarted", Unit::Count, "trigger-dag");
pub const ARRIVALS_HELD: Metric = metric("ArrivalsHeld", Unit::Count, "trigger-dag");
pub const ARRIVALS_REPLAYED: Metric = metric("ArrivalsReplayed", Unit::Count, "trigger-dag");
pub const ARRIVALS_SET_ASIDE: Metric = metric("ArrivalsSetAside", Unit::Count, "trigger-dag");
pub const RUNS_FAILED: Metric = metric("RunsFailed", Unit::Count, "trigger-dag");
pub const ENDPOINTS_CREATED: Metric =
    metric("EndpointsCreated", Unit::Count, "provision-endpoints");
pub const ENDPOINTS_DELETED: Metric =
    metric("EndpointsDeleted", Unit::Count, "provision-endpoints");
pub const ALERTS_SENT: Metric = metric("AlertsSent", Unit::Count, "notify");
pub const ALERTS_DEDUPLICATED: Metric = metric("AlertsDeduplicated", Unit::Count, "notify");
/// How long one pause or resume step took (the `Function` dimension names the step).
pub const STEP_SECONDS: Metric = metric("StepSeconds", Unit::Seconds, "pause-resume");
/// A failed pause or resume step.
pub const STEP_FAILURES: Metric = metric("StepFailures", Unit::Count, "pause-resume");
/// 1 when the environment is AVAILABLE, 0 when it is not (paused, being created or deleted),
/// sampled at every pause and resume step that reads it.
pub const ENVIRONMENT_AVAILABLE: Metric =
    metric("EnvironmentAvailable", Unit::Count, "pause-resume");
/// Rows and bytes of a verified export (the pause's verify-export).
pub const EXPORT_ROWS: Metric = metric("ExportRows", Unit::Count, "pause-resume");
pub const EXPORT_BYTES: Metric = metric("ExportBytes", Unit::Bytes, "pause-resume");
/// Hours an environment was deleted overnight, and what that saved in USD at the digest's
/// prices (the morning digest, once per morning).
pub const HOURS_PAUSED: Metric = metric("HoursPaused", Unit::None, "notify");
pub const ESTIMATED_SAVING: Metric = metric("EstimatedSavingUsd", Unit::None, "notify");
/// Every attempt at an MWAA API call (the SDK's retries included), and how many of them MWAA
/// throttled (0 or 1 each, so the line exists before the first throttle); counted by the
/// MWAA client of every function ([`crate::aws::mwaa_client`]).
pub const MWAA_CALLS: Metric = metric("MwaaCalls", Unit::Count, "every function");
pub const MWAA_THROTTLES: Metric = metric("MwaaThrottles", Unit::Count, "every function");
/// MWAA Serverless workflow runs trigger-dag started (`Environment` = the last part of the
/// workflow's ARN: its name and id).
pub const WORKFLOW_RUNS_STARTED: Metric = metric("WorkflowRunsStarted", Unit::Count, "trigger-dag");

/// Every metric the suite emits.
pub const CATALOG: &[Metric] = &[
    ARRIVALS_ROUTED,
    RUNS_STARTED,
    RUNS_ALREADY_STARTED,
    ARRIVALS_HELD,
    ARRIVALS_REPLAYED,
    ARRIVALS_SET_ASIDE,
    RUNS_FAILED,
    ENDPOINTS_CREATED,
    ENDPOINTS_DELETED,
    ALERTS_SENT,
    ALERTS_DEDUPLICATED,
    STEP_SECONDS,
    STEP_FAILURES,
    ENVIRONMENT_AVAILABLE,
    EXPORT_ROWS,
    EXPORT_BYTES,
    HOURS_PAUSED,
    ESTIMATED_SAVING,
    MWAA_CALLS,
    MWAA_THROTTLES,
    WORKFLOW_RUNS_STARTED,
];

tokio::task_local! {
    /// The function whose invocation runs now, for metrics counted below the handler (the
    /// MWAA client's calls); none outside an invocation (the CLI: its output stays its own).
    static FUNCTION: &'static str;
}

/// Runs `work` as an invocation of `function`: what is counted meanwhile is its.
pub async fn within<F: std::future::Future>(function: &'static str, work: F) -> F::Output {
    FUNCTION.scope(function, work).await
}

/// The function whose invocation runs in this task, if any.
pub fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}

/// The EMF document for `values` of one function and environment at `timestamp_ms`;
/// `None` when there is nothing to say.
pub fn document(
    namespace: &str,
    function: &str,
    environment: &str,
    values: &[(Metric, f64)],
    timestamp_ms: u64,
) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let definitions: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [["Environment", "Function"]],
            "Metrics": definitions,
        }]}),
    );
    doc.insert("Environment".into(), json!(environment));
    doc.insert("Function".into(), json!(function));
    for (m, value) in values {
        doc.insert(m.name.into(), json!(value));
    }
    Some(Value::Object(doc))
}

/// Writes one EMF line for `values` (nothing when empty).
pub fn emit(function: &str, environment: &str, values: &[(Metric, f64)]) {
    let namespace = std::env::var(NAMESPACE_VARIABLE)
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if let Some(doc) = document(&namespace, function, environment, values, now) {
        println!("{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_one_emf_document_with_environment_and_function_only() {
        let doc = document(
            "mwaa-ops/prod",
            "trigger-dag",
            "dev",
            &[(RUNS_STARTED, 2.0), (ARRIVALS_HELD, 1.0)],
            1_796_032_800_000,
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"_aws": {"Timestamp": 1_796_032_800_000u64, "CloudWatchMetrics": [{
                "Namespace": "mwaa-ops/prod", "Dimensions": [["Environment", "Function"]],
                "Metrics": [{"Name": "RunsStarted", "Unit": "Count"},
                            {"Name": "ArrivalsHeld", "Unit": "Count"}]}]},
                "Environment": "dev", "Function": "trigger-dag",
                "RunsStarted": 2.0, "ArrivalsHeld": 1.0})
        );
        assert_eq!(
            document("n", "f", "e", &[], 0),
            None,
            "nothing to say, no line"
        );
    }

    #[tokio::test]
    async fn only_an_invocation_has_a_function() {
        assert_eq!(current_function(), None);
        let inside = within("notify", async { current_function() }).await;
        assert_eq!(inside, Some("notify"));
        assert_eq!(current_function(), None);
    }

    #[test]
    fn the_catalog_names_each_metric_once_as_cloudwatch_allows() {
        let mut names: Vec<&str> = CATALOG.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len(), "a name used twice");
        for m in CATALOG {
            // EMF: names up to 1024 characters, not the reserved dimension names.
            assert!(
                !m.name.is_empty() && m.name.len() <= 1024 && m.name.is_ascii(),
                "{m:?}"
            );
            assert!(
                !["Environment", "Function", "_aws"].contains(&m.name),
                "{m:?}"
            );
        }
    }
}
