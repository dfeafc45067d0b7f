//! trigger-dag's routes files on the bed: files in moto's S3 (the suite bucket's `routes/`),
//! arrivals through the template's rule, trigger-dag's built binary behind the bed's Lambda
//! service with a 1-second reload period (ROUTES_RELOAD_SECONDS; 60 s in the template). A changed file is used within the period; a broken one keeps the old
//! routes and puts "Routes Rejected" on the bus, which the template's notify rule takes.
//! No Airflow: the environment does not exist, so each run is held, naming its DAG.

use std::time::Duration;

use mwaa_ops_tests::arrivals::{trigger_dag_role, Arrivals, LANDING, ROUTES_PREFIX, SUITE_BUCKET};
use mwaa_ops_tests::session_without_airflow;
use serde_json::{json, Value};

/// ROUTES_RELOAD_SECONDS on the bed (whole seconds, as the variable takes them).
const PERIOD: Duration = Duration::from_secs(1);

fn routes_file(name: &str, prefix: &str, environment: &str, dag: &str) -> String {
    json!([{"name": name, "bucket": LANDING, "prefix": prefix, "environment": environment,
            "dag": dag}])
    .to_string()
}

/// The DAG of each run the arrivals just delivered start (or hold); "" for no route.
async fn dags(arrivals: &Arrivals, expected: usize) -> Vec<String> {
    let mut dags = vec![];
    for result in arrivals.deliver(expected, 1).await {
        let report = result.expect("the arrival is handled");
        let runs = report["runs"].as_array().unwrap();
        assert!(runs.len() <= 1, "{report}");
        assert!(runs.iter().all(|r| r["outcome"] == "held"), "{report}");
        dags.push(
            runs.first()
                .map(|r| r["dag_id"].as_str().unwrap().to_owned())
                .unwrap_or_default(),
        );
    }
    dags
}

/// "Routes Rejected" events among the suite events put so far.
async fn rejected(arrivals: &Arrivals) -> Vec<Value> {
    arrivals
        .suite_events
        .take(1, Duration::from_secs(5))
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "Routes Rejected")
        .collect()
}

#[tokio::test]
async fn a_changed_routes_file_is_used_within_the_period_and_a_broken_one_keeps_the_old_routes() {
    let bed = session_without_airflow().await;
    // trigger-dag held to its role (IAM enforced), for the environments named rf-*.
    let role = trigger_dag_role("rf");
    let period = PERIOD.as_secs().to_string();
    let mut arrivals =
        Arrivals::deploy_as(&bed, json!([]), role, &[("ROUTES_RELOAD_SECONDS", &period)]).await;
    let notify_rule = bed
        .rule_to_queue(
            "NotifyFunctionRoutesRejected",
            &[("EnvironmentNamePrefix", "local")],
        )
        .await;
    arrivals
        .put_routes(
            "sales.json",
            &routes_file("orders", "orders/", "rf-env", "load_v1"),
        )
        .await;
    arrivals.put("orders/1.csv", "x").await;
    assert_eq!(dags(&arrivals, 1).await, ["load_v1"]);

    // Changed without a deploy: the next arrival after the period follows the new file.
    arrivals
        .put_routes(
            "sales.json",
            &routes_file("orders", "orders/", "rf-env", "load_v2"),
        )
        .await;
    tokio::time::sleep(PERIOD + Duration::from_millis(100)).await;
    arrivals.put("orders/2.csv", "x").await;
    assert_eq!(dags(&arrivals, 1).await, ["load_v2"]);

    // Broken: the last good routes stay, and the bus hears which file, route and field.
    arrivals
        .put_routes(
            "sales.json",
            &routes_file("orders", "orders/", "9-bad", "load_v3"),
        )
        .await;
    tokio::time::sleep(PERIOD + Duration::from_millis(100)).await;
    arrivals.put("orders/3.csv", "x").await;
    assert_eq!(dags(&arrivals, 1).await, ["load_v2"]);
    arrivals.put("orders/4.csv", "x").await;
    tokio::time::sleep(PERIOD + Duration::from_millis(100)).await;
    assert_eq!(
        dags(&arrivals, 1).await,
        ["load_v2"],
        "still, and not reported twice"
    );
    let events = rejected(&arrivals).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let detail = &events[0]["detail"];
    assert_eq!(
        detail["file"],
        format!("s3://{SUITE_BUCKET}/{ROUTES_PREFIX}sales.json")
    );
    assert_eq!(detail["route"], "routes[0] (\"orders\")");
    assert_eq!(detail["field"], "environment");
    assert!(detail["reason"]
        .as_str()
        .unwrap()
        .contains("is not an MWAA environment name"));
    assert_eq!(detail["kept_routes"], 1);
    let for_notify = notify_rule.take(1, Duration::from_secs(5)).await;
    assert_eq!(
        for_notify.len(),
        1,
        "the template's rule takes it to notify"
    );
    let alert = notify::alerts::routes_rejected("id", &for_notify[0]["detail"]);
    assert!(
        alert.subject().contains("routes/sales.json"),
        "{}",
        alert.subject()
    );

    // A cold start with the broken file: it is skipped (reported), the other file is used.
    arrivals
        .put_routes(
            "team-b.json",
            &routes_file("events", "events/", "rf-env", "load_events"),
        )
        .await;
    arrivals.cold_start(&bed).await;
    arrivals.put("events/1.json", "x").await;
    arrivals.put("orders/5.csv", "x").await;
    let mut routed = dags(&arrivals, 2).await;
    routed.sort();
    assert_eq!(
        routed,
        ["", "load_events"],
        "orders/ has no good routes yet"
    );
    let events = rejected(&arrivals).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["key"], "routes/sales.json");
    assert_eq!(events[0]["detail"]["kept_routes"], Value::Null);
}
