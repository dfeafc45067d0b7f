//! trigger-dag routing arrivals to MWAA Serverless workflows on the bed: S3 PutObject in moto
//! -> the template's rule -> the built binary behind the bed's Lambda service, held to its role
//! of the template -> StartWorkflowRun on the local MWAA
//! Serverless control plane (tests/bed/mwaa_serverless_local.py). No Airflow needed.

use mwaa_ops_tests::arrivals::{Arrivals, LANDING};
use mwaa_ops_tests::lambda::Failure;
use mwaa_ops_tests::{session_without_airflow, Session};
use serde_json::{json, Value};

fn route_to(workflow_arn: &str) -> Value {
    json!([{"name": "orders", "bucket": LANDING, "prefix": "orders/",
            "workflow_arn": workflow_arn, "conf": {"team": "sales"}}])
}

/// The runs MWAA Serverless has for the workflow (ListWorkflowRuns).
async fn runs(bed: &Session, workflow_arn: &str) -> Vec<String> {
    bed.mwaa_serverless()
        .await
        .list_workflow_runs()
        .workflow_arn(workflow_arn)
        .send()
        .await
        .expect("ListWorkflowRuns")
        .workflow_runs()
        .iter()
        .map(|r| r.run_id().unwrap_or_default().to_owned())
        .collect()
}

/// The `OverrideParameters` MWAA Serverless keeps for the run (GetWorkflowRun).
async fn run_parameters(
    bed: &Session,
    workflow_arn: &str,
    run_id: &str,
) -> std::collections::HashMap<String, Value> {
    let run = bed
        .mwaa_serverless()
        .await
        .get_workflow_run()
        .workflow_arn(workflow_arn)
        .run_id(run_id)
        .send()
        .await
        .expect("GetWorkflowRun");
    run.override_parameters()
        .expect("the run's parameters")
        .iter()
        .map(|(k, v)| (k.clone(), common::document::to_json(v)))
        .collect()
}

