//! A warm instance that found an environment AVAILABLE starts the next arrivals' runs without
//! asking again (one MWAA call per arrival), and looks again as soon as a start fails, so a
//! pause or an update that began meanwhile still holds the arrival.

use super::*;
use common::Status;
use std::time::Duration;

/// trigger-dag trusting an AVAILABLE answer for an hour.
fn warm(fake: Fake) -> TriggerDag<Fake> {
    TriggerDag {
        environments: KnownEnvironments::new(Duration::from_secs(3600)),
        ..function(fake)
    }
}

fn reads(f: &TriggerDag<Fake>) -> u32 {
    *f.ops.environment_reads.lock().unwrap()
}

fn rest_calls(f: &TriggerDag<Fake>) -> usize {
    f.ops.airflow.requests.lock().unwrap().len()
}

#[tokio::test]
async fn in_the_steady_state_an_arrival_is_one_invoke_rest_api() {
    let f = warm(available(&["dev-a", "dev-b"]));
    for i in 0..10 {
        f.run(arrival(&format!("in/{i}.csv"))).await.unwrap();
    }
    assert_eq!(f.ops.airflow.runs.lock().unwrap().len(), 20);
    assert_eq!(rest_calls(&f), 20);
    assert_eq!(reads(&f), 2, "one GetEnvironment per environment");
}

#[tokio::test]
async fn an_environment_deleted_since_it_was_seen_holds_the_arrival() {
    let f = warm(available(&["dev-a", "dev-b"]));
    f.run(arrival("in/1.csv")).await.unwrap();
    // The pause deleted dev-a: MWAA refuses the call, GetEnvironment says DELETING.
    f.ops
        .set_environment("dev-a", Availability::NotAvailable(Status::Deleting));
    f.ops
        .airflow
        .fail_next(Error::EnvironmentNotFound("dev-a".into()));
    let report = f.run(arrival("in/2.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(report["runs"][1]["outcome"], "started");
    // Forgotten: the next arrival asks first and is held without calling Airflow.
    let before = rest_calls(&f);
    let report = f.run(arrival("in/3.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(rest_calls(&f), before + 1, "only dev-b's run was sent");
    assert_eq!(f.ops.held.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_start_on_a_remembered_environment_looks_again_before_holding() {
    let f = warm(available(&["dev-a", "dev-b"]));
    f.run(arrival("in/1.csv")).await.unwrap();
    let before = reads(&f);
    // An update began: MWAA refuses InvokeRestApi (ValidationException) while UPDATING.
    f.ops
        .set_environment("dev-a", Availability::NotAvailable(Status::Updating));
    f.ops.airflow.fail_next(Error::InvalidRequest {
        environment: "dev-a".into(),
        reason: "Environment dev-a is not available for InvokeRestApi".into(),
    });
    let report = f.run(arrival("in/2.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(reads(&f), before + 1, "looked again once");
}

#[tokio::test]
async fn a_failure_of_an_environment_still_available_is_the_arrivals_error() {
    let mut fake = available(&["dev-a", "dev-b"]);
    fake.airflow.unknown.insert("gone".into());
    let f = warm(fake);
    f.run(arrival("in/1.csv")).await.unwrap_err();
    let before = reads(&f);
    let err = f.run(arrival("in/2.csv")).await.unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
    assert!(
        f.ops.held.lock().unwrap().is_empty(),
        "not held: it would never run"
    );
    assert_eq!(reads(&f), before + 1, "dev-b was looked at again");
}
