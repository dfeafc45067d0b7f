//! The handler over a fake of the AWS calls: de-duplication, SNS failures, queue batches.
//! What Lambda is told when an invocation fails is in errors.rs.

mod errors;
mod morning;
mod sparse;

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::*;
use crate::morning::ops::DigestOps;
use crate::morning::{ResumeRun, RunDetail};
use crate::ops::{EnvironmentNow, FailedStep};

const BUDGET: Duration = Duration::from_millis(300);
const OWN_ARN: &str = "arn:aws:lambda:us-east-1:210987654321:function:mwaa-ops-notify";

#[derive(Default)]
struct Fake {
    published: Mutex<Vec<Alert>>,
    sent: Mutex<HashMap<String, SystemTime>>,
    sns_down: Mutex<bool>,
    /// SNS answers every Publish as it does when the account's rate is exceeded.
    sns_throttled: Mutex<bool>,
    publish_attempts: Mutex<u32>,
    environments: Mutex<HashMap<String, EnvironmentNow>>,
    /// GetEnvironment calls, and whether they fail (throttled until the deadline).
    environment_reads: Mutex<u32>,
    mwaa_throttled: Mutex<bool>,
    watches: Mutex<Vec<(String, String, String)>>,
    /// The morning digest's world: resume executions, their details, bucket records,
    /// digests sent (topic, subject, body) and their markers.
    runs: Mutex<Vec<ResumeRun>>,
    details: Mutex<HashMap<String, RunDetail>>,
    records: Mutex<HashMap<String, Value>>,
    digests: Mutex<Vec<(String, String, String)>>,
    digest_markers: Mutex<Vec<String>>,
    /// Another invocation writes the marker between this one's check and its claim.
    digest_claimed_meanwhile: Mutex<bool>,
    /// SNS refuses the digest.
    digest_sns_down: Mutex<bool>,
}

impl DigestOps for Fake {
    async fn resume_runs(&self, _arn: &str, since_ms: i64) -> Result<Vec<ResumeRun>, Error> {
        let runs = self.runs.lock().unwrap();
        Ok(runs
            .iter()
            .filter(|r| r.started_ms >= since_ms)
            .cloned()
            .collect())
    }
    async fn run_detail(&self, execution_arn: &str) -> Result<RunDetail, Error> {
        let details = self.details.lock().unwrap();
        Ok(details.get(execution_arn).cloned().unwrap_or_default())
    }
    async fn record(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.records.lock().unwrap().get(key).cloned())
    }
    async fn digest_sent(&self, date: &str) -> Result<bool, Error> {
        Ok(self
            .digest_markers
            .lock()
            .unwrap()
            .iter()
            .any(|d| d == date))
    }
    async fn claim_digest(&self, date: &str, claim: &Value) -> Result<bool, Error> {
        let mut markers = self.digest_markers.lock().unwrap();
        if std::mem::take(&mut *self.digest_claimed_meanwhile.lock().unwrap()) {
            markers.push(date.into());
            let other = json!({"claimed_by": "another resume's end"});
            let key = crate::morning::marker_key(date);
            self.records.lock().unwrap().insert(key, other);
        }
        if markers.iter().any(|d| d == date) {
            return Ok(false);
        }
        markers.push(date.into());
        let key = crate::morning::marker_key(date);
        self.records.lock().unwrap().insert(key, claim.clone());
        Ok(true)
    }
    async fn release_digest(&self, date: &str) -> Result<(), Error> {
        self.digest_markers.lock().unwrap().retain(|d| d != date);
        Ok(())
    }
    async fn publish_digest(&self, topic: &str, subject: &str, body: &str) -> Result<(), Error> {
        if *self.digest_sns_down.lock().unwrap() {
            return Err(Error::transient("SNS", "Publish", "InternalError"));
        }
        let mut digests = self.digests.lock().unwrap();
        digests.push((topic.into(), subject.into(), body.into()));
        Ok(())
    }
}

