//! The steps' errors. Step Functions' `Retry` and `Catch` match on the Lambda `errorType`,
//! so every error carries a kind with a stable, readable name; the message says what failed
//! and where, for the person reading the execution's history or the alert.

use common::Error;

/// What kind of failure a step ended with; [`ErrorKind::as_str`] is the Lambda `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The step's input is wrong (missing field, bad name); retrying will not help.
    InvalidInput,
    /// The environment is not in a state the step can work with (not AVAILABLE, not found).
    EnvironmentNotAvailable,
    /// The environment is in a failed state (CREATE_FAILED, UPDATE_FAILED, UNAVAILABLE).
    EnvironmentFailed,
    /// The environment is still being deleted; a create must wait until it is gone.
    EnvironmentDeleting,
    /// No saved configuration for the environment.
    ConfigurationNotFound,
    /// No verified pause to resume from (`snapshots/<environment>/latest.json`).
    SnapshotNotFound,
    /// The saved configuration (or the environment to save) lacks what CreateEnvironment needs.
    ConfigurationInvalid,
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
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::EnvironmentNotAvailable => "EnvironmentNotAvailable",
            ErrorKind::EnvironmentFailed => "EnvironmentFailed",
            ErrorKind::EnvironmentDeleting => "EnvironmentDeleting",
            ErrorKind::ConfigurationNotFound => "ConfigurationNotFound",
            ErrorKind::SnapshotNotFound => "SnapshotNotFound",
            ErrorKind::ConfigurationInvalid => "ConfigurationInvalid",
            ErrorKind::ExportNotVerified => "ExportNotVerified",
            ErrorKind::DagNotFound => "DagNotFound",
            ErrorKind::Retryable => "Retryable",
            ErrorKind::OperationFailed => "OperationFailed",
        }
    }
}

/// A step's failure: its kind (the `errorType`) and a message a person can act on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
}

impl StepError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The environment is in `status` (`NOT_FOUND` when MWAA does not know it); `needed`
    /// says what the step wanted to do.
    pub fn not_available(environment: &str, status: &str, needed: &str) -> Self {
        Self::new(
            ErrorKind::EnvironmentNotAvailable,
            format!("environment {environment} is {status}; {needed}"),
        )
    }
}

/// The shared error, classified: retryable failures become `Retryable`, input errors
/// `InvalidInput`, an environment MWAA does not know `EnvironmentNotAvailable`.
impl From<Error> for StepError {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::InvalidEvent { .. } | Error::InvalidRequest { .. } => ErrorKind::InvalidInput,
            Error::EnvironmentNotFound(_) => ErrorKind::EnvironmentNotAvailable,
            _ if err.is_retryable() => ErrorKind::Retryable,
            _ => ErrorKind::OperationFailed,
        };
        Self::new(kind, err.to_string())
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(err: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind.as_str().to_owned(),
            error_message: err.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_is_the_kinds_name() {
        let err = StepError::new(ErrorKind::ExportNotVerified, "table dag_run: sha mismatch");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "ExportNotVerified");
        assert_eq!(diagnostic.error_message, "table dag_run: sha mismatch");
    }

    #[test]
    fn shared_errors_are_classified_for_retries() {
        let throttled = Error::Aws {
            service: "MWAA",
            operation: "GetEnvironment",
            message: "ThrottlingException: slow down".into(),
            retryable: true,
        };
        assert_eq!(StepError::from(throttled).kind, ErrorKind::Retryable);
        let denied = Error::Aws {
            service: "S3",
            operation: "PutObject",
            message: "AccessDenied: no".into(),
            retryable: false,
        };
        let err = StepError::from(denied);
        assert_eq!(err.kind, ErrorKind::OperationFailed);
        assert!(err.message.contains("S3 PutObject"), "{err}");
        let airflow_down = Error::AirflowUnavailable {
            environment: "e".into(),
            method: "PATCH".into(),
            path: "/dags/d".into(),
            status: 503,
            body: String::new(),
        };
        assert_eq!(StepError::from(airflow_down).kind, ErrorKind::Retryable);
        let gone = Error::EnvironmentNotFound("e".into());
        assert_eq!(
            StepError::from(gone).kind,
            ErrorKind::EnvironmentNotAvailable
        );
        let bad = Error::InvalidRequest {
            environment: "e".into(),
            reason: "DAG id too long".into(),
        };
        assert_eq!(StepError::from(bad).kind, ErrorKind::InvalidInput);
    }
}
