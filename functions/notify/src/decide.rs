//! From a failure (and what was looked up about it) to what notify does: send an alert,
//! watch a PENDING environment, or nothing. Pure: no I/O. The alerts' text is alerts.rs's.

use common::Status;
use serde_json::Value;

use crate::alerts;
use crate::event::{EnvironmentStatus, Failure};
use crate::message::Alert;
use crate::ops::FailedStep;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the suite runs (for console links when an ARN does not say).
    pub region: String,
    /// Alert when an environment is still PENDING this long after it got there; 0: never.
    pub pending_minutes: u64,
    /// The stack's `EnvironmentNamePrefix`: status changes of other environments are not
    /// this deployment's (the rule cannot filter the documented event by name).
    pub environment_prefix: String,
}

/// What was looked up about a failure before deciding (best effort: `None` when unknown).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The step of a failed execution, from its history.
    pub failed_step: Option<FailedStep>,
    /// The environment's `LastUpdate.Error`, as "code: message".
    pub last_error: Option<String>,
    /// The environment's status now (`Some(Status::NotFound)` when it is gone): read for a
    /// PENDING check and for a status change that does not say its status.
    pub status_now: Option<Status>,
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
    let region = settings.region.as_str();
    match failure {
        Failure::Execution(ended) => Plan::Send(alerts::execution_failed(
            ended,
            facts.failed_step.as_ref(),
            region,
        )),
        Failure::Environment(status) => environment_plan(status, facts, settings),
        Failure::PendingCheck { environment, since } => match &facts.status_now {
            Some(Status::Pending) => Plan::Send(alerts::still_pending(
                environment,
                since,
                settings.pending_minutes,
                region,
            )),
            now => Plan::Ignore(format!(
                "{environment} is no longer PENDING (now {})",
                now.as_ref().map_or("unknown", Status::as_str)
            )),
        },
        Failure::Suite {
            event_id,
            detail_type,
            detail,
        } => Plan::Send(alerts::dag_failed(event_id, detail_type, detail, region)),
        Failure::RoutesRejected { event_id, detail } => {
            Plan::Send(alerts::routes_rejected(event_id, detail))
        }
        Failure::Function(failed) => Plan::Send(alerts::function_failed(failed, region)),
        Failure::Undelivered(undelivered) => Plan::Send(alerts::undelivered(undelivered)),
        Failure::Unknown {
            event_id,
            kind,
            payload,
        } => Plan::Send(alerts::unknown(event_id, kind, payload)),
    }
}

/// Why a failure is not this deployment's business, decided before anything is looked up
/// (the role may read only the deployment's environments): an MWAA status change of an
/// environment whose name lacks the prefix.
pub fn not_ours(failure: &Failure, settings: &Settings) -> Option<String> {
    match failure {
        Failure::Environment(status) if !status.name.starts_with(&settings.environment_prefix) => {
            Some(format!(
                "{} is outside this deployment's environments (prefix {:?})",
                status.name, settings.environment_prefix
            ))
        }
        // The resume's success reaches notify for the morning digest; it is no failure.
        Failure::Execution(ended) if ended.status == "SUCCEEDED" => {
            Some(format!("{} succeeded", ended.execution_arn))
        }
        _ => None,
    }
}

/// notify's own failures (SNS was down) come back through the failed-events queue as
/// destination records: report the failure they carry, not notify's.
pub fn own_failure_payload(failure: &Failure) -> Option<&Value> {
    match failure {
        Failure::Function(f)
            if alerts::function_name(&f.request_context.function_arn).contains("notify") =>
        {
            Some(&f.request_payload)
        }
        _ => None,
    }
}

/// PENDING is watched (customer-managed endpoints take a while), failing statuses need a
/// person, any other status is not a failure. The status is the event's, else the one
/// GetEnvironment gave.
fn environment_plan(status: &EnvironmentStatus, facts: &Facts, settings: &Settings) -> Plan {
    let Some(now) = status.status.as_ref().or(facts.status_now.as_ref()) else {
        return Plan::Ignore(format!("{}: status unknown", status.name));
    };
    if *now == Status::Pending {
        return if settings.pending_minutes > 0 {
            Plan::WatchPending {
                environment: status.name.clone(),
                since: status.time.clone(),
            }
        } else {
            Plan::Ignore("PENDING alerts are turned off".into())
        };
    }
    if !now.is_failed() {
        return Plan::Ignore(format!("{} is {now}: not a failure", status.name));
    }
    Plan::Send(alerts::environment_failed(
        status,
        now,
        facts.last_error.as_deref(),
        &settings.region,
    ))
}

#[cfg(test)]
mod tests;