impl Ops for Fake {
    async fn publish(&self, alert: &Alert) -> Result<(), Error> {
        *self.publish_attempts.lock().unwrap() += 1;
        if *self.sns_throttled.lock().unwrap() {
            return Err(throttled_publish());
        }
        if *self.sns_down.lock().unwrap() {
            return Err(Error::transient("SNS", "Publish", "InternalError"));
        }
        self.published.lock().unwrap().push(alert.clone());
        Ok(())
    }
    async fn sent_within(&self, fingerprint: &str, window: Duration) -> Result<bool, Error> {
        Ok(self
            .sent
            .lock()
            .unwrap()
            .get(fingerprint)
            .is_some_and(|t| t.elapsed().unwrap_or_default() < window))
    }
    async fn mark_sent(&self, fingerprint: &str, _alert: &Alert) -> Result<(), Error> {
        self.sent
            .lock()
            .unwrap()
            .insert(fingerprint.into(), SystemTime::now());
        Ok(())
    }
    async fn failed_step(&self, _execution_arn: &str) -> Result<Option<FailedStep>, Error> {
        Ok(Some(FailedStep {
            state: "RunExport".into(),
            error: None,
            cause: None,
        }))
    }
    async fn environment(&self, name: &str) -> Result<Option<EnvironmentNow>, Error> {
        *self.environment_reads.lock().unwrap() += 1;
        if *self.mwaa_throttled.lock().unwrap() {
            return Err(Error::transient(
                "MWAA",
                "GetEnvironment",
                "ThrottlingException: Rate exceeded",
            ));
        }
        Ok(self.environments.lock().unwrap().get(name).cloned())
    }
    async fn watch_pending(
        &self,
        environment: &str,
        since: &str,
        _at: SystemTime,
        target: &str,
    ) -> Result<(), Error> {
        self.watches
            .lock()
            .unwrap()
            .push((environment.into(), since.into(), target.into()));
        Ok(())
    }
}

/// What `Error::aws` makes of SNS's answer to a Publish over the account's rate.
fn throttled_publish() -> Error {
    use aws_sdk_sns::error::{ErrorMetadata, SdkError};
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    let answer = PublishError::generic(
        ErrorMetadata::builder()
            .code("Throttling")
            .message("Rate exceeded")
            .build(),
    );
    let raw = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty());
    Error::aws("SNS", "Publish", &SdkError::service_error(answer, raw))
}

fn notify(window: Duration) -> Notify<Fake> {
    Notify {
        ops: Fake::default(),
        settings: Settings {
            region: "us-east-1".into(),
            pending_minutes: 30,
            // The samples name environments of several prefixes (the prefix has its own tests).
            environment_prefix: String::new(),
        },
        window,
        digest: None,
    }
}

impl Notify<Fake> {
    /// One invocation as Lambda makes it: this function's ARN, the test's budget.
    async fn run(&self, event: Value) -> Result<Value, Error> {
        self.handle(event, OWN_ARN, common::Deadline::after(BUDGET))
            .await
    }
}

/// analytics-shared (PENDING since 07:14:05) is watched by a schedule that calls this
/// function back.
fn assert_watched_back_to_this_function(n: &Notify<Fake>) {
    assert_eq!(
        n.ops.watches.lock().unwrap().as_slice(),
        [(
            "analytics-shared".into(),
            "2026-11-21T07:14:05Z".into(),
            OWN_ARN.into()
        )]
    );
}

fn sample(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The messages a queue batch's answer asks SQS to keep.
fn failed_ids(answer: &Value) -> Vec<&str> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect()
}

fn subjects(n: &Notify<Fake>) -> Vec<String> {
    n.ops
        .published
        .lock()
        .unwrap()
        .iter()
        .map(Alert::subject)
        .collect()
}

#[tokio::test]
async fn the_same_failure_delivered_twice_sends_one_email_within_the_window() {
    let n = notify(Duration::from_secs(3600));
    let event = sample(include_str!("../../../events/sfn-execution-failed.json"));
    let first = n.run(event.clone()).await.unwrap();
    let second = n.run(event).await.unwrap();
    assert!(first.get("sent").is_some(), "{first}");
    assert!(second.get("duplicate").is_some(), "{second}");
    assert_eq!(
        subjects(&n),
        ["[mwaa-ops] Pause of dev-analytics FAILED at RunExport"]
    );
}

#[test]
fn each_alert_handled_counts_sent_and_deduplicated_together() {
    let named = |outcome: Outcome| -> Vec<(&'static str, f64)> {
        alert_metrics(&outcome)
            .into_iter()
            .map(|(m, v)| (m.name, v))
            .collect()
    };
    let subject = || "[mwaa-ops] x".to_string();
    assert_eq!(
        named(Outcome::Sent { subject: subject() }),
        [("AlertsSent", 1.0), ("AlertsDeduplicated", 0.0)]
    );
    assert_eq!(
        named(Outcome::Duplicate { subject: subject() }),
        [("AlertsSent", 0.0), ("AlertsDeduplicated", 1.0)]
    );
    // No alert handled, nothing to average over.
    let watching = Outcome::Watching {
        environment: "dev".into(),
    };
    assert_eq!(named(watching), []);
    let ignored = Outcome::Ignored {
        reason: "not ours".into(),
    };
    assert_eq!(named(ignored), []);
}

