//! The one error contract of the suite. Every function fails with [`Error`]; every error has
//! an [`ErrorKind`] whose name is the Lambda `errorType` (see [`crate::runtime`]), and that
//! name is what the state machines' `Retry` and `Catch` match. The message says what failed
//! and where, for the person reading an execution's history or an alert.

/// What kind of failure an invocation ended with; [`ErrorKind::as_str`] is the `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The event or step input is wrong (missing field, bad name); retrying will not help.
    InvalidInput,
    /// The deployment's own settings are wrong (routes, environment variables).
    Configuration,
    /// The environment is not in a state the work needs (not AVAILABLE, not found).
    EnvironmentNotAvailable,
    /// The environment is in a failed state (CREATE_FAILED, UPDATE_FAILED, UNAVAILABLE).
    EnvironmentFailed,
    /// The environment is still being deleted; a create must wait until it is gone.
    EnvironmentDeleting,
    /// No saved configuration for the environment.
    ConfigurationNotFound,
    /// No verified pause to resume from.
    SnapshotNotFound,
    /// The saved configuration (or the environment to save) lacks what CreateEnvironment needs.
    ConfigurationInvalid,
    /// The environment has settings the resume could not create again (and losing them was
    /// not allowed for it): the pause stops before it changes anything.
    SettingsNotCarried,
    /// MWAA refuses the saved configuration's Airflow version (it was retired meanwhile).
    AirflowVersionRefused,
    /// The metadata export does not match its manifest (missing object, checksum, row count).
    ExportNotVerified,
    /// Airflow does not know the DAG.
    DagNotFound,
    /// Throttling, 5xx, timeouts: the same call may succeed later.
    Retryable,
    /// Any other failure of AWS or Airflow that retrying will not fix (access denied, 400).
    OperationFailed,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidInput,
        ErrorKind::Configuration,
        ErrorKind::EnvironmentNotAvailable,
        ErrorKind::EnvironmentFailed,
        ErrorKind::EnvironmentDeleting,
        ErrorKind::ConfigurationNotFound,
        ErrorKind::SnapshotNotFound,
        ErrorKind::ConfigurationInvalid,
        ErrorKind::SettingsNotCarried,
        ErrorKind::AirflowVersionRefused,
        ErrorKind::ExportNotVerified,
        ErrorKind::DagNotFound,
        ErrorKind::Retryable,
        ErrorKind::OperationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Configuration => "Configuration",
            ErrorKind::EnvironmentNotAvailable => "EnvironmentNotAvailable",
            ErrorKind::EnvironmentFailed => "EnvironmentFailed",
            ErrorKind::EnvironmentDeleting => "EnvironmentDeleting",
            ErrorKind::ConfigurationNotFound => "ConfigurationNotFound",
            ErrorKind::SnapshotNotFound => "SnapshotNotFound",
            ErrorKind::ConfigurationInvalid => "ConfigurationInvalid",
            ErrorKind::SettingsNotCarried => "SettingsNotCarried",
            ErrorKind::AirflowVersionRefused => "AirflowVersionRefused",
            ErrorKind::ExportNotVerified => "ExportNotVerified",
            ErrorKind::DagNotFound => "DagNotFound",
            ErrorKind::Retryable => "Retryable",
            ErrorKind::OperationFailed => "OperationFailed",
        }
    }
}

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
    /// The environment exists but is in a status the work cannot be done in; `needed` says
    /// what was wanted of it.
    #[error("environment {environment} is {status}; {needed}")]
    EnvironmentNotAvailable {
        environment: String,
        status: String,
        needed: String,
    },
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
    /// Something the suite stored itself (a held arrival, a saved configuration) cannot be
    /// read back: it was changed or damaged outside the suite.
    #[error("{what} is unreadable: {reason}")]
    Unreadable { what: String, reason: String },
    /// A request could not be built from what the function had (a bug, not bad input).
    #[error("could not build {what}: {reason}")]
    Build { what: String, reason: String },
    /// A check the work depends on failed; the kind names which (an export that does not
    /// match its manifest, a configuration MWAA could not recreate, a DAG Airflow lacks).
    #[error("{message}")]
    Refused { kind: ErrorKind, message: String },
}

