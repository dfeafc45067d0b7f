//! The morning digest through the handler: the last resume of the morning sends one email,
//! on the digest's topic; repeats and earlier ends send none; a success is no alert.

use super::*;
use crate::morning::prices::Prices;
use crate::morning::tests::{configuration, resumed_output, snapshot, CONFIGURATION_COPY};
use crate::morning::DigestSettings;

const RESUME: &str = "arn:aws:states:us-east-1:210987654321:stateMachine:mwaa-ops-resume";
const DIGESTS: &str = "arn:aws:sns:us-east-1:210987654321:mwaa-ops-digest";
/// 2026-12-01T07:00:00Z.
const SEVEN: i64 = 1_796_108_400_000;

fn with_digest() -> Notify<Fake> {
    let mut n = notify(Duration::from_secs(3600));
    n.digest = Some(DigestSettings {
        resume_state_machine_arn: RESUME.into(),
        topic_arn: DIGESTS.into(),
        prices: Prices::for_region("us-east-1", "").unwrap(),
    });
    n
}

fn arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:210987654321:execution:mwaa-ops-resume:{name}")
}

/// The resume of `env` (execution `name`), listed with `status`, with its detail.
fn resume(n: &Notify<Fake>, name: &str, env: &str, status: &str, output: Option<Value>) {
    n.ops.runs.lock().unwrap().push(ResumeRun {
        execution_arn: arn(name),
        status: status.into(),
        started_ms: SEVEN,
    });
    n.ops.details.lock().unwrap().insert(
        arn(name),
        RunDetail {
            input: Some(json!({"environment": env}).to_string()),
            output: output.map(|o| o.to_string()),
            started_ms: Some(SEVEN),
        },
    );
    let mut records = n.ops.records.lock().unwrap();
    records.insert(format!("snapshots/{env}/latest.json"), snapshot());
    records.insert(CONFIGURATION_COPY.into(), configuration("mw1.small", 1));
}

fn ended(name: &str, status: &str, minutes: i64) -> Value {
    json!({"id": format!("ev-{name}-{minutes}"), "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": arn(name), "stateMachineArn": RESUME, "status": status,
            "startDate": SEVEN, "stopDate": SEVEN + minutes * 60_000,
            "input": "{\"environment\": \"x\"}"}})
}

#[tokio::test]
async fn the_last_resume_of_the_morning_sends_one_digest_and_repeats_send_none() {
    let n = with_digest();
    resume(
        &n,
        "a",
        "dev-a",
        "SUCCEEDED",
        Some(resumed_output(&["etl"], &[], 2, 0)),
    );
    resume(&n, "b", "dev-b", "RUNNING", None);
    let first = n.run(ended("a", "SUCCEEDED", 20)).await.unwrap();
    assert_eq!(
        first["ignored"].as_str().map(|r| r.ends_with("succeeded")),
        Some(true),
        "{first}"
    );
    assert_eq!(first["morning_digest"]["digest"], "waiting", "{first}");
    assert!(n.ops.digests.lock().unwrap().is_empty());

    // b fails: its alert, then the digest (b is the last).
    let last = n.run(ended("b", "FAILED", 40)).await.unwrap();
    assert!(last["sent"].as_str().unwrap().contains("FAILED"), "{last}");
    assert_eq!(n.ops.published.lock().unwrap().len(), 1, "one alert, for b");
    let digests = n.ops.digests.lock().unwrap().clone();
    assert_eq!(digests.len(), 1);
    let (topic, subject, body) = &digests[0];
    assert_eq!(topic, DIGESTS);
    assert!(
        subject.starts_with("[mwaa-ops] Morning 2026-12-01: 1 resumed, 1 FAILED"),
        "{subject}"
    );
    assert!(
        body.contains("dev-b: FAILED at RunExport") && body.contains(" held    2 arrivals"),
        "{body}"
    );
    assert_eq!(last["morning_digest"]["environments"], 2);

    // The same end delivered again, or a wake later that day: no second digest.
    let again = n.run(ended("b", "FAILED", 40)).await.unwrap();
    assert_eq!(again["morning_digest"]["digest"], "sent already", "{again}");
    assert_eq!(n.ops.digests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn other_executions_and_a_stack_without_a_digest_send_no_digest() {
    let n = with_digest();
    let mut pause = ended("p", "SUCCEEDED", 5);
    pause["detail"]["stateMachineArn"] =
        json!("arn:aws:states:us-east-1:210987654321:stateMachine:mwaa-ops-pause");
    let out = n.run(pause).await.unwrap();
    assert!(
        out.get("morning_digest").is_none() && out.get("ignored").is_some(),
        "{out}"
    );
    let off = notify(Duration::from_secs(3600));
    let out = off.run(ended("a", "SUCCEEDED", 5)).await.unwrap();
    assert!(out.get("morning_digest").is_none(), "{out}");
    assert!(
        n.ops.digests.lock().unwrap().is_empty() && off.ops.published.lock().unwrap().is_empty()
    );
}

#[tokio::test]
async fn of_two_resumes_ending_at_once_only_the_first_marker_sends() {
    let n = with_digest();
    let done = Some(resumed_output(&["etl"], &[], 1, 0));
    resume(&n, "a", "dev-a", "SUCCEEDED", done);
    // The other end passed the same check and wrote the marker first.
    *n.ops.digest_claimed_meanwhile.lock().unwrap() = true;
    let out = n.run(ended("a", "SUCCEEDED", 20)).await.unwrap();
    assert_eq!(out["morning_digest"]["digest"], "sent already", "{out}");
    assert!(
        n.ops.digests.lock().unwrap().is_empty(),
        "the other end sends it"
    );
}

#[tokio::test]
async fn a_digest_sns_refused_gives_its_marker_back_for_the_retry() {
    let n = with_digest();
    let done = Some(resumed_output(&["etl"], &[], 1, 0));
    resume(&n, "a", "dev-a", "SUCCEEDED", done);
    *n.ops.digest_sns_down.lock().unwrap() = true;
    let failed = n.run(ended("a", "SUCCEEDED", 20)).await;
    assert!(
        failed.is_err(),
        "the invocation fails, so Lambda retries it"
    );
    assert!(
        n.ops.digest_markers.lock().unwrap().is_empty(),
        "no marker kept"
    );
    *n.ops.digest_sns_down.lock().unwrap() = false;
    let retried = n.run(ended("a", "SUCCEEDED", 20)).await.unwrap();
    assert!(retried["morning_digest"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("[mwaa-ops] Morning"));
    assert_eq!(n.ops.digests.lock().unwrap().len(), 1);
}