/// StartWorkflowRun calls the control plane served: (client token, fault).
async fn start_calls(bed: &Session) -> Vec<(String, Option<String>)> {
    let calls: Vec<Value> = reqwest::get(format!("{}/_bed/calls", bed.serverless_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls
        .iter()
        .filter(|c| c["operation"] == "StartWorkflowRun")
        .map(|c| {
            (
                c["client_token"].as_str().unwrap_or_default().to_owned(),
                c["fault"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_arrival_routed_to_a_serverless_workflow_delivered_three_times_is_one_run() {
    let bed = session_without_airflow().await;
    let arn = bed.create_workflow("wf-ingest-orders").await;
    let arrivals = Arrivals::deploy(&bed, route_to(&arn), "wf").await;
    let key = "orders/2026/ünïcode orders+1%.csv";
    arrivals.put(key, "id,amount\n1,2\n").await;

    let results = arrivals.deliver(1, 3).await;
    let run_ids: Vec<&str> = results
        .iter()
        .map(|r| {
            let report = r.as_ref().expect("the invocation succeeded");
            assert_eq!(report["runs"][0]["outcome"], "started");
            report["runs"][0]["run_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(run_ids[0], run_ids[1]);
    assert_eq!(run_ids[1], run_ids[2]);
    assert_eq!(runs(&bed, &arn).await, [run_ids[0]], "one workflow run");

    let parameters = run_parameters(&bed, &arn, run_ids[0]).await;
    assert_eq!(parameters["bucket"], LANDING);
    assert_eq!(parameters["key"], key);
    assert_eq!(parameters["size"], 14);
    assert_eq!(parameters["team"], "sales");
    assert!(parameters["version_id"].is_string(), "{parameters:?}");

    let calls = start_calls(&bed).await;
    assert_eq!(calls.len(), 3);
    assert!(
        calls.iter().all(|(token, _)| *token == calls[0].0),
        "{calls:?}"
    );

    // The same key written again is a new version: a second run.
    arrivals.put(key, "id,amount\n1,3\n").await;
    arrivals.deliver(1, 1).await[0].as_ref().unwrap();
    assert_eq!(runs(&bed, &arn).await.len(), 2);
    let published = arrivals
        .suite_events
        .take(4, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(published.len(), 4);
    assert!(published
        .iter()
        .all(|e| e["detail-type"] == "Workflow Run Started"));
}

#[tokio::test]
async fn a_throttled_start_and_a_lost_answer_are_retried_into_one_run() {
    let bed = session_without_airflow().await;
    let arn = bed.create_workflow("wf-throttled").await;
    let arrivals = Arrivals::deploy(&bed, route_to(&arn), "wf").await;
    arrivals.put("orders/t.csv", "x").await;
    bed.inject_serverless_faults(json!([
        {"operation": "StartWorkflowRun", "kind": "throttle", "count": 2},
        {"operation": "StartWorkflowRun", "kind": "server_error", "after": true},
    ]))
    .await;

    let results = arrivals.deliver(1, 1).await;
    assert_eq!(
        results[0].as_ref().expect("retried until it worked")["runs"][0]["outcome"],
        "started"
    );
    assert_eq!(
        runs(&bed, &arn).await.len(),
        1,
        "the lost answer's run is the one"
    );
    let faults: Vec<Option<String>> = start_calls(&bed).await.into_iter().map(|c| c.1).collect();
    // The SDK retries throttling itself first, so count only what the bed served.
    assert!(
        faults
            .iter()
            .filter(|f| f.as_deref() == Some("throttle"))
            .count()
            == 2
            && faults
                .iter()
                .filter(|f| f.as_deref() == Some("server_error"))
                .count()
                == 1
            && faults.last() == Some(&None),
        "{faults:?}"
    );
}

#[tokio::test]
async fn an_unknown_workflow_fails_the_arrival_and_nothing_is_held() {
    let bed = session_without_airflow().await;
    let missing = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/wf-gone-0123456789";
    let arrivals = Arrivals::deploy(&bed, route_to(missing), "wf").await;
    arrivals.put("orders/u.csv", "x").await;

    let results = arrivals.deliver(1, 1).await;
    results[0]
        .as_ref()
        .unwrap_err()
        .assert_is("OperationFailed", &["ResourceNotFoundException"]);
    assert_eq!(start_calls(&bed).await.len(), 1, "a refusal is not retried");
    assert!(arrivals.held_keys().await.is_empty());
    let published = arrivals
        .suite_events
        .take(1, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(published[0]["detail-type"], "Arrival Failed");
    assert_eq!(published[0]["detail"]["target"]["workflow_arn"], missing);
    assert_eq!(published[0]["detail"]["retryable"], false);
}

/// Invokes trigger-dag with a schedule firing, as EventBridge Scheduler does.
async fn deliver(arrivals: &Arrivals, firing: &Value) -> Result<Value, Failure> {
    arrivals.invoke(firing).await
}

#[tokio::test]
async fn a_schedule_firing_naming_a_workflow_delivered_twice_is_one_run() {
    let bed = session_without_airflow().await;
    // Named with the deployment's prefix: the role may start only those workflows' runs.
    let arn = bed.create_workflow("wf-daily-report").await;
    let arrivals = Arrivals::deploy(&bed, json!([]), "wf").await;
    let mut firing: Value =
        serde_json::from_str(include_str!("../../events/schedule-firing-workflow.json")).unwrap();
    firing["workflow_arn"] = json!(arn);
    let first = deliver(&arrivals, &firing).await.unwrap();
    let second = deliver(&arrivals, &firing).await.unwrap();
    let run_id = first["runs"][0]["run_id"].as_str().unwrap();
    assert_eq!(first["runs"][0]["workflow_arn"], arn.as_str());
    assert_eq!(
        second["runs"][0]["run_id"], run_id,
        "a redelivery is the same run"
    );
    assert_eq!(runs(&bed, &arn).await, [run_id], "one workflow run");

    let parameters = run_parameters(&bed, &arn, run_id).await;
    assert_eq!(parameters["scheduled_time"], "2026-11-21T06:00:00Z");
    assert_eq!(parameters["region"], "eu");
    let calls = start_calls(&bed).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, calls[1].0, "one client token per firing");

    // The next scheduled time is the next run; nothing is ever held for a workflow.
    firing["time"] = json!("2026-11-22T06:00:00Z");
    deliver(&arrivals, &firing).await.unwrap();
    assert_eq!(runs(&bed, &arn).await.len(), 2);
    assert!(arrivals.held_keys().await.is_empty());
    let published = arrivals
        .suite_events
        .take(3, std::time::Duration::from_secs(5))
        .await;
    assert_eq!(published.len(), 3);
    assert!(published
        .iter()
        .all(|e| e["detail-type"] == "Workflow Run Started"
            && e["detail"]["target"]["route"] == "schedule"));
}
