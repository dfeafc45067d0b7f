//! The fault matrix of the pause-resume steps that need no Airflow (environment-status,
//! save-configuration, create-environment, delete-environment), each its built binary behind
//! the bed's Lambda service as its role of the template: throttling, 5xx, 5xx after the work
//! was done (the answer lost) and slow answers, injected through the local MWAA control plane
//! (`/_bed/faults`, where the binaries' MWAA endpoint already is: no proxy in between). Every
//! test checks that each fault it injected was served (a fault never served proves nothing)
//! and that the work was done exactly once. The run-dag, enable-dags and whole-state-machine
//! cases are in tests/pause_resume (they need Airflow); notify's faults are in
//! faults_notify.rs.
//!
//! The SDK makes 3 attempts per call: 2 faults in a row are its to absorb, 3 reach the step,
//! whose error must then be `Retryable` (what the state machines retry). No deadline is
//! scaled: the steps' template Timeouts (60 s, 150 s) outlast every case here.

use std::time::Duration;

use common::aws::MWAA_ATTEMPT_TIMEOUT;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::steps::start_steps;
use mwaa_ops_tests::{session_without_airflow, Bed, Session};
use pause_resume::layout::snapshot_key;
use pause_resume::{ErrorKind, Step};
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
/// A slow answer: beyond the binaries' attempt timeout (`MWAA_ATTEMPT_TIMEOUT`, 15 s), so the
/// SDK gives up on it and tries again. The binary's own timeout, not a test's shorter one:
/// each slow case costs its 15 s.
const SLOW: Duration = MWAA_ATTEMPT_TIMEOUT.saturating_add(Duration::from_millis(1500));

struct Steps {
    /// The test's own clients, for set-up and checks (not held to any role).
    mwaa: aws_sdk_mwaa::Client,
    s3: aws_sdk_s3::Client,
    functions: Functions,
}

async fn steps(bed: &Bed) -> Steps {
    let s3 = bed.s3_with_bucket(BUCKET).await;
    let functions = start_steps(bed, BUCKET, "dev-", Deployment::new()).await;
    Steps {
        mwaa: bed.mwaa().await,
        s3,
        functions,
    }
}

impl Steps {
    /// `step` invoked as the state machines' task invokes it: its output, or Lambda's error.
    async fn invoke(&self, step: Step, event: Value) -> Result<Value, Failure> {
        self.functions.invoke(step.name(), &event).await
    }
}

fn slow_ms() -> u64 {
    SLOW.as_millis() as u64
}

/// Calls of `operation` to `name`, as `(fault kind or "", after, status)`.
async fn calls(bed: &Bed, operation: &str, name: &str) -> Vec<(String, bool, u64)> {
    bed.calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == operation && c["name"] == name)
        .map(|c| {
            (
                c["fault"].as_str().unwrap_or_default().to_owned(),
                c["after"].as_bool().unwrap_or(false),
                c["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Calls that did the work: answered 200, or faulted after the work and the work succeeded.
async fn done(bed: &Bed, operation: &str, name: &str) -> usize {
    bed.calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == operation && c["name"] == name)
        .filter(|c| c["status"] == 200 || (c["after"] == true && c.get("work_error").is_none()))
        .count()
}

fn input(name: &str) -> Value {
    json!({"environment": name})
}

/// The pause execution the deletions here belong to.
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:faults";

/// What the pause records before it deletes (delete-environment's proof): the snapshot of
/// an export `EXECUTION` verified.
async fn record_pause(s: &Steps, name: &str) {
    let snapshot = json!({"environment": name, "manifest": "s3://b/m.json", "active_dags": [],
        "manifest_sha256": "ab12", "manifest_version_id": "v1", "export_id": "e-1",
        "paused_at": "2026-01-01T00:00:00+00:00", "execution": EXECUTION,
        "verified": {"verified": true, "environment": name, "execution": EXECUTION,
                     "manifest": "s3://b/m.json"}});
    s.s3.put_object()
        .bucket(BUCKET)
        .key(snapshot_key(name))
        .body(snapshot.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
}

/// delete-environment as the pause invokes it.
async fn delete(s: &Steps, name: &str) -> Result<Value, Failure> {
    let event = json!({"environment": name, "execution": EXECUTION});
    s.invoke(Step::DeleteEnvironment, event).await
}

/// save-configuration as the pause invokes it (no settings allowed to be lost).
async fn save(s: &Steps, name: &str) -> Result<Value, Failure> {
    s.invoke(Step::SaveConfiguration, input(name)).await
}

/// Asserts `failure` is `Retryable`, the error the state machines retry.
fn assert_retryable(failure: &Failure) {
    failure.assert_is(ErrorKind::Retryable.as_str(), &[]);
}

#[tokio::test]
async fn faults_status_save_and_delete_retry_and_delete_once() {
    let bed: Session = session_without_airflow().await;
    let s = steps(&bed).await;
    let name = "dev-faults";
    NewEnvironment::new(name, "2.10.3").create(&s.mwaa).await;
    wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;

    // environment-status: a throttle, a 500 and a slow answer are the SDK's to absorb.
    bed.inject_faults(json!([
        {"operation": "GetEnvironment", "name": name, "kind": "throttle"},
        {"operation": "GetEnvironment", "name": name, "kind": "server_error", "status": 500},
    ]))
    .await;
    let out = s
        .invoke(Step::EnvironmentStatus, input(name))
        .await
        .unwrap();
    assert_eq!(out["status"], "AVAILABLE");
    let before_slow = calls(&bed, "GetEnvironment", name).await.len();
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "name": name, "kind": "latency", "latency_ms": slow_ms()}]),
    )
    .await;
    let out = s
        .invoke(Step::EnvironmentStatus, input(name))
        .await
        .unwrap();
    assert_eq!(out["status"], "AVAILABLE");
    bed.assert_faults_served().await;
    // The slow answer was given up on (attempt timeout) and asked again. Without the timeout
    // the slow call would answer and be the only one. (A slow call is recorded when its
    // sleep ends, after the retry: wait for both.)
    let mut slow = vec![];
    for _ in 0..50 {
        slow = calls(&bed, "GetEnvironment", name)
            .await
            .split_off(before_slow);
        if slow.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut kinds: Vec<&str> = slow.iter().map(|c| c.0.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["", "latency"],
        "one retry after the attempt timeout: {slow:?}"
    );
    let gets = calls(&bed, "GetEnvironment", name).await;
    let served: Vec<&str> = gets
        .iter()
        .map(|c| c.0.as_str())
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(served, ["throttle", "server_error", "latency"], "{gets:?}");

    // Three in a row outlast the SDK: the step fails Retryable, for the state machine to retry.
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "name": name, "kind": "server_error",
                "status": 503, "count": 3}]),
    )
    .await;
    let failure = s
        .invoke(Step::EnvironmentStatus, input(name))
        .await
        .unwrap_err();
    assert_retryable(&failure);
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "name": name, "kind": "throttle", "count": 3}]),
    )
    .await;
    assert_retryable(&save(&s, name).await.unwrap_err());
    bed.assert_faults_served().await;
    assert!(
        s.s3.list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap()
            .contents()
            .is_empty(),
        "nothing saved by a failed save"
    );

    // delete-environment: the delete is done, but its answer is lost (500 after the work);
    // the SDK asks again, MWAA refuses (DELETING), the step reads DELETING: done, once.
    // The deletion lasts a minute here: under load the SDK's backoff outlasted the bed's
    // one-second deletion and the step read NOT_FOUND (also done, but not what this proves).
    bed.control("config", json!({"delete_delay": 60})).await;
    record_pause(&s, name).await;
    bed.inject_faults(
        json!([{"operation": "DeleteEnvironment", "name": name, "kind": "server_error",
                "after": true}]),
    )
    .await;
    let out = delete(&s, name).await.unwrap();
    assert_eq!(out["status"], "DELETING", "{out}");
    bed.assert_faults_served().await;
    assert_eq!(done(&bed, "DeleteEnvironment", name).await, 1);
    // The state machine's retry of the step (its answer lost too) changes nothing.
    let again = delete(&s, name).await.unwrap();
    assert_eq!(again["deleted"], false);
    assert_eq!(done(&bed, "DeleteEnvironment", name).await, 1);
    let deletes = calls(&bed, "DeleteEnvironment", name).await;
    assert_eq!(
        deletes[0],
        ("server_error".into(), true, 500),
        "{deletes:?}"
    );
}

