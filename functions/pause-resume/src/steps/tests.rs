//! The registry against what it serves: every step, run through [`Step::run`] with the real
//! SDK clients, reports a throttled AWS call to Lambda as `errorType: "Retryable"`, and
//! every `lambda:invoke` task of the state machines retries exactly that error type.

use std::time::Duration;

use aws_sdk_mwaa::config::retry::RetryConfig;
use aws_sdk_mwaa::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Value};

use common::runtime::Invocation;

use super::Step;
use crate::Clients;

/// AWS throttling every call, each service in its own words: MWAA (REST JSON) answers 429
/// `ThrottlingException`, S3 answers 503 `SlowDown`.
#[derive(Debug, Clone)]
struct Throttling;

impl HttpConnector for Throttling {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = if request.uri().contains(".s3.") {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            HttpResponse::new(StatusCode::try_from(503).unwrap(), SdkBody::from(body))
        } else {
            let body = r#"{"message": "Rate exceeded"}"#;
            let mut response =
                HttpResponse::new(StatusCode::try_from(429).unwrap(), SdkBody::from(body));
            response
                .headers_mut()
                .insert("x-amzn-errortype", "ThrottlingException");
            response
        };
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Throttling {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// The clients the binaries build, talking to a throttling AWS. The SDK's own retries are
/// off: they end the same way, only later.
fn throttled_clients() -> Clients {
    let config = common::aws::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
        .http_client(Throttling)
        .retry_config(RetryConfig::disabled())
        .build();
    Clients {
        mwaa: common::aws::mwaa_client(&config),
        s3: aws_sdk_s3::Client::new(&config),
        sfn: crate::sfn_client(&config),
        bucket: Some("suite".into()),
        may_lose_settings: vec![],
    }
}

/// A valid input of each step, as its state machine task sends it.
fn input(step: Step) -> Value {
    match step {
        Step::EnvironmentStatus => json!({"environment": "dev", "skip_marker": "skip-next-pause"}),
        Step::SaveConfiguration | Step::CreateEnvironment => json!({"environment": "dev"}),
        Step::DeleteEnvironment => json!({"environment": "dev", "execution": "arn:pause:1"}),
        Step::RunDag => {
            json!({"environment": "dev", "dag": "mwaa_ops_export", "task_token": "AQCE-token"})
        }
        Step::EnableDags => json!({"environment": "dev", "dags": ["etl"]}),
        Step::VerifyExport => json!({"bucket": "exports", "manifest_key": "m/manifest.json",
            "manifest_version_id": "v1", "environment": "dev", "execution": "arn:pause:1",
            "execution_started": "2026-11-30T01:00:00Z"}),
    }
}

#[tokio::test]
async fn a_throttled_call_reaches_lambda_as_retryable_from_every_step() {
    let clients = throttled_clients();
    for step in Step::ALL {
        // No time left for the steps' own REST retries: the throttle is reported at once.
        let invocation = Invocation::new(input(step), Duration::ZERO);
        let err = step.run(&clients, invocation).await.unwrap_err();
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(
            diagnostic.error_type,
            "Retryable",
            "{}: {}",
            step.name(),
            diagnostic.error_message
        );
        assert!(
            diagnostic.error_message.contains("Throttling")
                || diagnostic.error_message.contains("SlowDown"),
            "{}: {}",
            step.name(),
            diagnostic.error_message
        );
    }
}

#[test]
fn every_step_has_one_name_and_one_binary() {
    let manifest = include_str!("../../Cargo.toml");
    let mut bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| bin.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    let mut names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
    bins.sort_unstable();
    names.sort_unstable();
    assert_eq!(bins, names, "Cargo.toml [[bin]] entries vs Step::ALL");
    for step in Step::ALL {
        assert_eq!(Step::named(step.name()), Some(step));
    }
    assert_eq!(Step::named("trigger-dag"), None);
}

/// The step a task invokes, from its `FunctionName` (`${EnvironmentStatusFunctionArn}`).
fn invoked_step(function: &str) -> Option<Step> {
    let stem = function.strip_prefix("${")?.strip_suffix("FunctionArn}")?;
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    Step::named(&name)
}

/// Every Task state of a definition, nested ones (Parallel, Map) included.
fn tasks<'a>(states: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    for (name, state) in states.as_object().expect("States is an object") {
        if state["Type"] == "Task" {
            out.push((name, state));
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            tasks(&branch["States"], out);
        }
        for nested in ["Iterator", "ItemProcessor"] {
            if state[nested].is_object() {
                tasks(&state[nested]["States"], out);
            }
        }
    }
}

#[test]
fn every_lambda_task_of_the_state_machines_retries_what_the_steps_report() {
    let mut invoked = std::collections::HashSet::new();
    for (machine, text) in [
        (
            "pause",
            include_str!("../../../../infra/statemachines/pause.asl.json"),
        ),
        (
            "resume",
            include_str!("../../../../infra/statemachines/resume.asl.json"),
        ),
    ] {
        let definition: Value = serde_json::from_str(text).unwrap();
        let mut found = vec![];
        tasks(&definition["States"], &mut found);
        let lambda: Vec<_> = found
            .into_iter()
            .filter(|(_, s)| {
                s["Resource"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("arn:aws:states:::lambda:invoke"))
            })
            .collect();
        assert!(!lambda.is_empty(), "{machine}: no lambda:invoke task");
        for (name, state) in lambda {
            let retried = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten())
                .any(|e| e == "Retryable");
            assert!(retried, "{machine}.{name} does not retry \"Retryable\"");
            let function = state["Parameters"]["FunctionName"].as_str().unwrap_or("");
            invoked.extend(invoked_step(function));
        }
    }
    for step in Step::ALL {
        assert!(
            invoked.contains(&step),
            "no state machine task invokes {}",
            step.name()
        );
    }
}

#[test]
fn each_step_reports_its_time_failure_and_what_only_it_knows() {
    use super::step_metrics;
    let named = |values: Vec<(common::metrics::Metric, f64)>| -> Vec<(&'static str, f64)> {
        values.into_iter().map(|(m, v)| (m.name, v)).collect()
    };
    let status = step_metrics(
        Step::EnvironmentStatus,
        0.5,
        &Ok(json!({"status": "NOT_FOUND"})),
    );
    assert_eq!(
        named(status),
        [
            ("StepSeconds", 0.5),
            ("StepFailures", 0.0),
            ("EnvironmentAvailable", 0.0)
        ]
    );
    let verified = step_metrics(
        Step::VerifyExport,
        2.0,
        &Ok(json!({"rows": 120, "bytes": 4096})),
    );
    assert_eq!(
        named(verified),
        [
            ("StepSeconds", 2.0),
            ("StepFailures", 0.0),
            ("ExportRows", 120.0),
            ("ExportBytes", 4096.0)
        ]
    );
    let failed = step_metrics(
        Step::VerifyExport,
        1.0,
        &Err(common::Error::invalid_input("x")),
    );
    assert_eq!(named(failed), [("StepSeconds", 1.0), ("StepFailures", 1.0)]);
}
