//! A warm instance that found an environment AVAILABLE starts the next arrivals' runs without
//! asking again (one MWAA call per arrival, however long the arrivals keep coming: each start
//! Airflow answered shows it still up), lists the pause's mark at the usual bound, and looks
//! again as soon as a start fails, so a pause or an update that began meanwhile still holds
//! the arrival.

use super::*;
use common::Status;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// trigger-dag trusting an AVAILABLE answer for an hour.
fn warm(fake: Fake) -> TriggerDag<Fake> {
    TriggerDag {
        environments: KnownEnvironments::new(Duration::from_secs(3600)),
        ..function(fake)
    }
}

/// trigger-dag trusting answers for 30 s, on a clock the test moves.
fn on_clock(fake: Fake) -> (TriggerDag<Fake>, Arc<Mutex<SystemTime>>) {
    let now = Arc::new(Mutex::new(SystemTime::now()));
    let read = now.clone();
    let clock = Arc::new(move || *read.lock().unwrap());
    let f = TriggerDag {
        environments: KnownEnvironments::with_clock(Duration::from_secs(30), clock),
        ..function(fake)
    };
    (f, now)
}

fn wait(now: &Mutex<SystemTime>, seconds: u64) {
    *now.lock().unwrap() += Duration::from_secs(seconds);
}

fn marks(f: &TriggerDag<Fake>) -> u32 {
    *f.ops.mark_reads.lock().unwrap()
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

#[tokio::test]
async fn arrivals_for_longer_than_the_trust_read_the_environment_once() {
    let (f, now) = on_clock(available(&["dev-a", "dev-b"]));
    // 20 arrivals 10 s apart: 190 s, six times the 30 s trust. Every fourth start is
    // throttled once and retried.
    for i in 0..20 {
        if i % 4 == 0 {
            f.ops.airflow.fail_next(throttled("InvokeRestApi"));
        }
        f.run(arrival(&format!("in/{i}.csv"))).await.unwrap();
        wait(&now, 10);
    }
    assert_eq!(f.ops.airflow.runs.lock().unwrap().len(), 40);
    assert_eq!(
        rest_calls(&f),
        40 + 5,
        "one InvokeRestApi per run + the 5 retries"
    );
    assert_eq!(reads(&f), 2, "one GetEnvironment per environment in 190 s");
    // The mark is still listed once per 30 s (at 0, 30, 60, ... 180 s), per environment.
    assert_eq!(marks(&f), 2 * 7);
}

#[tokio::test]
async fn a_quiet_spell_longer_than_the_trust_reads_the_environment_again() {
    let (f, now) = on_clock(available(&["dev-a", "dev-b"]));
    f.run(arrival("in/1.csv")).await.unwrap();
    wait(&now, 29);
    f.run(arrival("in/2.csv")).await.unwrap();
    assert_eq!(reads(&f), 2);
    wait(&now, 30);
    f.run(arrival("in/3.csv")).await.unwrap();
    assert_eq!(reads(&f), 4, "nothing showed it up for 30 s");
}

#[tokio::test]
async fn a_mark_listed_after_the_trust_holds_without_reading_the_environment() {
    let (f, now) = on_clock(available(&["dev-a", "dev-b"]));
    f.run(arrival("in/1.csv")).await.unwrap();
    wait(&now, 20);
    f.run(arrival("in/2.csv")).await.unwrap();
    f.ops.pausing.lock().unwrap().push("dev-a".into());
    wait(&now, 20);
    // Up (Airflow answered 20 s ago) but the mark was listed 40 s ago: listed again.
    let report = f.run(arrival("in/3.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held", "{report}");
    assert_eq!(report["runs"][1]["outcome"], "started");
    assert_eq!(reads(&f), 2, "the mark alone decided");
    // Forgotten: while the mark is there each arrival reads both, as without a cache.
    let report = f.run(arrival("in/4.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(reads(&f), 3);
}

/// An environment kept known by Airflow's answers alone (its GetEnvironment is 100 s old),
/// then an answer that may show it changed; `now` is what GetEnvironment then says.
async fn after_answers_only(refusal: Error, now: Availability) -> (TriggerDag<Fake>, Value) {
    let (f, clock) = on_clock(available(&["dev-a", "dev-b"]));
    for i in 0..5 {
        f.run(arrival(&format!("in/{i}.csv"))).await.unwrap();
        wait(&clock, 20);
    }
    assert_eq!(reads(&f), 2);
    f.ops.set_environment("dev-a", now);
    f.ops.airflow.fail_next(refusal);
    let report = f.run(arrival("in/changed.csv")).await.unwrap();
    (f, report)
}

#[tokio::test]
async fn each_answer_that_may_show_a_change_reads_the_environment_again() {
    let rejected = |status: u16| Error::AirflowRejected {
        environment: "dev-a".into(),
        method: "POST".into(),
        path: "/dags/ingest/dagRuns".into(),
        status,
        body: "{}".into(),
    };
    let cases = [
        // MWAA: ValidationException while the environment is not AVAILABLE.
        (
            Error::InvalidRequest {
                environment: "dev-a".into(),
                reason: "Environment is not available".into(),
            },
            Status::Updating,
        ),
        // Airflow itself refusing (RestApiClientException): a 404 on the API path of the
        // remembered major, a 400 to its body, while the environment is changing.
        (rejected(404), Status::Updating),
        (rejected(400), Status::RollingBack),
        (rejected(404), Status::Deleting),
    ];
    for (refusal, status) in cases {
        let (f, report) =
            after_answers_only(refusal, Availability::NotAvailable(status.clone())).await;
        assert_eq!(report["runs"][0]["outcome"], "held", "{status:?}: {report}");
        assert_eq!(reads(&f), 3, "{status:?}: read again once");
        // Not remembered: the next arrival reads it first and sends nothing to dev-a.
        let sent = rest_calls(&f);
        let report = f.run(arrival("in/next.csv")).await.unwrap();
        assert_eq!(report["runs"][0]["outcome"], "held");
        assert_eq!(reads(&f), 4);
        assert_eq!(rest_calls(&f), sent + 1, "{status:?}: only dev-b's run");
    }
    // ResourceNotFound: gone, held at once; the next arrival reads it again.
    let (f, report) = after_answers_only(
        Error::EnvironmentNotFound("dev-a".into()),
        Availability::Missing,
    )
    .await;
    assert_eq!(report["runs"][0]["outcome"], "held");
    f.run(arrival("in/next.csv")).await.unwrap();
    assert_eq!(reads(&f), 3);
    assert_eq!(f.ops.held.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_upgrade_to_another_major_is_read_again_and_the_run_started_with_its_body() {
    // Airflow 3 refuses the Airflow 2 body (no `logical_date`): 422 from Airflow itself.
    let rejected = Error::AirflowRejected {
        environment: "dev-a".into(),
        method: "POST".into(),
        path: "/dags/ingest/dagRuns".into(),
        status: 422,
        body: r#"{"detail":[{"loc":["body","logical_date"],"msg":"Field required"}]}"#.into(),
    };
    let (f, report) = after_answers_only(rejected, Availability::Available(AirflowMajor::V3)).await;
    assert_eq!(report["runs"][0]["outcome"], "started", "{report}");
    assert_eq!(reads(&f), 3);
    let runs = f.ops.airflow.runs.lock().unwrap().clone();
    let (_, _, body) = runs.iter().rev().find(|(d, _, _)| d == "ingest").unwrap();
    assert!(
        body.as_object().unwrap().contains_key("logical_date"),
        "{body}"
    );
}
