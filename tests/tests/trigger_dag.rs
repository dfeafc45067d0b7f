//! trigger-dag on the bed: S3 PutObject in moto -> the template's rule -> the built binary
//! behind the bed's Lambda service, held to its role of the template -> a run in a real
//! Airflow 2 and 3, through the local MWAA control plane.

use std::time::Duration;

use mwaa_ops_tests::arrivals::{trigger_dag_role, Arrivals, LANDING};
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::{Deployment, Failure};
use mwaa_ops_tests::{session, Session};
use serde_json::{json, Value};

/// The run id of the first run an invocation reported.
fn run_id(result: &Result<Value, Failure>) -> String {
    let report = result.as_ref().expect("the invocation succeeded");
    report["runs"][0]["run_id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

fn outcomes(results: &[Result<Value, Failure>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(v) => v["runs"][0]["outcome"]
                .as_str()
                .unwrap_or("none")
                .to_owned(),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

fn routes_to(environment: &str, dag: &str) -> Value {
    json!([{"name": "orders", "bucket": LANDING, "prefix": "orders/", "environment": environment,
            "dag": dag, "conf": {"team": "sales"}}])
}

async fn available(bed: &Session, name: &str, version: &str) {
    let mwaa = bed.mwaa().await;
    NewEnvironment::new(name, version).create(&mwaa).await;
    wait_for_status(&mwaa, name, "AVAILABLE", Duration::from_secs(60)).await;
}

async fn an_arrival_starts_one_run_for_three_deliveries(version: &str) {
    let bed = session().await;
    let env = format!("td-{}", version.replace('.', "-"));
    available(&bed, &env, version).await;
    let arrivals = Arrivals::deploy(&bed, routes_to(&env, "bed_smoke"), "td").await;
    let key = format!("orders/{version}/ünïcode orders+1%.csv");
    arrivals.put(&key, "id,amount\n1,2\n").await;

    let results = arrivals.deliver(1, 3).await;
    assert_eq!(
        outcomes(&results),
        ["started", "already_started", "already_started"]
    );
    let run_id = run_id(&results[0]);
    let run = bed
        .airflow(version)
        .dag_run("bed_smoke", &run_id)
        .await
        .expect("the run is in Airflow");
    let conf = &run["conf"];
    assert_eq!(conf["bucket"], LANDING);
    assert_eq!(conf["key"], key.as_str());
    assert_eq!(conf["size"], 14);
    assert_eq!(conf["team"], "sales");
    assert!(conf["version_id"].is_string(), "{conf}");
    assert!(conf["etag"].is_string(), "{conf}");

    // The same key written again is a new version: a second run, not a 409.
    arrivals.put(&key, "id,amount\n1,3\n").await;
    let rewritten = arrivals.deliver(1, 1).await;
    assert_eq!(outcomes(&rewritten), ["started"]);
    assert_ne!(
        rewritten[0].as_ref().unwrap()["runs"][0]["run_id"],
        run_id.as_str()
    );

    let forwarded = bed
        .calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == "InvokeRestApi")
        .count();
    assert_eq!(
        forwarded, 4,
        "each delivery asked once (409 twice), then the new version"
    );
    let published = arrivals.suite_events.take(4, Duration::from_secs(5)).await;
    assert!(published
        .iter()
        .all(|e| e["detail-type"] == "DAG Run Started"));
    assert_eq!(published.len(), 4);
}

#[tokio::test]
async fn airflow_2_an_arrival_starts_one_run_for_three_deliveries() {
    an_arrival_starts_one_run_for_three_deliveries("2.10.3").await;
}

#[tokio::test]
async fn airflow_3_an_arrival_starts_one_run_for_three_deliveries() {
    an_arrival_starts_one_run_for_three_deliveries("3.0.6").await;
}

#[tokio::test]
async fn airflow_3_2_an_arrival_starts_one_run_for_three_deliveries() {
    an_arrival_starts_one_run_for_three_deliveries("3.2.1").await;
}

#[tokio::test]
async fn a_paused_dag_still_gets_its_run_queued() {
    let bed = session().await;
    available(&bed, "td-paused", "3.0.6").await;
    // The template's arrival rule delivers the object's event by itself: an asynchronous
    // invoke, as EventBridge makes it.
    let deployment = Deployment::new()
        .parameter("ArrivalBuckets", LANDING)
        .rule("TriggerDagFunctionArrival");
    let routes = routes_to("td-paused", "bed_paused");
    let arrivals =
        Arrivals::deploy_with(&bed, routes, trigger_dag_role("td"), &[], deployment).await;
    arrivals.put("orders/p.csv", "x").await;
    let invocations = arrivals
        .functions
        .ended_asynchronous_invocations(1, Duration::from_secs(60))
        .await;
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    let invocation = &invocations[0];
    assert_eq!(invocation["outcome"], "succeeded", "{invocation}");
    assert_eq!(invocation["attempts"], 1, "{invocation}");
    let results = [Ok(invocation["response"].clone())];
    assert_eq!(outcomes(&results), ["started"]);
    let run_id = run_id(&results[0]);
    let run = bed
        .airflow("3.0.6")
        .dag_run("bed_paused", &run_id)
        .await
        .unwrap();
    assert_eq!(run["state"], "queued", "a paused DAG keeps its run queued");
}

#[tokio::test]
async fn an_unknown_dag_fails_clearly_and_is_reported() {
    let bed = session().await;
    available(&bed, "td-unknown", "2.10.3").await;
    let arrivals = Arrivals::deploy(&bed, routes_to("td-unknown", "no_such_dag"), "td").await;
    arrivals.put("orders/u.csv", "x").await;
    let results = arrivals.deliver(1, 1).await;
    // Not Retryable: the resume's state machine and Lambda's retries would not repeat it.
    results[0]
        .as_ref()
        .unwrap_err()
        .assert_is("OperationFailed", &["404", "no_such_dag", "td-unknown"]);
    let published = arrivals.suite_events.take(1, Duration::from_secs(5)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["detail-type"], "Arrival Failed");
    assert_eq!(published[0]["detail"]["target"]["dag_id"], "no_such_dag");
}

/// The bed holds trigger-dag to its role: without the statement granting
/// `airflow:InvokeRestApi` the call is refused as AWS refuses it, and no run is started.
#[tokio::test]
async fn without_its_invoke_rest_api_statement_the_run_is_refused_by_iam() {
    let bed = session().await;
    available(&bed, "td-denied", "2.10.3").await;
    let role = trigger_dag_role("td").without("StartDagRuns");
    let arrivals = Arrivals::deploy_as(&bed, routes_to("td-denied", "bed_smoke"), role, &[]).await;
    arrivals.put("orders/denied.csv", "x").await;
    let results = arrivals.deliver(1, 1).await;
    results[0]
        .as_ref()
        .unwrap_err()
        .assert_is("OperationFailed", &["AccessDenied"]);
    let refused: Vec<_> = bed
        .calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == "InvokeRestApi")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["error"], "AccessDeniedException");
    assert_eq!(refused[0]["status"], 403);
    assert!(
        refused[0].get("forwarded").is_none_or(|f| f != true),
        "{refused:?}"
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_the_run_created_once() {
    let bed = session().await;
    available(&bed, "td-faults", "2.10.3").await;
    let arrivals = Arrivals::deploy(&bed, routes_to("td-faults", "bed_smoke"), "td").await;
    bed.control(
        "faults",
        json!([
            {"operation": "InvokeRestApi", "kind": "throttle", "count": 4},
            {"operation": "InvokeRestApi", "kind": "rest_api_server_error", "status": 503, "count": 2},
            {"operation": "InvokeRestApi", "kind": "server_error", "count": 1}
        ]),
    )
    .await;
    arrivals.put("orders/f.csv", "x").await;
    let results = arrivals.deliver(1, 1).await;
    assert_eq!(outcomes(&results), ["started"]);
    let run_id = run_id(&results[0]);
    assert!(bed
        .airflow("2.10.3")
        .dag_run("bed_smoke", &run_id)
        .await
        .is_some());
    let calls: Vec<Value> = bed
        .calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == "InvokeRestApi")
        .collect();
    assert_eq!(
        calls.len(),
        8,
        "7 injected failures, then the call that worked: {calls:?}"
    );
}

#[tokio::test]
async fn arrivals_while_the_environment_is_away_are_held_then_replayed_once() {
    let bed = session().await;
    let arrivals = Arrivals::deploy(&bed, routes_to("td-resume", "bed_smoke"), "td").await;
    for i in 0..3 {
        arrivals.put(&format!("orders/night-{i}.csv"), "x").await;
    }
    // The environment does not exist (deleted for the night): every arrival is held.
    let results = arrivals.deliver(3, 2).await;
    assert!(
        outcomes(&results).iter().all(|o| o == "held"),
        "{:?}",
        outcomes(&results)
    );
    assert_eq!(
        arrivals.held_keys().await.len(),
        3,
        "one record per run, deliveries twice"
    );

    // Being created: still held.
    bed.control("config", json!({"create_delay": 4})).await;
    let mwaa = bed.mwaa().await;
    NewEnvironment::new("td-resume", "3.2.1")
        .create(&mwaa)
        .await;
    arrivals.put("orders/dawn.csv", "x").await;
    assert_eq!(outcomes(&arrivals.deliver(1, 1).await), ["held"]);
    assert_eq!(arrivals.held_keys().await.len(), 4);

    wait_for_status(&mwaa, "td-resume", "AVAILABLE", Duration::from_secs(60)).await;
    let replay = json!({"replay": {"environment": "td-resume"}});
    let report = arrivals.invoke(&replay).await.unwrap();
    assert_eq!(report["replayed"], 4);
    assert!(arrivals.held_keys().await.is_empty());
    let again = arrivals.invoke(&replay).await.unwrap();
    assert_eq!(again["replayed"], 0);

    let (_, runs) = bed
        .airflow("3.2.1")
        .get("/dags/bed_smoke/dagRuns?limit=100")
        .await;
    let ours: Vec<&Value> = runs["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["conf"]["bucket"] == LANDING && r["conf"]["key"].as_str().unwrap().contains("orders/")
        })
        .filter(|r| {
            ["night-0", "night-1", "night-2", "dawn"]
                .iter()
                .any(|k| r["conf"]["key"].as_str().unwrap().contains(k))
        })
        .collect();
    assert_eq!(ours.len(), 4, "one run per held arrival, none lost");
}

#[tokio::test]
async fn a_schedule_firing_starts_one_run_per_scheduled_time() {
    let bed = session().await;
    available(&bed, "td-schedule", "2.10.3").await;
    let arrivals = Arrivals::deploy(&bed, json!([]), "td").await;
    let firing: Value =
        serde_json::from_str(include_str!("../../events/schedule-firing.json")).unwrap();
    let mut firing = firing;
    firing["environment"] = json!("td-schedule");
    firing["dag"] = json!("bed_smoke");
    let first = arrivals.invoke(&firing).await.unwrap();
    let second = arrivals.invoke(&firing).await.unwrap();
    assert_eq!(first["runs"][0]["outcome"], "started");
    assert_eq!(second["runs"][0]["outcome"], "already_started");
    let run_id = first["runs"][0]["run_id"].as_str().unwrap();
    let run = bed
        .airflow("2.10.3")
        .dag_run("bed_smoke", run_id)
        .await
        .unwrap();
    assert_eq!(run["conf"]["scheduled_time"], "2026-11-21T06:00:00Z");
    assert_eq!(run["conf"]["region"], "eu");
}

#[tokio::test]
async fn a_schedule_firing_for_dag_dot_dot_is_refused_and_nothing_is_started_or_held() {
    let bed = session().await;
    available(&bed, "td-dots", "2.10.3").await;
    let arrivals = Arrivals::deploy(&bed, json!([]), "td").await;
    for dots in [".", ".."] {
        // `/dags/../dagRuns` would address another REST resource of the environment.
        let firing = json!({"id": "sched-dots", "environment": "td-dots", "dag": dots,
            "time": "2026-11-21T06:13:00Z"});
        let failure = arrivals.invoke(&firing).await.unwrap_err();
        failure.assert_is("InvalidInput", &["sched-dots", "`dag`", "path segment"]);
    }
    let held = arrivals.held_keys().await;
    assert!(
        !held.iter().any(|key| key.starts_with("held/td-dots/")),
        "nothing held: {held:?}"
    );
    let (status, runs) = bed.airflow("2.10.3").get("/dags/~/dagRuns?limit=100").await;
    assert_eq!(status, 200, "{runs}");
    let started = runs["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["conf"]["scheduled_time"] == "2026-11-21T06:13:00Z");
    assert_eq!(started.count(), 0, "no run started: {runs}");
}

#[tokio::test]
async fn arrivals_while_the_environment_flaps_end_as_exactly_one_run_each() {
    let bed = session().await;
    available(&bed, "td-flap", "2.10.3").await;
    let arrivals = Arrivals::deploy(&bed, routes_to("td-flap", "bed_smoke"), "td").await;
    const N: usize = 8;
    for i in 0..N {
        arrivals.put(&format!("orders/flap-{i}.csv"), "x").await;
    }
    let events = arrivals.rule.take(N, Duration::from_secs(15)).await;
    assert_eq!(events.len(), N);
    // Each arrival delivered twice, the environment changing status between deliveries:
    // a first delivery may start the run and the second hold it, or the other way round.
    let statuses = [
        "AVAILABLE",
        "UPDATING",
        "UNAVAILABLE",
        "AVAILABLE",
        "MAINTENANCE",
        "AVAILABLE",
    ];
    let mut seen = vec![];
    for (i, event) in events.iter().enumerate() {
        for delivery in 0..2 {
            let status = statuses[(2 * i + delivery) % statuses.len()];
            bed.control("status", json!({"name": "td-flap", "status": status}))
                .await;
            let result = arrivals.invoke(event).await;
            seen.push(format!("{status}: {}", outcomes(&[result])[0]));
        }
    }
    assert!(
        seen.iter().all(|s| !s.contains("error")),
        "no delivery fails: {seen:?}"
    );
    assert!(seen.iter().any(|s| s.ends_with("held")), "{seen:?}");
    assert!(seen.iter().any(|s| s.ends_with("started")), "{seen:?}");

    // Back for good: the resume replays what was held (409 for what already ran).
    bed.control("status", json!({"name": "td-flap", "status": "AVAILABLE"}))
        .await;
    arrivals
        .invoke(&json!({"replay": {"environment": "td-flap"}}))
        .await
        .unwrap();
    assert!(arrivals.held_keys().await.is_empty());
    let (_, runs) = bed
        .airflow("2.10.3")
        .get("/dags/bed_smoke/dagRuns?limit=100")
        .await;
    let mut keys: Vec<String> = runs["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["conf"]["key"].as_str())
        .filter(|k| k.starts_with("orders/flap-"))
        .map(str::to_owned)
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..N).map(|i| format!("orders/flap-{i}.csv")).collect();
    assert_eq!(
        keys, expected,
        "exactly one run per arrival: none lost, none doubled"
    );
}

/// The resume's loop (MoreHeldArrivals) on the bed: batches of one listing page each, until
/// a batch says nothing is left; every held arrival one run. The page is 25 here (REPLAY_PAGE)
/// so that 60 arrivals take three batches (in Lambda it is 500; the 10,000-arrival replay is measured
/// by `scripts/bench replay`).
#[tokio::test]
async fn held_arrivals_replay_in_bounded_batches_until_none_is_left() {
    let bed = session().await;
    let arrivals = Arrivals::deploy_as(
        &bed,
        routes_to("td-batches", "bed_smoke"),
        trigger_dag_role("td"),
        &[("REPLAY_PAGE", "25")],
    )
    .await;
    for i in 0..60 {
        arrivals.put(&format!("orders/batch-{i:02}.csv"), "x").await;
    }
    let held = arrivals.deliver(60, 1).await;
    assert!(outcomes(&held).iter().all(|o| o == "held"));
    assert_eq!(arrivals.held_keys().await.len(), 60);
    available(&bed, "td-batches", "2.10.3").await;

    let replay = json!({"replay": {"environment": "td-batches"}});
    let mut batches = vec![];
    loop {
        let report = arrivals.invoke(&replay).await.unwrap();
        batches.push((report["replayed"].as_u64().unwrap(), report["more"].clone()));
        if report["more"] != json!(true) || batches.len() > 5 {
            break;
        }
    }
    assert_eq!(
        batches,
        [(25, json!(true)), (25, json!(true)), (10, json!(false))]
    );
    assert!(arrivals.held_keys().await.is_empty());
    let (_, runs) = bed
        .airflow("2.10.3")
        .get("/dags/bed_smoke/dagRuns?limit=100")
        .await;
    let mut keys: Vec<&str> = runs["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["conf"]["key"].as_str())
        .filter(|k| k.starts_with("orders/batch-"))
        .collect();
    let runs = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (runs, keys.len()),
        (60, 60),
        "one run per held arrival, none lost"
    );
}
