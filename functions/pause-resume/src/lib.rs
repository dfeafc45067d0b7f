//! pause-resume: the Lambda steps of the pause and resume state machines, and the
//! DAG <-> Step Functions bridge (`run-dag`) users may call from their own state machines.
//!
//! One binary per step (`src/bin/`); each takes and returns JSON and is idempotent, since
//! Step Functions retries. Every step is parse -> decide (pure functions) -> act (through
//! [`ops`] and `common::airflow::AirflowRest`) -> report (JSON logs, a JSON result, or an
//! error whose `errorType` is one of [`error::ErrorKind`]).

pub mod configuration;
pub mod dags;
pub mod environment;
pub mod ops;
pub mod verify;

#[cfg(test)]
mod fakes;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use common::runtime::Invocation;
pub use common::{Error, ErrorKind};

/// The input of the steps that work on one environment.
#[derive(Debug, Deserialize)]
pub struct EnvironmentInput {
    pub environment: String,
}

/// Deserializes a step's input; a mismatch is `InvalidInput` naming the field.
pub fn parse<T: DeserializeOwned>(event: &Value) -> Result<T, Error> {
    common::event::parse(&common::event::event_id(event), event)
}

/// Refuses names MWAA would refuse, before any call.
pub fn check_environment_name(name: &str) -> Result<(), Error> {
    if common::environment::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "field `environment`: {name:?} is not an MWAA environment name \
             (a letter, then letters, digits, - or _; at most 80)"
        )))
    }
}

/// Parses `{"environment": ...}` and checks the name.
pub fn parse_environment(event: &Value) -> Result<String, Error> {
    let input: EnvironmentInput = parse(event)?;
    check_environment_name(&input.environment)?;
    Ok(input.environment)
}

/// The clients a step may use, built once per cold start (building one makes no call).
pub struct Clients {
    pub mwaa: aws_sdk_mwaa::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(config: &common::aws::SdkConfig) -> Self {
        Clients {
            mwaa: common::aws::mwaa_client(config),
            s3: aws_sdk_s3::Client::new(config),
        }
    }
}

/// The suite's bucket (saved configurations), from `SUITE_BUCKET`.
pub fn suite_bucket() -> Result<String, Error> {
    common::runtime::setting("SUITE_BUCKET")
}

/// Runs a step as the Lambda handler, through the suite's one runtime entry.
pub async fn serve<F, Fut>(step: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(&'static Clients, Invocation) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Error>>,
{
    common::runtime::serve(
        step,
        |config| async move { Ok(Clients::new(&config)) },
        handler,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_input_names_the_field() {
        let err = parse_environment(&json!({"environment": 5})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("environment"), "{err}");
        let err = parse_environment(&json!({})).unwrap_err();
        assert!(
            err.to_string().contains("missing field `environment`"),
            "{err}"
        );
        let err = parse_environment(&json!({"environment": "../x"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("environment"), "{err}");
    }

    #[test]
    fn extra_keys_from_step_functions_are_accepted() {
        let name = parse_environment(&json!({"environment": "dev", "status": "AVAILABLE"}));
        assert_eq!(name.unwrap(), "dev");
    }
}
