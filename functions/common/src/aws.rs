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
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

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
/// Each attempt is bounded by [`MWAA_ATTEMPT_TIMEOUT`] and counted ([`CountMwaaCalls`]).
pub fn mwaa_client(config: &SdkConfig) -> aws_sdk_mwaa::Client {
    mwaa_client_with_timeout(config, MWAA_ATTEMPT_TIMEOUT)
}

/// [`mwaa_client`] with another attempt timeout (tests use a short one).
pub fn mwaa_client_with_timeout(config: &SdkConfig, attempt: Duration) -> aws_sdk_mwaa::Client {
    let mut builder = aws_sdk_mwaa::config::Builder::from(config)
        .timeout_config(attempt_timeouts(attempt))
        .interceptor(CountMwaaCalls);
    if mwaa_endpoint_overridden(config) {
        builder = builder.interceptor(NoEndpointPrefix);
    }
    aws_sdk_mwaa::Client::from_conf(builder.build())
}

/// The SDK's own connect timeout (3.1 s) and `attempt` for each attempt of a call: the
/// bound every client gives a call that may hang (see [`MWAA_ATTEMPT_TIMEOUT`]). The type is
/// the same for every SDK client's `timeout_config`.
fn attempt_timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(3100))
        .operation_attempt_timeout(attempt)
        .build()
}

/// `config` with each attempt of a call bounded as an MWAA call's is
/// ([`MWAA_ATTEMPT_TIMEOUT`]), for clients whose calls a retry budget counts as MWAA calls.
pub fn bounded_like_mwaa(config: &SdkConfig) -> SdkConfig {
    config
        .to_builder()
        .timeout_config(attempt_timeouts(MWAA_ATTEMPT_TIMEOUT))
        .build()
}

/// GetEnvironment; `None` when MWAA does not know the environment (deleted, never created).
pub async fn get_environment(
    mwaa: &aws_sdk_mwaa::Client,
    name: &str,
) -> Result<Option<aws_sdk_mwaa::types::Environment>, crate::Error> {
    found_environment(mwaa.get_environment().name(name).send().await)
}

/// GetEnvironment's answer, however the call was made: `None` when MWAA does not know the
/// environment.
pub fn found_environment(
    answer: Result<
        aws_sdk_mwaa::operation::get_environment::GetEnvironmentOutput,
        aws_sdk_mwaa::error::SdkError<
            aws_sdk_mwaa::operation::get_environment::GetEnvironmentError,
        >,
    >,
) -> Result<Option<aws_sdk_mwaa::types::Environment>, crate::Error> {
    use aws_sdk_mwaa::operation::get_environment::GetEnvironmentError;
    match answer {
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

/// An object's bytes; `None` when it does not exist (any more).
pub async fn read_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, crate::Error> {
    let Some(got) = get_object(s3, bucket, key).await? else {
        return Ok(None);
    };
    let bytes = got
        .body
        .collect()
        .await
        .map_err(|e| crate::Error::transient("S3", "GetObject", e.to_string()))?;
    Ok(Some(bytes.into_bytes().to_vec()))
}

/// GetObject, the body not read yet; `None` for NoSuchKey (S3 answers 403 instead unless
/// the caller may list the bucket).
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, crate::Error> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(got) => Ok(Some(got)),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
        Err(e) => Err(crate::Error::aws("S3", "GetObject", &e)),
    }
}

/// PutObject of a JSON document. No encryption header, so the bucket's default (the suite
/// key) seals it: `aws:kms` without a key id would mean the AWS managed key `aws/s3`.
pub async fn put_json(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<(), crate::Error> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| crate::Error::aws("S3", "PutObject", &e))?;
    Ok(())
}

/// DeleteObject. S3 answers the same whether or not the object was there, so a repeated
/// delete (at-least-once delivery) is harmless.
pub async fn delete_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(), crate::Error> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| crate::Error::aws("S3", "DeleteObject", &e))?;
    Ok(())
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

/// Counts every attempt at an MWAA call, the SDK's own retries included (an interceptor sees
/// each attempt; the functions' code sees only the call), as `MwaaCalls` and `MwaaThrottles`
/// of the environment the call names and the function whose invocation makes it. Outside an
/// invocation (the CLI) nothing is written.
#[derive(Debug)]
struct CountMwaaCalls;

