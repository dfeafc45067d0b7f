//! Proof that the bed behaves like AWS where the suite needs it: the unmodified MWAA SDK
//! client starts runs in a real Airflow 2 and 3 through the local control plane, and S3
//! arrivals reach the template's EventBridge rule.

use std::time::Duration;

use aws_sdk_mwaa::operation::invoke_rest_api::InvokeRestApiError;
use aws_sdk_mwaa::types::RestApiMethod;
use common::airflow::{start_dag_run, AirflowMajor, DagRun, DagRunOutcome};
use common::document::to_document;
use mwaa_ops_tests::arrivals::send_events_to_eventbridge;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::session;
use serde_json::json;

async fn dag_run_round_trip(airflow_version: &str) {
    let bed = session().await;
    let mwaa = bed.mwaa().await;
    let name = format!("bed-proof-{}", airflow_version.replace('.', "-"));
    NewEnvironment::new(&name, airflow_version)
        .create(&mwaa)
        .await;
    let env = wait_for_status(&mwaa, &name, "AVAILABLE", Duration::from_secs(60)).await;
    assert_eq!(env.airflow_version(), Some(airflow_version));

    let major = AirflowMajor::from_version(airflow_version).unwrap();
    let run = DagRun {
        dag_id: "bed_smoke".into(),
        run_id: format!("proof__{}", std::process::id()),
        conf: json!({"bucket": "landing", "key": "in/ä b+c%.csv", "size": 3}),
    };
    let first = start_dag_run(&mwaa, &name, major, &run).await.unwrap();
    assert_eq!(first, DagRunOutcome::Started);

    // Airflow itself, asked directly, has the run with its conf.
    let airflow = bed.airflow(airflow_version);
    let stored = airflow
        .dag_run("bed_smoke", &run.run_id)
        .await
        .expect("the run exists in Airflow");
    assert_eq!(stored["conf"], run.conf);

    // The same request again: MWAA answers RestApiClientException carrying Airflow's 409.
    let again = mwaa
        .invoke_rest_api()
        .name(&name)
        .method(RestApiMethod::Post)
        .path("/dags/bed_smoke/dagRuns")
        .body(to_document(&common::airflow::dag_run_body(major, &run)))
        .send()
        .await
        .expect_err("a second run with the same id is refused");
    match again.into_service_error() {
        InvokeRestApiError::RestApiClientException(e) => {
            assert_eq!(e.rest_api_status_code(), Some(409));
            assert!(e.rest_api_response().is_some());
        }
        other => panic!("expected RestApiClientException, got {other:?}"),
    }
    assert_eq!(
        start_dag_run(&mwaa, &name, major, &run).await.unwrap(),
        DagRunOutcome::AlreadyExists
    );
}

#[tokio::test]
async fn the_mwaa_sdk_starts_a_run_in_a_real_airflow_2() {
    dag_run_round_trip("2.10.3").await;
}

#[tokio::test]
async fn the_mwaa_sdk_starts_a_run_in_a_real_airflow_3() {
    dag_run_round_trip("3.0.6").await;
}

#[tokio::test]
async fn the_mwaa_sdk_starts_a_run_in_a_real_airflow_3_2() {
    dag_run_round_trip("3.2.1").await;
}

#[tokio::test]
async fn s3_arrivals_reach_the_templates_rule_and_others_do_not() {
    let bed = session().await;
    let config = bed.aws_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let rule = bed
        .rule_to_queue(
            "TriggerDagFunctionArrival",
            &[
                ("ArrivalBuckets", "landing-zone"),
                ("EnvironmentNamePrefix", "bed"),
            ],
        )
        .await;
    for bucket in ["landing-zone", "elsewhere"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        send_events_to_eventbridge(&s3, bucket).await;
    }
    let key = "incoming/2026-11-21/orders ä+1%.csv";
    for bucket in ["elsewhere", "landing-zone"] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(b"a,b\n1,2\n".to_vec().into())
            .send()
            .await
            .unwrap();
    }

    let received = rule.take(1, Duration::from_secs(20)).await;
    assert_eq!(
        received.len(),
        1,
        "exactly the landing-zone arrival: {received:?}"
    );
    let event = &received[0];
    assert_eq!(event["source"], "aws.s3");
    assert_eq!(event["detail-type"], "Object Created");
    assert_eq!(event["detail"]["bucket"]["name"], "landing-zone");
    assert_eq!(event["detail"]["object"]["key"], key);
    assert_eq!(event["detail"]["object"]["size"], 8);
}
