//! The bed's Lambda service as a test uses it (mwaa_ops_tests::lambda): a function's binary
//! answers an invocation, reports its error object as Lambda does, and its output (its logs)
//! is kept for the test. No Airflow needed.

use mwaa_ops_tests::lambda::{Deployment, Functions};
use mwaa_ops_tests::session_without_airflow;
use serde_json::json;

#[tokio::test]
async fn a_binary_answers_with_its_error_object_and_its_output_is_kept() {
    let bed = session_without_airflow().await;
    let functions = Functions::start(
        &bed,
        Deployment::new()
            .parameter("Routes", "[]")
            .resource("SuiteBucket", json!("mwaa-ops-suite")),
    )
    .await;
    // An event no rule of the template sends: refused, naming what is wrong and the event.
    let failure = functions
        .invoke(
            "trigger-dag",
            &json!({"id": "odd-1", "detail-type": "Nothing"}),
        )
        .await
        .unwrap_err();
    failure.assert_is("InvalidInput", &["odd-1"]);
    assert!(
        functions.output().contains("odd-1"),
        "the function's log line: {}",
        functions.output()
    );
}
