//! notify: every failure the suite sees reaches people as one readable SNS email.
//!
//! parse (event.rs) -> look up what explains it (ops.rs) -> decide (decide.rs; the alert
//! for each kind of failure in alerts.rs) -> send once (message.rs, ops.rs) -> report.

pub mod alerts;
pub mod decide;
pub mod event;
#[cfg(test)]
mod fixtures;
pub mod message;
pub mod morning;
pub mod ops;

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsBatchResponse;
use common::retry::with_retries;
use common::Deadline;
use common::{Error, Status};
use serde_json::{json, Value};

use decide::{decide, not_ours, own_failure_payload, Facts, Plan, Settings};
use event::{parse_failure, parse_input, parse_message, Failure, Input};
use message::Alert;
use ops::Ops;

/// The function's state for its lifetime, built once per cold start.
pub struct Notify<O> {
    pub ops: O,
    pub settings: Settings,
    /// The same failure within this window sends one email.
    pub window: Duration,
    /// The morning digest (off when `None`).
    pub digest: Option<morning::DigestSettings>,
}

/// What became of one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent { subject: String },
    Duplicate { subject: String },
    Watching { environment: String },
    Ignored { reason: String },
}

impl<O: Ops + morning::ops::DigestOps> Notify<O> {
    /// Handles one invocation. `own_arn` is this function's ARN (the target of the
    /// PENDING re-check schedule); `deadline` ends retries of transient failures.
    ///
    /// A batch from the failed-events queue answers with the messages that could not be
    /// reported, so SQS keeps exactly those; anything else fails the invocation when its
    /// alert could not be sent, so Lambda retries it and finally dead-letters it.
    pub async fn handle(
        &self,
        event: Value,
        own_arn: &str,
        deadline: Deadline,
    ) -> Result<Value, Error> {
        common::metrics::within("notify", self.handle_event(event, own_arn, deadline)).await
    }

