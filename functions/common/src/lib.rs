//! What the mwaa-ops functions share: AWS configuration and clients, Airflow's REST API
//! reached through MWAA `InvokeRestApi` (Airflow 2 and 3), the MWAA vocabulary (names,
//! statuses, events), the error contract and the runtime entry every binary uses.

pub mod airflow;
pub mod aws;
pub mod deadline;
pub mod document;
pub mod environment;
pub mod error;
pub mod event;
pub mod retry;
pub mod runtime;
pub mod status_change;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use deadline::Deadline;
pub use environment::{Availability, EnvironmentName, Status};
pub use error::{Error, ErrorKind};

/// Logs as Lambda expects them: JSON lines when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}
