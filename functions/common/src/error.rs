//! One error type for every function, so failures read the same in logs and alerts.

/// What went wrong, with enough context for a person to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The incoming event cannot be processed as it is; retrying will not help.
    #[error("event {event_id}: field `{field}`: {reason}")]
    InvalidEvent {
        event_id: String,
        field: String,
        reason: String,
    },
    /// The deployment's own settings are wrong (routes, environment variables).
    #[error("configuration: {0}")]
    Config(String),
    /// A request we refuse to send because MWAA would reject it.
    #[error("invalid request for environment {environment}: {reason}")]
    InvalidRequest { environment: String, reason: String },
    /// The MWAA environment does not exist (or no longer does).
    #[error("MWAA environment {0} not found")]
    EnvironmentNotFound(String),
    /// Airflow answered with a client error that retrying will not fix (404 unknown DAG, 400).
    #[error("Airflow in {environment} answered {status} to {method} {path}: {body}")]
    AirflowRejected {
        environment: String,
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// Airflow or MWAA failed on their side; worth another try.
    #[error("Airflow in {environment} failed ({status}) on {method} {path}: {body}")]
    AirflowUnavailable {
        environment: String,
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// An AWS call failed. `retryable` is true for throttling, 5xx and transport errors.
    #[error("{service} {operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        message: String,
        retryable: bool,
    },
}

impl Error {
    /// Whether the same call may succeed later (throttling, server errors, timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::AirflowUnavailable { .. } => true,
            Error::Aws { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Builds [`Error::Aws`] from any SDK error, classifying it for retries.
    pub fn aws<E, R>(
        service: &'static str,
        operation: &'static str,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_runtime_api::client::result::SdkError;
        let retryable = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => {
                // Any 5xx or 429 is transient whatever its code (MWAA answers 503 as
                // ServiceUnavailableException, S3 as SlowDown, SNS as InternalError).
                let status = (e.raw() as &dyn std::any::Any)
                    .downcast_ref::<HttpResponse>()
                    .map(|r| r.status().as_u16());
                let code = e.err().code().unwrap_or_default();
                status.is_some_and(|s| s >= 500 || s == 429)
                    || code.contains("Throttl")
                    || code == "TooManyRequestsException"
                    || code == "RequestLimitExceeded"
                    || code == "InternalServerException"
                    || code == "ServiceUnavailable"
                    || code == "ServiceUnavailableException"
                    || code == "SlowDown"
            }
            _ => false,
        };
        let message = match err {
            SdkError::ServiceError(e) => {
                let meta = e.err();
                format!(
                    "{}: {}",
                    meta.code().unwrap_or("error"),
                    meta.message().unwrap_or("no message")
                )
            }
            other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        };
        Error::Aws {
            service,
            operation,
            message,
            retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_mwaa::operation::get_environment::GetEnvironmentError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str) -> Error {
        let err = GetEnvironmentError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        Error::aws("MWAA", "GetEnvironment", &SdkError::service_error(err, raw))
    }

    #[test]
    fn every_5xx_and_429_is_retryable_whatever_its_code() {
        // MWAA's 503 was taken for a permanent failure: the state machines did not retry it.
        assert!(answered(503, "ServiceUnavailableException").is_retryable());
        assert!(answered(500, "InternalError").is_retryable());
        assert!(answered(502, "").is_retryable());
        assert!(answered(429, "SomethingNew").is_retryable());
        assert!(answered(400, "ThrottlingException").is_retryable());
        assert!(!answered(400, "ValidationException").is_retryable());
        assert!(!answered(403, "AccessDeniedException").is_retryable());
        let err = answered(503, "ServiceUnavailableException");
        assert!(
            err.to_string().contains("ServiceUnavailableException"),
            "{err}"
        );
    }
}