    async fn handle_event(
        &self,
        event: Value,
        own_arn: &str,
        deadline: Deadline,
    ) -> Result<Value, Error> {
        match parse_input(&event)? {
            Input::Queue(messages) => {
                let mut response = SqsBatchResponse::default();
                for message in &messages {
                    let id = message.message_id.clone().unwrap_or_default();
                    // A call started after the deadline could still take an SDK call's
                    // own retries, and every later message one more: past the Timeout
                    // Lambda kills the invocation and SQS redelivers the whole batch.
                    // Once the deadline has passed the rest stay in the queue untried.
                    if deadline.passed() {
                        tracing::warn!(message_id = %id, "deadline reached; SQS keeps the message untried");
                        response.add_failure(id);
                        continue;
                    }
                    match self.report(parse_message(message), own_arn, deadline).await {
                        Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "reported"),
                        Err(err) => {
                            tracing::error!(message_id = %id, error = %err, "not reported; SQS keeps the message");
                            response.add_failure(id);
                        }
                    }
                }
                Ok(serde_json::to_value(response).unwrap_or(Value::Null))
            }
            Input::One(failure) => {
                let ended = match &failure {
                    Failure::Execution(ended) => Some(ended.clone()),
                    _ => None,
                };
                let outcome = self.report(failure, own_arn, deadline).await?;
                tracing::info!(?outcome, "reported");
                let mut answer = match outcome {
                    Outcome::Sent { subject } => json!({"sent": subject}),
                    Outcome::Duplicate { subject } => json!({"duplicate": subject}),
                    Outcome::Watching { environment } => json!({"watching": environment}),
                    Outcome::Ignored { reason } => json!({"ignored": reason}),
                };
                // A resume that ended (whatever its status) may be the morning's last.
                if let Some(ended) = ended {
                    if let Some(digest) = self.morning_digest(&ended, deadline).await? {
                        answer["morning_digest"] = digest;
                    }
                }
                Ok(answer)
            }
        }
    }

    async fn report(
        &self,
        failure: Failure,
        own_arn: &str,
        deadline: Deadline,
    ) -> Result<Outcome, Error> {
        let failure = match own_failure_payload(&failure) {
            Some(payload) => parse_failure(payload).unwrap_or_else(|err| Failure::Unknown {
                event_id: common::event::event_id(payload),
                kind: format!("unreadable event ({err})"),
                payload: payload.clone(),
            }),
            None => failure,
        };
        if let Some(reason) = not_ours(&failure, &self.settings) {
            return Ok(Outcome::Ignored { reason });
        }
        let facts = self.facts(&failure, deadline).await?;
        match decide(&failure, &facts, &self.settings) {
            Plan::Send(alert) => self.send(alert, deadline).await,
            Plan::WatchPending { environment, since } => {
                let at =
                    SystemTime::now() + Duration::from_secs(60 * self.settings.pending_minutes);
                with_retries(deadline, || {
                    self.ops.watch_pending(&environment, &since, at, own_arn)
                })
                .await?;
                Ok(Outcome::Watching { environment })
            }
            Plan::Ignore(reason) => Ok(Outcome::Ignored { reason }),
        }
    }

    /// Looks up what explains a failure. Explanations are best effort (an alert without
    /// the failed step beats no alert), except the status a PENDING check is about.
    async fn facts(&self, failure: &Failure, deadline: Deadline) -> Result<Facts, Error> {
        let mut facts = Facts::default();
        match failure {
            Failure::Execution(ended) => {
                match with_retries(deadline.at_most(deadline.remaining() / 4), || {
                    self.ops.failed_step(&ended.execution_arn)
                })
                .await
                {
                    Ok(step) => facts.failed_step = step,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not read the execution's history")
                    }
                }
            }
            // The documented event says no status: GetEnvironment, the truth, tells it (and
            // why it failed). Without it nothing can be decided, so a failed read fails.
            Failure::Environment(status) if status.status.is_none() => {
                let now = with_retries(deadline.at_most(deadline.remaining() / 2), || {
                    self.ops.environment(&status.name)
                })
                .await?;
                facts.status_now =
                    Some(now.as_ref().map_or(Status::NotFound, |n| n.status.clone()));
                facts.last_error = now.and_then(|n| n.last_error);
            }
            Failure::Environment(status)
                if status.status.as_ref().is_some_and(Status::is_failed) =>
            {
                match with_retries(deadline.at_most(deadline.remaining() / 4), || {
                    self.ops.environment(&status.name)
                })
                .await
                {
                    Ok(now) => facts.last_error = now.and_then(|n| n.last_error),
                    Err(err) => tracing::warn!(error = %err, "could not read the environment"),
                }
            }
            Failure::PendingCheck { environment, .. } => {
                let now = with_retries(deadline.at_most(deadline.remaining() / 2), || {
                    self.ops.environment(environment)
                })
                .await?;
                facts.status_now = Some(now.map_or(Status::NotFound, |n| n.status));
            }
            _ => {}
        }
        Ok(facts)
    }

    /// Publishes unless the same failure was sent within the window. SNS failing fails
    /// the call: the failure stays queued (or is retried, then dead-lettered).
    async fn send(&self, alert: Alert, deadline: Deadline) -> Result<Outcome, Error> {
        let key = alert.fingerprint_hash();
        let subject = alert.subject();
        let environment = alert.environment.clone().unwrap_or_else(|| "none".into());
        match self.ops.sent_within(&key, self.window).await {
            Ok(true) => {
                let outcome = Outcome::Duplicate { subject };
                common::metrics::emit("notify", &environment, &alert_metrics(&outcome));
                return Ok(outcome);
            }
            Ok(false) => {}
            // Better a second email than none.
            Err(err) => tracing::warn!(error = %err, "could not check for an earlier alert"),
        }
        with_retries(deadline, || self.ops.publish(&alert)).await?;
        let outcome = Outcome::Sent { subject };
        common::metrics::emit("notify", &environment, &alert_metrics(&outcome));
        if let Err(err) = self.ops.mark_sent(&key, &alert).await {
            tracing::warn!(error = %err, "sent, but could not remember it: a repeat may send again");
        }
        Ok(outcome)
    }
}

/// What an alert handled counts: sent and de-duplicated together (one 1, the other 0), so a
/// dashboard's Average of either reads as a rate and both lines exist from the first alert.
pub fn alert_metrics(outcome: &Outcome) -> Vec<(common::metrics::Metric, f64)> {
    let (sent, deduplicated) = match outcome {
        Outcome::Sent { .. } => (1.0, 0.0),
        Outcome::Duplicate { .. } => (0.0, 1.0),
        Outcome::Watching { .. } | Outcome::Ignored { .. } => return vec![],
    };
    vec![
        (common::metrics::ALERTS_SENT, sent),
        (common::metrics::ALERTS_DEDUPLICATED, deduplicated),
    ]
}

#[cfg(test)]
mod tests;