impl Error {
    /// A failed check of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Refused {
            kind,
            message: message.into(),
        }
    }

    /// Field `field` of event `event_id` cannot be used as it is, and why.
    pub fn invalid_event(event_id: &str, field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidEvent {
            event_id: event_id.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Input that is wrong where no event field can be named (a step's whole input).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A failed AWS call that another attempt may get through: a body that broke off, a
    /// batch the service took only in part, or throttling as a test's fake plays it.
    pub fn transient(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::Aws {
            service,
            operation,
            message: message.into(),
            retryable: true,
        }
    }

    /// The environment is in `status` (`NOT_FOUND` when MWAA does not know it); `needed`
    /// says what the work wanted to do.
    pub fn not_available(environment: &str, status: &str, needed: &str) -> Self {
        Error::EnvironmentNotAvailable {
            environment: environment.to_owned(),
            status: status.to_owned(),
            needed: needed.to_owned(),
        }
    }

    /// The kind, whose name is the Lambda `errorType`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidEvent { .. } | Error::InvalidRequest { .. } => ErrorKind::InvalidInput,
            Error::Config(_) => ErrorKind::Configuration,
            Error::EnvironmentNotFound(_) | Error::EnvironmentNotAvailable { .. } => {
                ErrorKind::EnvironmentNotAvailable
            }
            Error::Refused { kind, .. } => *kind,
            _ if self.is_retryable() => ErrorKind::Retryable,
            Error::AirflowRejected { .. }
            | Error::AirflowUnavailable { .. }
            | Error::Aws { .. }
            | Error::Unreadable { .. }
            | Error::Build { .. } => ErrorKind::OperationFailed,
        }
    }

    /// Whether the same call may succeed later (throttling, server errors, timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::AirflowUnavailable { .. } => true,
            Error::Aws { retryable, .. } => *retryable,
            Error::Refused { kind, .. } => *kind == ErrorKind::Retryable,
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

/// How Lambda reports a failed invocation: `errorType` is the kind's name, so Step
/// Functions can `Retry` on "Retryable" and `Catch` the kinds it handles.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind().as_str().to_owned(),
            error_message: err.to_string(),
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

    #[test]
    fn the_error_type_is_the_kinds_name() {
        let err = Error::new(ErrorKind::ExportNotVerified, "table dag_run: sha mismatch");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "ExportNotVerified");
        assert_eq!(diagnostic.error_message, "table dag_run: sha mismatch");
        let throttled = lambda_runtime::Diagnostic::from(answered(400, "ThrottlingException"));
        assert_eq!(throttled.error_type, "Retryable");
        let denied = lambda_runtime::Diagnostic::from(answered(403, "AccessDeniedException"));
        assert_eq!(denied.error_type, "OperationFailed");
    }

    #[test]
    fn every_variant_has_the_kind_its_meaning_asks_for() {
        let kind = |e: Error| e.kind();
        let airflow = |status| Error::AirflowRejected {
            environment: "e".into(),
            method: "PATCH".into(),
            path: "/dags/d".into(),
            status,
            body: String::new(),
        };
        assert_eq!(kind(airflow(400)), ErrorKind::OperationFailed);
        let down = Error::AirflowUnavailable {
            environment: "e".into(),
            method: "PATCH".into(),
            path: "/dags/d".into(),
            status: 503,
            body: String::new(),
        };
        assert_eq!(kind(down), ErrorKind::Retryable);
        let bad_event = Error::InvalidEvent {
            event_id: "ev".into(),
            field: "detail".into(),
            reason: "missing".into(),
        };
        assert_eq!(kind(bad_event), ErrorKind::InvalidInput);
        let bad = Error::InvalidRequest {
            environment: "e".into(),
            reason: "DAG id too long".into(),
        };
        assert_eq!(kind(bad), ErrorKind::InvalidInput);
        assert_eq!(kind(Error::Config("x".into())), ErrorKind::Configuration);
        assert_eq!(
            kind(Error::EnvironmentNotFound("e".into())),
            ErrorKind::EnvironmentNotAvailable
        );
        let busy = Error::not_available("e", "UPDATING", "cannot replay held arrivals");
        assert_eq!(
            busy.to_string(),
            "environment e is UPDATING; cannot replay held arrivals"
        );
        assert_eq!(kind(busy), ErrorKind::EnvironmentNotAvailable);
        let unreadable = Error::Unreadable {
            what: "held arrival held/e/d/r.json".into(),
            reason: "expected value".into(),
        };
        assert_eq!(kind(unreadable), ErrorKind::OperationFailed);
        assert_eq!(
            kind(Error::new(ErrorKind::Retryable, "try later")),
            ErrorKind::Retryable
        );
        assert!(Error::new(ErrorKind::Retryable, "try later").is_retryable());
        assert!(!Error::new(ErrorKind::DagNotFound, "no dag").is_retryable());
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
