//! Retries with jittered exponential backoff inside a time budget, for the errors AWS
//! documents as transient (throttling, 5xx). The SDK's own retries come first; this is the
//! longer patience a Lambda with a minute to spare can afford.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::Error;

/// First wait; doubled each attempt up to `MAX_DELAY`, then "full jitter" picks 0..=delay.
const BASE_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Calls `op` until it succeeds, fails for good, or the next wait would overrun `budget`.
/// Returns the last error then.
pub async fn with_retries<T, F, Fut>(budget: Duration, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = BASE_DELAY;
    loop {
        match op().await {
            Err(err) if err.is_retryable() => {
                let wait =
                    Duration::from_millis(rand::rng().random_range(0..=delay.as_millis() as u64));
                if Instant::now() + wait >= deadline {
                    return Err(err);
                }
                tracing::warn!(error = %err, wait_ms = wait.as_millis() as u64, "transient failure, retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn transient() -> Error {
        Error::AirflowUnavailable {
            environment: "e".into(),
            method: "POST".into(),
            path: "/p".into(),
            status: 503,
            body: String::new(),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = Cell::new(0);
        let result = with_retries(Duration::from_secs(30), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(transient())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(Duration::from_secs(30), || {
            calls.set(calls.get() + 1);
            async { Err(Error::EnvironmentNotFound("e".into())) }
        })
        .await;
        assert!(matches!(result, Err(Error::EnvironmentNotFound(_))));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn the_budget_ends_the_retries_with_the_last_error() {
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(Duration::from_millis(50), || {
            calls.set(calls.get() + 1);
            async { Err(transient()) }
        })
        .await;
        assert!(result.unwrap_err().is_retryable());
        assert!(calls.get() >= 1);
    }
}
