use super::*;

const ETL: &str = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-a1b2c3d4e5";
const MISSING: &str = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/gone-a1b2c3d4e5";

/// A DAG route and a workflow route on the same prefix, and a workflow that does not exist.
fn serverless(fake: Fake) -> TriggerDag<Fake> {
    with_routes(
        fake,
        &format!(
            r#"[{{"bucket":"landing","prefix":"in/","environment":"dev-a","dag":"ingest"}},
            {{"name":"etl","bucket":"landing","prefix":"in/","workflow_arn":"{ETL}","conf":{{"team":"sales"}}}},
            {{"bucket":"landing","prefix":"gone/","workflow_arn":"{MISSING}"}}]"#
        ),
    )
}

fn with_missing_workflow(fake: Fake) -> Fake {
    Fake {
        missing_workflows: vec![MISSING.into()],
        ..fake
    }
}

#[tokio::test]
async fn three_deliveries_start_one_workflow_run_with_the_arrivals_facts() {
    let f = serverless(available(&["dev-a"]));
    // An unversioned bucket: S3 gives no version id, the sequencer names the write.
    let mut unversioned = arrival("in/a.csv");
    unversioned["detail"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("version-id");
    let mut reports = vec![];
    for _ in 0..3 {
        reports.push(f.run(unversioned.clone()).await.unwrap());
    }
    let runs = f.ops.workflow_runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "one client token for the three deliveries");
    let (arn, parameters, run_id) = runs.values().next().unwrap();
    assert_eq!(arn, ETL);
    assert_eq!(parameters["team"], "sales");
    assert_eq!(parameters["bucket"], "landing");
    assert_eq!(parameters["key"], "in/a.csv");
    assert!(parameters.get("event_id").is_some());
    assert!(
        parameters
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_null()),
        "no null in a map that is not sparse: {parameters}"
    );
    assert!(parameters.get("version_id").is_none());
    assert_eq!(parameters["sequencer"], "00617F08299329D189");
    for report in &reports {
        let workflow = &report["runs"][1];
        assert_eq!(workflow["workflow_arn"], ETL);
        assert_eq!(workflow["run_id"], run_id.as_str());
        assert_eq!(workflow["outcome"], "started");
        let token = workflow["client_token"].as_str().unwrap();
        assert!(token.starts_with("s3-") && token.len() <= 128, "{token}");
    }
    assert_eq!(*f.ops.workflow_calls.lock().unwrap(), 3);
    assert_eq!(
        f.ops.airflow.runs.lock().unwrap().len(),
        1,
        "the DAG route still gets its run"
    );
    let started = f.ops.published.lock().unwrap().clone();
    assert_eq!(
        started
            .iter()
            .filter(|d| *d == crate::workflows::WORKFLOW_RUN_STARTED)
            .count(),
        3
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_into_one_run() {
    let fake = available(&["dev-a"]);
    fake.workflow_faults.lock().unwrap().extend([
        Error::transient(
            "MWAA Serverless",
            "StartWorkflowRun",
            "ThrottlingException: slow down",
        ),
        Error::transient(
            "MWAA Serverless",
            "StartWorkflowRun",
            "InternalServerException: oops",
        ),
    ]);
    let f = serverless(fake);
    let report = f
        .run_within(std::time::Duration::from_secs(10), arrival("in/a.csv"))
        .await
        .unwrap();
    assert_eq!(report["runs"][1]["outcome"], "started");
    assert_eq!(*f.ops.workflow_calls.lock().unwrap(), 3);
    assert_eq!(f.ops.workflow_runs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn throttling_until_the_deadline_fails_the_arrival_as_retryable() {
    let fake = available(&["dev-a"]);
    fake.workflow_faults.lock().unwrap().extend(
        (0..1000).map(|_| {
            Error::transient("MWAA Serverless", "StartWorkflowRun", "ThrottlingException")
        }),
    );
    let f = serverless(fake);
    let err = f
        .run_within(std::time::Duration::from_millis(300), arrival("in/a.csv"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), common::ErrorKind::Retryable, "{err}");
    assert!(f.ops.workflow_runs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_run_fails_the_arrival_once_and_is_never_held() {
    for refusal in [
        "ValidationException",
        "AccessDeniedException",
        "ConflictException",
    ] {
        let fake = available(&["dev-a"]);
        fake.workflow_faults
            .lock()
            .unwrap()
            .push_back(serverless_refused(refusal));
        let f = serverless(fake);
        let err = f.run(arrival("in/a.csv")).await.unwrap_err();
        assert_eq!(err.kind(), common::ErrorKind::OperationFailed, "{err}");
        assert!(err.to_string().contains(refusal), "{err}");
        assert_eq!(*f.ops.workflow_calls.lock().unwrap(), 1, "not retried");
        assert!(f.ops.held.lock().unwrap().is_empty(), "nothing to hold");
        let events = f.ops.events.lock().unwrap().clone();
        let failed: Vec<_> = events
            .iter()
            .filter(|(d, _)| d == "Arrival Failed")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].1["target"]["workflow_arn"], ETL);
        assert_eq!(failed[0].1["retryable"], false);
        assert_eq!(
            f.ops.airflow.runs.lock().unwrap().len(),
            1,
            "the DAG run still started"
        );
    }
}

#[tokio::test]
async fn an_unknown_workflow_is_reported_and_a_paused_environment_holds_only_the_dag_run() {
    let f = serverless(with_missing_workflow(Fake::default()));
    let err = f.run(arrival("gone/a.csv")).await.unwrap_err();
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
    assert_eq!(err.kind(), common::ErrorKind::OperationFailed);

    // dev-a is away: its DAG run is held, the workflow (no environment) runs at once.
    let report = f.run(arrival("in/b.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(report["runs"][1]["outcome"], "started");
    assert_eq!(f.ops.held.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_new_version_of_the_key_is_a_new_workflow_run() {
    let f = serverless(available(&["dev-a"]));
    f.run(arrival("in/a.csv")).await.unwrap();
    let mut rewritten = arrival("in/a.csv");
    rewritten["detail"]["object"]["version-id"] = json!("another-version");
    rewritten["id"] = json!("another-event");
    f.run(rewritten).await.unwrap();
    assert_eq!(f.ops.workflow_runs.lock().unwrap().len(), 2);
}
