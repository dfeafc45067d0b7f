//! The one runtime entry of every binary: logs set up, AWS configuration loaded and the
//! function's clients built once per cold start, then one handler call per invocation with
//! the invocation's [`Deadline`], and failures reported to Lambda under the error contract
//! (`errorType` = the error's kind, see [`crate::error`]).

use std::future::Future;
use std::time::Duration;

use aws_config::SdkConfig;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::{Deadline, Error};

/// Time kept back from Lambda's deadline for logging and returning the result after the
/// last retry.
pub const MARGIN: Duration = Duration::from_secs(3);

/// One invocation as a handler sees it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub payload: Value,
    /// Lambda's deadline less [`MARGIN`]: every retry of this invocation counts it down.
    pub deadline: Deadline,
    /// The ARN the function was invoked as (empty outside Lambda).
    pub function_arn: String,
}

impl Invocation {
    /// An invocation outside Lambda (tests, the bed), with `budget` to work in.
    pub fn new(payload: Value, budget: Duration) -> Self {
        Invocation {
            payload,
            deadline: Deadline::after(budget),
            function_arn: String::new(),
        }
    }

    fn from_event(event: LambdaEvent<Value>) -> Self {
        Invocation {
            deadline: Deadline::of_invocation(&event.context, MARGIN),
            function_arn: event.context.invoked_function_arn,
            payload: event.payload,
        }
    }
}

/// Runs a function: `build` makes its state (clients, settings) from the AWS configuration
/// once, then `handle` serves each invocation. A failed build ends the process, which Lambda
/// reports as an init error; a failed invocation reaches Lambda as a [`Diagnostic`].
/// The state lives as long as the process, as the execution environment keeps it.
pub async fn serve<S, B, BFut, H, HFut>(
    name: &'static str,
    build: B,
    handle: H,
) -> Result<(), lambda_runtime::Error>
where
    S: 'static,
    B: FnOnce(SdkConfig) -> BFut,
    BFut: Future<Output = Result<S, Error>>,
    H: Fn(&'static S, Invocation) -> HFut,
    HFut: Future<Output = Result<Value, Error>>,
{
    crate::init_logging();
    let config = crate::aws::load_config().await;
    let state = match build(config).await {
        Ok(state) => state,
        Err(err) => {
            tracing::error!(function = name, error_type = err.kind().as_str(), error = %err, "cannot start");
            return Err(err.into());
        }
    };
    tracing::info!(function = name, "ready");
    let state: &'static S = Box::leak(Box::new(state));
    let handle = &handle;
    // Boxed: the runtime's future nested in every binary's `main` is deep enough to pass
    // rustc's default type-layout recursion limit.
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| async move {
            let outcome = handle(state, Invocation::from_event(event)).await;
            report(name, outcome)
        },
    )))
    .await
}

/// Logs how an invocation ended and turns a failure into what Lambda reports.
pub fn report(name: &'static str, outcome: Result<Value, Error>) -> Result<Value, Diagnostic> {
    match outcome {
        Ok(output) => {
            tracing::debug!(function = name, %output, "invocation done");
            Ok(output)
        }
        Err(err) => {
            tracing::error!(function = name, error_type = err.kind().as_str(), error = %err, "invocation failed");
            Err(err.into())
        }
    }
}

/// A required setting from the function's environment variables.
pub fn setting(name: &str) -> Result<String, Error> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(Error::Config(format!("{name} is not set"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_reaches_lambda_as_its_kind() {
        let throttled =
            Error::transient("MWAA", "GetEnvironment", "ThrottlingException: slow down");
        let diagnostic = report("f", Err(throttled)).unwrap_err();
        assert_eq!(diagnostic.error_type, "Retryable");
        assert!(diagnostic.error_message.contains("ThrottlingException"));
        assert_eq!(report("f", Ok(json!({"a": 1}))).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn a_missing_setting_names_the_variable() {
        let err = setting("MWAA_OPS_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Configuration);
        assert!(err.to_string().contains("MWAA_OPS_SURELY_UNSET_VARIABLE"));
    }
}