#[tokio::test]
async fn faults_create_environment_creates_once_when_answers_are_lost_or_slow() {
    let bed: Session = session_without_airflow().await;
    let s = steps(&bed).await;
    for name in ["dev-lost", "dev-slow"] {
        NewEnvironment::new(name, "2.10.3").create(&s.mwaa).await;
        wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
        save(&s, name).await.unwrap();
        record_pause(&s, name).await;
        delete(&s, name).await.unwrap();
    }
    for name in ["dev-lost", "dev-slow"] {
        while s.mwaa.get_environment().name(name).send().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Created, but every answer of the SDK's three attempts is lost (500 after the work): the
    // step fails Retryable; the state machine's retry finds it and creates nothing more.
    let name = "dev-lost";
    bed.inject_faults(
        json!([{"operation": "CreateEnvironment", "name": name, "kind": "server_error",
                "after": true, "count": 3}]),
    )
    .await;
    let failure = s
        .invoke(Step::CreateEnvironment, input(name))
        .await
        .unwrap_err();
    assert_retryable(&failure);
    bed.assert_faults_served().await;
    let retried = s
        .invoke(Step::CreateEnvironment, input(name))
        .await
        .unwrap();
    assert_eq!(
        (retried["created"].clone(), retried["resume_needed"].clone()),
        (json!(false), json!(true)),
        "{retried}"
    );
    assert_eq!(
        done(&bed, "CreateEnvironment", name).await,
        2,
        "one before the pause, one now"
    );
    let creates = calls(&bed, "CreateEnvironment", name).await;
    // Creates before the pause (NewEnvironment) are not faulted: only the three here are.
    assert_eq!(
        creates.iter().filter(|c| c.1).count(),
        3,
        "three answers lost: {creates:?}"
    );

    // Slow: the SDK gives up on the first attempt and tries again; whichever lands first
    // creates, the other finds it there. One environment, the step succeeds.
    let name = "dev-slow";
    bed.inject_faults(json!([
        {"operation": "CreateEnvironment", "name": name, "kind": "latency", "latency_ms": slow_ms()},
        {"operation": "GetEnvironment", "name": name, "kind": "throttle"},
    ]))
    .await;
    let out = s
        .invoke(Step::CreateEnvironment, input(name))
        .await
        .unwrap();
    assert_eq!(out["resume_needed"], true, "{out}");
    bed.assert_faults_served().await;
    // The slow attempt's work ends after the test's answer: wait for its call to be recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while calls(&bed, "CreateEnvironment", name).await.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow create never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        done(&bed, "CreateEnvironment", name).await,
        2,
        "one before the pause, one now"
    );
    wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
}
