//! pause-resume: the Lambda steps of the pause and resume state machines, and the
//! DAG <-> Step Functions bridge (`run-dag`) users may call from their own state machines.
//!
//! One binary per step (`src/bin/`), all served from one registry, [`steps::Step`]; each
//! takes and returns JSON and is idempotent, since Step Functions retries. Every step is
//! parse -> decide (pure functions) -> act (through [`ops`] and
//! `common::airflow::AirflowRest`) -> report (JSON logs, a JSON result, or an error whose
//! `errorType` is one of [`ErrorKind`]). Where the steps keep things in S3: [`layout`].

pub mod configuration;
pub mod digest;
pub mod layout;
pub mod ops;
pub mod steps;

#[cfg(test)]
mod fakes;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use common::EnvironmentName;
pub use common::{Error, ErrorKind};
pub use steps::Step;

/// The input of the steps that work on one environment.
#[derive(Debug, Deserialize)]
pub struct EnvironmentInput {
    pub environment: EnvironmentName,
}

/// Deserializes a step's input; a mismatch is `InvalidInput` naming the field.
pub fn parse<T: DeserializeOwned>(event: &Value) -> Result<T, Error> {
    common::event::parse(&common::event::event_id(event), event)
}

/// Parses `{"environment": ...}`; a name MWAA would refuse is refused here, before any call.
pub fn parse_environment(event: &Value) -> Result<EnvironmentName, Error> {
    Ok(parse::<EnvironmentInput>(event)?.environment)
}

/// What a step works with, built once per cold start (building a client makes no call).
pub struct Clients {
    pub mwaa: aws_sdk_mwaa::Client,
    pub s3: aws_sdk_s3::Client,
    /// create-environment asks whether the pause named by a pausing mark still runs.
    pub sfn: aws_sdk_sfn::Client,
    /// The suite's bucket (`SUITE_BUCKET`), for the steps that keep things there.
    pub bucket: Option<String>,
    /// Environments whose pause may drop settings the resume cannot create again
    /// (`ALLOW_LOSING_SETTINGS`, comma-separated; save-configuration).
    pub may_lose_settings: Vec<String>,
}

impl Clients {
    /// The clients `step` needs, and `SUITE_BUCKET` when it uses the bucket (a missing
    /// setting stops the cold start, not every invocation).
    pub fn for_step(config: &common::aws::SdkConfig, step: Step) -> Result<Self, Error> {
        let bucket = if step.uses_bucket() {
            Some(common::runtime::setting("SUITE_BUCKET")?)
        } else {
            None
        };
        let may_lose_settings = steps::save_configuration::allowed_losses(
            &std::env::var("ALLOW_LOSING_SETTINGS").unwrap_or_default(),
        );
        Ok(Clients {
            mwaa: common::aws::mwaa_client(config),
            s3: aws_sdk_s3::Client::new(config),
            sfn: sfn_client(config),
            bucket,
            may_lose_settings,
        })
    }

    /// The suite's bucket; an error for a step built without it.
    pub fn bucket(&self) -> Result<&str, Error> {
        self.bucket
            .as_deref()
            .ok_or_else(|| Error::Config("SUITE_BUCKET is not set".into()))
    }
}

/// The Step Functions client, each attempt bounded as an MWAA call is
/// ([`common::aws::MWAA_ATTEMPT_TIMEOUT`]), so `Step::longest` counts it as one.
pub fn sfn_client(config: &common::aws::SdkConfig) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&common::aws::bounded_like_mwaa(config))
}

/// Runs `step` as the Lambda handler, through the suite's one runtime entry.
pub async fn serve_step(step: Step) -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        step.name(),
        move |config| async move { Clients::for_step(&config, step) },
        move |clients, invocation| step.run(clients, invocation),
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
        common::testing::assert_invalid_input(err, &["environment"]);
        let err = parse_environment(&json!({})).unwrap_err();
        assert!(
            err.to_string().contains("missing field `environment`"),
            "{err}"
        );
        let err = parse_environment(&json!({"environment": "../x"})).unwrap_err();
        common::testing::assert_invalid_input(err, &["environment"]);
    }

    #[test]
    fn extra_keys_from_step_functions_are_accepted() {
        let name = parse_environment(&json!({"environment": "dev", "status": "AVAILABLE"}));
        assert_eq!(name.unwrap(), "dev");
    }
}
