//! AWS configuration and clients, built once per cold start.
//!
//! Endpoints come from the standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), which aws-config already honours; that is how the same
//! binary runs against AWS, the local bed or any emulator.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::endpoint::EndpointPrefix;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Loads region, credentials and endpoint overrides from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Whether MWAA calls go to an overridden endpoint (the bed) rather than AWS.
fn mwaa_endpoint_overridden(config: &SdkConfig) -> bool {
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !ignored
        && (config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_MWAA").is_some_and(|v| !v.is_empty()))
}

/// How long one MWAA call may take before the SDK gives up on it and tries again.
///
/// The SDK sets no such limit by default (only a 3.1 s connect timeout): a call that hangs
/// would hold the function until Lambda kills it, and a killed function is an error the state
/// machines do not retry (`Sandbox.Timedout`), so a pause or resume would fail on one slow
/// answer. MWAA answers environment calls at once and gives up on Airflow after 10 s
/// (InvokeRestApi); 15 s is a call that will not come back. Retrying it is safe: every call
/// the functions make is idempotent or read as done when repeated (a second create is
/// "already exists", a second delete "DELETING", a second DAG run start 409).
pub const MWAA_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest one MWAA call can take: each of the SDK's attempts (3 in its standard retry
/// mode) hanging until [`MWAA_ATTEMPT_TIMEOUT`]. A retry loop stopped by a deadline may still
/// be inside such a call; a function's timeout leaves room for it.
pub const LONGEST_MWAA_CALL: Duration = MWAA_ATTEMPT_TIMEOUT.saturating_mul(3);

/// The MWAA client. Against AWS it is the plain SDK client. Against a local endpoint the SDK
/// would still prefix the host (`api.` / `env.`) and fail DNS, so the prefix is dropped then.
/// Each attempt is bounded by [`MWAA_ATTEMPT_TIMEOUT`].
pub fn mwaa_client(config: &SdkConfig) -> aws_sdk_mwaa::Client {
    mwaa_client_with_timeout(config, MWAA_ATTEMPT_TIMEOUT)
}

/// [`mwaa_client`] with another attempt timeout (tests use a short one).
pub fn mwaa_client_with_timeout(config: &SdkConfig, attempt: Duration) -> aws_sdk_mwaa::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(attempt)
        .build();
    let mut builder = aws_sdk_mwaa::config::Builder::from(config).timeout_config(timeouts);
    if mwaa_endpoint_overridden(config) {
        builder = builder.interceptor(NoEndpointPrefix);
    }
    aws_sdk_mwaa::Client::from_conf(builder.build())
}

/// GetEnvironment; `None` when MWAA does not know the environment (deleted, never created).
pub async fn get_environment(
    mwaa: &aws_sdk_mwaa::Client,
    name: &str,
) -> Result<Option<aws_sdk_mwaa::types::Environment>, crate::Error> {
    use aws_sdk_mwaa::operation::get_environment::GetEnvironmentError;
    match mwaa.get_environment().name(name).send().await {
        Ok(out) => Ok(out.environment),
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetEnvironmentError::ResourceNotFoundException(_))
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(crate::Error::aws("MWAA", "GetEnvironment", &e)),
    }
}

/// Removes the operation's endpoint host prefix; only installed when an endpoint override is set.
#[derive(Debug)]
struct NoEndpointPrefix;

impl Intercept for NoEndpointPrefix {
    fn name(&self) -> &'static str {
        "NoEndpointPrefix"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<EndpointPrefix>();
        Ok(())
    }
}
