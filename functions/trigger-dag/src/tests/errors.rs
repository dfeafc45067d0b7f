//! What Lambda and the resume workflow see when an invocation fails: the `errorType` of
//! each kind of failure, and that the workflow retries the throttled ones.

use super::*;
use common::Status;
use lambda_runtime::Diagnostic;

/// Long enough for a few retries, short enough for a unit test.
const SHORT: std::time::Duration = std::time::Duration::from_millis(300);

/// The `errorType` Lambda reports for a failed invocation.
fn error_type(err: Error) -> String {
    Diagnostic::from(err).error_type
}

/// A fake whose Airflow answers every call with throttling.
fn throttled_airflow(envs: &[&str]) -> Fake {
    let fake = available(envs);
    for _ in 0..1000 {
        fake.airflow.fail_next(throttled("InvokeRestApi"));
    }
    fake
}

#[tokio::test]
async fn throttling_until_the_deadline_fails_the_invocation_as_retryable() {
    let fake = Fake {
        get_environment_throttled: true,
        ..available(&["dev-a", "dev-b"])
    };
    let f = function(fake);
    let err = f.run_within(SHORT, arrival("in/a.csv")).await.unwrap_err();
    assert!(err.to_string().contains("GetEnvironment"), "{err}");
    assert_eq!(error_type(err), "Retryable");
    assert!(f.ops.held.lock().unwrap().is_empty(), "nothing held blind");

    let f = function(throttled_airflow(&["dev-a", "dev-b"]));
    let err = f.run_within(SHORT, arrival("in/a.csv")).await.unwrap_err();
    assert!(err.to_string().contains("InvokeRestApi"), "{err}");
    assert_eq!(error_type(err), "Retryable");
    assert!(f.ops.airflow.runs.lock().unwrap().is_empty());
    assert!(
        f.ops.airflow.requests.lock().unwrap().len() > 2,
        "retried before giving up"
    );
}

#[tokio::test]
async fn a_bad_event_is_invalid_input_and_calls_nothing() {
    let f = function(available(&["dev-a", "dev-b"]));
    let bad_events = [
        serde_json::from_str(include_str!(
            "../../../../events/invalid/s3-missing-key.json"
        ))
        .unwrap(),
        serde_json::from_str(include_str!(
            "../../../../events/invalid/schedule-without-time.json"
        ))
        .unwrap(),
        replay("../x"),
        json!({"environment": "9x", "dag": "daily", "time": "2026-11-21T06:00:00Z"}),
    ];
    for event in bad_events {
        let err = f.run(event.clone()).await.unwrap_err();
        assert_eq!(error_type(err), "InvalidInput", "{event}");
    }
    let err = f.run(replay("../x")).await.unwrap_err();
    assert!(
        err.to_string().contains("replay.environment")
            && err.to_string().contains("not an MWAA environment name"),
        "{err}"
    );
    assert!(f.ops.airflow.requests.lock().unwrap().is_empty());
    assert!(f.ops.held.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_replay_while_the_environment_is_not_available_says_so_and_keeps_the_held() {
    let f = function(Fake::default());
    f.run(arrival("in/a.csv")).await.unwrap();
    f.ops
        .set_environment("dev-a", Availability::NotAvailable(Status::Updating));
    let err = f.run(replay("dev-a")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment dev-a is UPDATING; cannot replay held arrivals"
    );
    assert_eq!(error_type(err), "EnvironmentNotAvailable");
    let err = f.run(replay("dev-b")).await.unwrap_err();
    assert!(err.to_string().contains("NOT_FOUND"), "{err}");
    assert_eq!(error_type(err), "EnvironmentNotAvailable");
    assert_eq!(f.ops.held.lock().unwrap().len(), 2, "nothing released");
    assert!(f.ops.airflow.requests.lock().unwrap().is_empty());
}

/// The `ErrorEquals` of the Retry of the resume workflow's `ReplayHeldArrivals` state.
fn replay_retried_error_types() -> Vec<String> {
    let asl: Value = serde_json::from_str(include_str!(
        "../../../../infra/statemachines/resume.asl.json"
    ))
    .unwrap();
    let state = &asl["States"]["ReplayHeldArrivals"];
    assert_eq!(state["Type"], "Task", "{state}");
    state["Retry"]
        .as_array()
        .expect("ReplayHeldArrivals retries")
        .iter()
        .flat_map(|r| r["ErrorEquals"].as_array().unwrap().clone())
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_throttled_replay_fails_with_an_error_type_the_resume_workflow_retries() {
    let retried = replay_retried_error_types();

    let fake = Fake {
        get_environment_throttled: true,
        ..Fake::default()
    };
    let err = function(fake)
        .run_within(SHORT, replay("dev-a"))
        .await
        .unwrap_err();
    let throttled_get_environment = error_type(err);

    // One arrival held while away, then Airflow throttles the replay's run.
    let away = function(Fake::default());
    away.run(arrival("in/a.csv")).await.unwrap();
    let fake = Fake {
        held: Mutex::new(std::mem::take(&mut *away.ops.held.lock().unwrap())),
        ..throttled_airflow(&["dev-a"])
    };
    let f = function(fake);
    let err = f.run_within(SHORT, replay("dev-a")).await.unwrap_err();
    let throttled_invoke = error_type(err);
    assert_eq!(f.ops.held.lock().unwrap().len(), 2, "kept for the retry");

    for error_type in [throttled_get_environment, throttled_invoke] {
        assert_eq!(error_type, "Retryable");
        assert!(
            retried.contains(&error_type),
            "ReplayHeldArrivals does not retry {error_type}: {retried:?}"
        );
    }
}
