//! What the mwaa-ops functions share: AWS configuration and clients, Airflow's REST API
//! reached through MWAA `InvokeRestApi` (Airflow 2 and 3), the error type and log set-up.

pub mod airflow;
pub mod aws;
pub mod document;
pub mod error;
pub mod event;
pub mod retry;

pub use error::Error;

/// Logs as Lambda expects them: JSON lines when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`), level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The time an invocation has left for retries, keeping `margin` for reporting at the end.
pub fn time_left(
    context: &lambda_runtime::Context,
    margin: std::time::Duration,
) -> std::time::Duration {
    context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(margin)
}
