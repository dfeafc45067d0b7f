//! The AWS calls notify makes, behind one narrow trait: SNS to send, the suite bucket to
//! remember what was sent, Step Functions and MWAA to explain a failure, Scheduler to
//! re-check a PENDING environment later.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use aws_sdk_sns::types::MessageAttributeValue;
use common::{Error, Status};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::message::{iso8601, Alert};

/// Where sent alerts are remembered (one small object per fingerprint).
pub const SENT_PREFIX: &str = "alerts/sent/";

/// An environment's status now and its last update error.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentNow {
    pub status: Status,
    pub last_error: Option<String>,
}

pub trait Ops: Send + Sync {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), Error>> + Send;
    /// Whether an alert with this fingerprint hash was sent less than `window` ago.
    fn sent_within(
        &self,
        fingerprint: &str,
        window: Duration,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    fn mark_sent(
        &self,
        fingerprint: &str,
        alert: &Alert,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn failed_step(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<Option<FailedStep>, Error>> + Send;
    /// `None` when MWAA does not know the environment.
    fn environment(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<EnvironmentNow>, Error>> + Send;
    /// A one-time schedule that invokes `target` with a pending check at `at`.
    fn watch_pending(
        &self,
        environment: &str,
        since: &str,
        at: SystemTime,
        target: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

pub struct AwsOps {
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub mwaa: aws_sdk_mwaa::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub topic_arn: String,
    pub bucket: String,
    /// The role EventBridge Scheduler assumes to invoke notify.
    pub scheduler_role_arn: String,
    /// Where a re-check the scheduler could not deliver goes (the failed-events queue).
    pub dead_letter_arn: Option<String>,
}

impl Ops for AwsOps {
    async fn publish(&self, alert: &Alert) -> Result<(), Error> {
        let mut request = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message(alert.body());
        for (name, value) in alert.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Build {
                    what: format!("SNS message attribute {name}"),
                    reason: e.to_string(),
                })?;
            request = request.message_attributes(name, attribute);
        }
        request
            .send()
            .await
            .map_err(|e| Error::aws("SNS", "Publish", &e))?;
        Ok(())
    }

    async fn sent_within(&self, fingerprint: &str, window: Duration) -> Result<bool, Error> {
        let key = format!("{SENT_PREFIX}{fingerprint}.json");
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(head) => {
                let sent = head
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok());
                Ok(sent.is_some_and(|sent| {
                    SystemTime::now().duration_since(sent).unwrap_or_default() < window
                }))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(Error::aws("S3", "HeadObject", &e)),
        }
    }

    async fn mark_sent(&self, fingerprint: &str, alert: &Alert) -> Result<(), Error> {
        let record = json!({"subject": alert.subject(), "kind": alert.kind,
                            "environment": alert.environment});
        let key = format!("{SENT_PREFIX}{fingerprint}.json");
        common::aws::put_json(
            &self.s3,
            &self.bucket,
            &key,
            record.to_string().into_bytes(),
        )
        .await
    }

    async fn failed_step(&self, execution_arn: &str) -> Result<Option<FailedStep>, Error> {
        let out = self
            .sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .reverse_order(true)
            .max_results(100)
            .send()
            .await
            .map_err(|e| Error::aws("Step Functions", "GetExecutionHistory", &e))?;
        let steps: Vec<HistoryStep> = out.events().iter().map(HistoryStep::from).collect();
        Ok(failed_step(&steps))
    }

    async fn environment(&self, name: &str) -> Result<Option<EnvironmentNow>, Error> {
        let environment = common::aws::get_environment(&self.mwaa, name).await?;
        Ok(environment.map(|e| EnvironmentNow {
            status: Status::of(Some(&e)),
            last_error: e.last_update().and_then(|u| u.error()).map(|err| {
                format!(
                    "{}: {}",
                    err.error_code().unwrap_or("error"),
                    err.error_message().unwrap_or("(no message)")
                )
            }),
        }))
    }

    async fn watch_pending(
        &self,
        environment: &str,
        since: &str,
        at: SystemTime,
        target: &str,
    ) -> Result<(), Error> {
        let millis = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let when = iso8601(millis);
        let target = Target::builder()
            .arn(target)
            .role_arn(&self.scheduler_role_arn)
            .input(
                json!({"check_pending": {"environment": environment, "since": since}}).to_string(),
            )
            .build()
            .map_err(|e| Error::Build {
                what: "the schedule's target".into(),
                reason: e.to_string(),
            })?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| Error::Build {
                what: "the schedule's time window".into(),
                reason: e.to_string(),
            })?;
        let result = self
            .scheduler
            .create_schedule()
            .name(pending_schedule_name(environment))
            .schedule_expression(format!("at({})", when.trim_end_matches('Z')))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .description(format!("mwaa-ops: alert if {environment} is still PENDING"))
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already watching (a repeated PENDING event): one check is enough.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("Scheduler", "CreateSchedule", &e)),
        }
    }
}

