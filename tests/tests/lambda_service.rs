//! The bed's Lambda service as a test uses it (mwaa_ops_tests::lambda): a function's binary
//! answers an invocation, reports its error object as Lambda does, and its output (its logs)
//! is kept for the test; an Invoke signed with a role's key is held to that role. No Airflow
//! needed.

use mwaa_ops_tests::iam::Role;
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

/// A state machine invokes only what its role allows: step-worker signs the pause's Invoke
/// with PauseStateMachineRole's key, and Lambda refuses a function outside the role's
/// LambdaInvokePolicy with its 403 AccessDeniedException.
#[tokio::test]
async fn a_state_machines_role_invokes_its_functions_and_no_other() {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    let bed = session_without_airflow().await;
    let functions = Functions::start(
        &bed,
        Deployment::new().resource("SuiteBucket", json!("mwaa-ops-suite")),
    )
    .await;
    let role = Role::new("PauseStateMachineRole")
        .resource("EnvironmentStatusFunction", json!("environment-status"));
    let key = bed.as_role(&role).await.key;
    let config = bed.aws_config().await;
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&config)
            .endpoint_url(&functions.url)
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                key,
                "unchecked",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let invoke = |function: &'static str| {
        lambda
            .invoke()
            .function_name(function)
            .payload(aws_smithy_types::Blob::new(
                json!({"environment": "x"}).to_string(),
            ))
            .send()
    };
    let allowed = invoke("environment-status")
        .await
        .expect("the pause may invoke it");
    assert_eq!(allowed.status_code(), 200);
    let err = invoke("notify").await.unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    let message = err.message().unwrap_or_default();
    assert!(
        message.contains("assumed-role/PauseStateMachineRole/")
            && message.contains("lambda:InvokeFunction on resource: arn:aws:lambda:")
            && message.contains(":function:notify because no identity-based policy allows"),
        "{message}"
    );
}
