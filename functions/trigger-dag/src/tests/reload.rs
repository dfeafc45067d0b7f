//! Routes files in the suite bucket, through the handler: read at the first arrival,
//! re-read once per period when they change, a broken one rejected (last good routes kept,
//! "Routes Rejected" naming file, route and field) without stopping the other files.

use super::*;
use crate::catalog::{FileSettings, RouteCatalog};
use std::time::Duration;

fn route(name: &str, prefix: &str, environment: &str) -> Value {
    json!({"name": name, "bucket": "landing", "prefix": prefix, "environment": environment,
           "dag": "ingest"})
}

fn put(fake: &Fake, key: &str, etag: &str, routes: &Value) {
    fake.route_files
        .lock()
        .unwrap()
        .insert(key.into(), (etag.into(), routes.to_string().into_bytes()));
}

/// trigger-dag with routes files under `routes/`, looked at again after `period`; the
/// parameter routes `in/` to dev-a.
fn with_files(fake: Fake, period: Duration) -> TriggerDag<Fake> {
    let parameter = routes::parse_routes(
        r#"[{"name":"param","bucket":"landing","prefix":"in/","environment":"dev-a","dag":"ingest"}]"#,
    )
    .unwrap();
    let settings = FileSettings {
        bucket: "suite".into(),
        prefix: "routes/".into(),
        period,
    };
    TriggerDag {
        ops: fake,
        routes: RouteCatalog::with_files(parameter, settings),
        environments: Default::default(),
        replay: Default::default(),
    }
}

/// trigger-dag with one routes file, `routes/sales.json` sending `sales/` to dev-b (etag e1).
fn with_sales_file(environments: &[&str], period: Duration) -> TriggerDag<Fake> {
    let fake = available(environments);
    put(
        &fake,
        "routes/sales.json",
        "e1",
        &json!([route("sales", "sales/", "dev-b")]),
    );
    with_files(fake, period)
}

/// The environments each run of an arrival went to.
async fn routed(f: &TriggerDag<Fake>, key: &str) -> Vec<String> {
    let report = f
        .handle(arrival(key), common::Deadline::after(BUDGET))
        .await
        .unwrap();
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["environment"].as_str().unwrap().to_owned())
        .collect()
}

fn rejections(f: &TriggerDag<Fake>) -> Vec<Value> {
    f.ops
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == crate::ROUTES_REJECTED)
        .map(|(_, d)| d.clone())
        .collect()
}

#[tokio::test]
async fn a_changed_file_is_used_after_the_period_and_read_once() {
    let f = with_sales_file(&["dev-a", "dev-b", "dev-c"], Duration::ZERO);
    assert_eq!(routed(&f, "sales/1.csv").await, ["dev-b"]);
    assert_eq!(
        routed(&f, "in/1.csv").await,
        ["dev-a"],
        "the parameter's routes too"
    );

    put(
        &f.ops,
        "routes/sales.json",
        "e2",
        &json!([route("sales", "sales/", "dev-c")]),
    );
    assert_eq!(routed(&f, "sales/2.csv").await, ["dev-c"]);
    let calls = f.ops.route_calls.lock().unwrap().clone();
    let gets = calls.iter().filter(|c| c.starts_with("get")).count();
    assert_eq!(gets, 2, "each version read once: {calls:?}");

    f.ops.route_files.lock().unwrap().clear();
    assert!(
        routed(&f, "sales/3.csv").await.is_empty(),
        "a deleted file's routes go"
    );
    assert!(rejections(&f).is_empty());
}

#[tokio::test]
async fn within_the_period_arrivals_make_no_s3_call() {
    let f = with_sales_file(&["dev-a", "dev-b"], Duration::from_secs(3600));
    for i in 0..5 {
        assert_eq!(routed(&f, &format!("sales/{i}.csv")).await, ["dev-b"]);
    }
    put(&f.ops, "routes/sales.json", "e2", &json!([]));
    assert_eq!(
        routed(&f, "sales/9.csv").await,
        ["dev-b"],
        "not looked at yet"
    );
    assert_eq!(
        *f.ops.route_calls.lock().unwrap(),
        ["list", "get routes/sales.json"],
        "one look for six arrivals"
    );
}

#[tokio::test]
async fn a_broken_file_keeps_its_last_good_routes_and_is_reported_once() {
    let f = with_sales_file(&["dev-a", "dev-b"], Duration::ZERO);
    assert_eq!(routed(&f, "sales/1.csv").await, ["dev-b"]);

    put(
        &f.ops,
        "routes/sales.json",
        "e2",
        &json!([route("sales", "sales/", "9-not-a-name")]),
    );
    assert_eq!(
        routed(&f, "sales/2.csv").await,
        ["dev-b"],
        "old routes kept"
    );
    assert_eq!(routed(&f, "sales/3.csv").await, ["dev-b"]);
    let rejected = rejections(&f);
    assert_eq!(rejected.len(), 1, "reported once per version: {rejected:?}");
    assert_eq!(rejected[0]["file"], "s3://suite/routes/sales.json");
    assert_eq!(rejected[0]["route"], "routes[0] (\"sales\")");
    assert_eq!(rejected[0]["field"], "environment");
    assert_eq!(rejected[0]["kept_routes"], 1);
}

#[tokio::test]
async fn at_cold_start_a_broken_file_is_skipped_and_the_others_used() {
    let f = with_sales_file(&["dev-a", "dev-b"], Duration::ZERO);
    put(
        &f.ops,
        "routes/a-typo.json",
        "e1",
        &json!([{"name": "x", "bucket": "landing", "prefx": "x/",
        "environment": "dev-a", "dag": "ingest"}]),
    );
    assert_eq!(routed(&f, "sales/1.csv").await, ["dev-b"]);
    let rejected = rejections(&f);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["key"], "routes/a-typo.json");
    assert_eq!(rejected[0]["field"], "prefx");
    assert_eq!(rejected[0]["kept_routes"], Value::Null);
}

#[tokio::test]
async fn routes_files_that_cannot_be_read_at_cold_start_fail_the_arrival_as_retryable() {
    let fake = Fake {
        route_files_down: true,
        ..available(&["dev-a"])
    };
    let f = with_files(fake, Duration::ZERO);
    let err = f
        .handle(
            arrival("in/1.csv"),
            common::Deadline::after(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), common::ErrorKind::Retryable, "{err}");
    assert!(
        f.ops.airflow.runs.lock().unwrap().is_empty(),
        "never matched blind"
    );
    // A schedule firing needs no routes.
    let firing = json!({"environment": "dev-a", "dag": "daily", "time": "2026-11-21T06:00:00Z"});
    assert!(f
        .handle(firing, common::Deadline::after(BUDGET))
        .await
        .is_ok());
}

#[tokio::test]
async fn once_read_an_s3_outage_keeps_the_routes_in_use() {
    let mut f = with_sales_file(&["dev-a", "dev-b"], Duration::ZERO);
    assert_eq!(routed(&f, "sales/1.csv").await, ["dev-b"]);
    f.ops.route_files_down = true;
    assert_eq!(routed(&f, "sales/2.csv").await, ["dev-b"]);
}