/// Schedule names allow 64 characters of `[0-9a-zA-Z-_.]`; environment names allow 80.
pub fn pending_schedule_name(environment: &str) -> String {
    let name = format!("mwaa-ops-pending-{environment}");
    if name.len() <= 64 {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(environment.as_bytes())[..8]);
    let head: String = name.chars().take(47).collect();
    format!("{head}-{hash}")
}

/// The step a failed execution failed in, and the error and cause its history gives.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedStep {
    pub state: String,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One event of an execution's history, as much as finding the failed step needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryStep {
    pub kind: String,
    /// The state's name, on `*StateEntered` events.
    pub entered: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl From<&aws_sdk_sfn::types::HistoryEvent> for HistoryStep {
    fn from(event: &aws_sdk_sfn::types::HistoryEvent) -> Self {
        let (error, cause) = if let Some(d) = event.task_failed_event_details() {
            (d.error(), d.cause())
        } else if let Some(d) = event.lambda_function_failed_event_details() {
            (d.error(), d.cause())
        } else if let Some(d) = event.task_timed_out_event_details() {
            (d.error(), d.cause())
        } else if let Some(d) = event.lambda_function_timed_out_event_details() {
            (d.error(), d.cause())
        } else {
            (None, None)
        };
        HistoryStep {
            kind: event.r#type().as_str().to_owned(),
            entered: event
                .state_entered_event_details()
                .map(|d| d.name().to_owned()),
            error: error.map(str::to_owned),
            cause: cause.map(str::to_owned),
        }
    }
}

/// The step an execution failed in, from its history newest first: the state whose task
/// failed; else the Fail state it ended in (a Choice sent it there); else the state it was
/// in when it timed out or was aborted.
pub fn failed_step(newest_first: &[HistoryStep]) -> Option<FailedStep> {
    let mut failure: Option<&HistoryStep> = None;
    let mut fail_state = None;
    let mut last_state = None;
    for step in newest_first {
        if failure.is_none()
            && (step.kind.ends_with("Failed") || step.kind.ends_with("TimedOut"))
            && !step.kind.starts_with("Execution")
        {
            failure = Some(step);
        }
        let Some(name) = &step.entered else { continue };
        if let Some(failure) = failure {
            return Some(FailedStep {
                state: name.clone(),
                error: failure.error.clone(),
                cause: failure.cause.clone(),
            });
        }
        if step.kind == "FailStateEntered" {
            fail_state.get_or_insert(name);
        } else {
            last_state.get_or_insert(name);
        }
    }
    fail_state.or(last_state).map(|name| FailedStep {
        state: name.clone(),
        error: None,
        cause: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str, entered: Option<&str>) -> HistoryStep {
        HistoryStep {
            kind: kind.into(),
            entered: entered.map(Into::into),
            error: (kind == "TaskFailed").then(|| "MwaaOps.ExportFailed".into()),
            cause: (kind == "TaskFailed").then(|| "busy".into()),
        }
    }

    #[test]
    fn a_caught_task_failure_names_the_task_not_the_fail_state() {
        let history = [
            step("ExecutionFailed", None),
            step("FailStateEntered", Some("PauseFailed")),
            step("TaskStateExited", None),
            step("TaskFailed", None),
            step("TaskStarted", None),
            step("TaskStateEntered", Some("RunExport")),
            step("TaskStateEntered", Some("SaveConfiguration")),
        ];
        let failed = failed_step(&history).unwrap();
        assert_eq!(failed.state, "RunExport");
        assert_eq!(failed.error.as_deref(), Some("MwaaOps.ExportFailed"));
        assert_eq!(failed.cause.as_deref(), Some("busy"));
    }

    #[test]
    fn a_choice_into_a_fail_state_names_the_fail_state() {
        let history = [
            step("ExecutionFailed", None),
            step("FailStateEntered", Some("EnvironmentNotAvailable")),
            step("ChoiceStateEntered", Some("IsAvailable")),
        ];
        assert_eq!(
            failed_step(&history).unwrap().state,
            "EnvironmentNotAvailable"
        );
    }

    #[test]
    fn a_timed_out_execution_names_the_state_it_was_in() {
        let history = [
            step("ExecutionTimedOut", None),
            step("TaskStarted", None),
            step("TaskStateEntered", Some("WaitForExport")),
        ];
        assert_eq!(failed_step(&history).unwrap().state, "WaitForExport");
        assert_eq!(failed_step(&[]), None);
    }

    #[test]
    fn schedule_names_fit_the_scheduler_limits() {
        assert_eq!(pending_schedule_name("dev"), "mwaa-ops-pending-dev");
        let long = pending_schedule_name(&"e".repeat(80));
        assert_eq!(long.len(), 64);
        assert_ne!(long, pending_schedule_name(&"e".repeat(79)));
        // Never a panic on what an event says, even if MWAA would refuse the name.
        assert!(pending_schedule_name(&"é".repeat(60)).chars().count() <= 64);
    }
}