#[tokio::test]
async fn after_the_window_the_same_failure_is_sent_again() {
    let n = notify(Duration::ZERO);
    let event = sample(include_str!(
        "../../../events/mwaa-status-create-failed.json"
    ));
    n.run(event.clone()).await.unwrap();
    n.run(event).await.unwrap();
    assert_eq!(subjects(&n).len(), 2);
}

#[tokio::test]
async fn when_sns_fails_the_invocation_fails_and_nothing_is_marked_sent() {
    let n = notify(Duration::from_secs(3600));
    *n.ops.sns_down.lock().unwrap() = true;
    let event = sample(include_str!(
        "../../../events/mwaa-status-create-failed.json"
    ));
    let err = n.run(event.clone()).await.unwrap_err();
    assert!(err.to_string().contains("SNS Publish"), "{err}");
    assert!(n.ops.sent.lock().unwrap().is_empty());
    *n.ops.sns_down.lock().unwrap() = false;
    n.run(event).await.unwrap();
    assert_eq!(subjects(&n).len(), 1, "the retry sends it");
}

#[tokio::test]
async fn a_queue_batch_keeps_exactly_the_messages_that_were_not_sent() {
    let n = notify(Duration::from_secs(3600));
    let batch = sample(include_str!("../../../events/sqs-failed-events.json"));
    let answer = n.run(batch.clone()).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let sent = subjects(&n);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        sent[1].starts_with(
            "[mwaa-ops] Event not delivered to mwaa-ops-trigger-dag: SDK_CLIENT_ERROR"
        ),
        "{sent:?}"
    );
    assert!(
        sent[2]
            .starts_with("[mwaa-ops] Unknown event kind: failed-events message that is not JSON"),
        "{sent:?}"
    );

    let down = notify(Duration::from_secs(3600));
    *down.ops.sns_down.lock().unwrap() = true;
    let answer = down.run(batch).await.unwrap();
    assert_eq!(
        failed_ids(&answer),
        [
            "0a1b2c3d-0000-4000-8000-000000000001",
            "0a1b2c3d-0000-4000-8000-000000000002",
            "0a1b2c3d-0000-4000-8000-000000000003"
        ]
    );
}

#[tokio::test]
async fn pending_is_watched_with_a_schedule_back_to_this_function_then_checked() {
    let n = notify(Duration::from_secs(3600));
    let pending = sample(include_str!("../../../events/mwaa-status-pending.json"));
    let answer = n.run(pending).await.unwrap();
    assert_eq!(answer, json!({"watching": "analytics-shared"}));
    assert_watched_back_to_this_function(&n);
    let check = sample(include_str!("../../../events/pending-check.json"));
    n.ops.environments.lock().unwrap().insert(
        "analytics-shared".into(),
        EnvironmentNow {
            status: Status::Available,
            last_error: None,
        },
    );
    let answer = n.run(check.clone()).await.unwrap();
    assert!(answer.get("ignored").is_some(), "{answer}");
    n.ops
        .environments
        .lock()
        .unwrap()
        .get_mut("analytics-shared")
        .unwrap()
        .status = Status::Pending;
    n.run(check).await.unwrap();
    assert_eq!(
        subjects(&n),
        ["[mwaa-ops] analytics-shared still PENDING after 30 min: no VPC endpoints"]
    );
}

#[tokio::test]
async fn an_alert_notify_failed_to_send_arrives_later_as_the_original_failure() {
    let n = notify(Duration::from_secs(3600));
    let original = sample(include_str!(
        "../../../events/mwaa-status-create-failed.json"
    ));
    let record = json!({
        "version": "1.0",
        "requestContext": {"requestId": "r-1", "functionArn": OWN_ARN, "condition": "RetriesExhausted",
                           "approximateInvokeCount": 3},
        "requestPayload": original,
        "responsePayload": {"errorType": "Error", "errorMessage": "SNS Publish failed: InternalError"}
    });
    n.run(record).await.unwrap();
    assert_eq!(
        subjects(&n),
        ["[mwaa-ops] MWAA environment dev-analytics is CREATE_FAILED"]
    );
}

#[tokio::test]
async fn malformed_events_are_clear_errors_and_send_nothing() {
    let n = notify(Duration::from_secs(3600));
    for (text, expected) in [
        (
            include_str!("../../../events/invalid/sfn-execution-without-arn.json"),
            "executionArn",
        ),
        (
            include_str!("../../../events/invalid/mwaa-status-without-name.json"),
            "missing field `name`",
        ),
    ] {
        let err = n.run(sample(text)).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    let err = n.run(json!("text")).await.unwrap_err().to_string();
    assert!(err.contains("a string"), "{err}");
    assert!(subjects(&n).is_empty());
}