impl Intercept for CountMwaaCalls {
    fn name(&self) -> &'static str {
        "CountMwaaCalls"
    }

    // The request is gone once sent: its environment is noted before.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let environment = environment_of_path(context.request().uri()).unwrap_or("none");
        cfg.interceptor_state()
            .store_put(CalledEnvironment(environment.to_owned()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(function) = crate::metrics::current_function() else {
            return Ok(());
        };
        let environment = cfg
            .load::<CalledEnvironment>()
            .map_or("none", |e| e.0.as_str());
        let throttled = context
            .response()
            .is_some_and(|r| is_throttle(r.status().as_u16(), r.headers().get("x-amzn-errortype")));
        crate::metrics::emit(
            function,
            environment,
            &[
                (crate::metrics::MWAA_CALLS, 1.0),
                (
                    crate::metrics::MWAA_THROTTLES,
                    f64::from(u8::from(throttled)),
                ),
            ],
        );
        Ok(())
    }
}

/// The environment the attempt under way names.
#[derive(Debug, Clone)]
struct CalledEnvironment(String);

impl Storable for CalledEnvironment {
    type Storer = StoreReplace<Self>;
}

/// The environment an MWAA request names: `/environments/{Name}`, `/restapi/{Name}`,
/// `/webtoken/{Name}`, `/clitoken/{Name}` (botocore's MWAA model); `None` for the others
/// (ListEnvironments, tags by ARN).
fn environment_of_path(uri: &str) -> Option<&str> {
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.find('/').map_or("", |at| &rest[at..]));
    let mut parts = path
        .split(['?', '#'])
        .next()?
        .trim_start_matches('/')
        .split('/');
    match (parts.next()?, parts.next()) {
        ("environments" | "restapi" | "webtoken" | "clitoken", Some(name)) if !name.is_empty() => {
            Some(name)
        }
        _ => None,
    }
}

/// MWAA's throttling answer: 429 (`ThrottlingException`), or that error type on another status.
fn is_throttle(status: u16, error_type: Option<&str>) -> bool {
    status == 429
        || error_type.is_some_and(|t| {
            let code = t.split(':').next().unwrap_or(t);
            matches!(
                code,
                "ThrottlingException" | "TooManyRequestsException" | "Throttling"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_bounded_like_mwaa_keeps_its_endpoint_and_bounds_each_attempt() {
        let config = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:4010")
            .build();
        let bounded = bounded_like_mwaa(&config);
        let timeouts = bounded.timeout_config().expect("timeouts set");
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(MWAA_ATTEMPT_TIMEOUT)
        );
        assert_eq!(
            timeouts.connect_timeout(),
            Some(Duration::from_millis(3100))
        );
        assert_eq!(bounded.region(), config.region());
        assert_eq!(bounded.endpoint_url(), Some("http://127.0.0.1:4010"));
    }

    #[test]
    fn a_call_names_its_environment_in_its_path() {
        for (uri, expected) in [
            (
                "https://api.airflow.us-east-1.amazonaws.com/environments/dev-a",
                Some("dev-a"),
            ),
            ("http://127.0.0.1:4010/restapi/dev-b", Some("dev-b")),
            (
                "https://env.airflow.eu-west-1.amazonaws.com/webtoken/dev_c?x=1",
                Some("dev_c"),
            ),
            ("/clitoken/dev-d", Some("dev-d")),
            (
                "https://api.airflow.us-east-1.amazonaws.com/environments",
                None,
            ),
            (
                "https://api.airflow.us-east-1.amazonaws.com/environments?MaxResults=25",
                None,
            ),
            (
                "https://api.airflow.us-east-1.amazonaws.com/tags/arn%3Aaws%3Aairflow",
                None,
            ),
        ] {
            assert_eq!(environment_of_path(uri), expected, "{uri}");
        }
    }

    #[test]
    fn throttles_are_429_or_a_throttling_error_type() {
        assert!(is_throttle(429, None));
        assert!(is_throttle(400, Some("ThrottlingException")));
        assert!(is_throttle(
            400,
            Some("ThrottlingException:http://internal.amazon.com/coral/")
        ));
        assert!(!is_throttle(500, Some("InternalServerException")));
        assert!(!is_throttle(200, None));
        assert!(!is_throttle(400, Some("ValidationException")));
    }
}
