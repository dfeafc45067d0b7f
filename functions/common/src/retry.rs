//! Retries with jittered exponential backoff until the invocation's [`Deadline`], for the
//! errors AWS documents as transient (throttling, 5xx). The SDK's own retries come first;
//! this is the longer patience a Lambda with a minute to spare can afford. Every loop counts
//! down the one deadline of the invocation, never a budget of its own.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::{Deadline, Error};

/// First wait; doubled each attempt up to `MAX_DELAY`, then "full jitter" picks 0..=delay.
const BASE_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Calls `op` until it succeeds, fails for good, or the next wait would overrun `deadline`.
/// Returns the last error then.
pub async fn with_retries<T, F, Fut>(deadline: Deadline, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delay = BASE_DELAY;
    loop {
        match op().await {
            Err(err) if err.is_retryable() => {
                let wait =
                    Duration::from_millis(rand::rng().random_range(0..=delay.as_millis() as u64));
                if !deadline.allows(wait) {
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
        let result = with_retries(Deadline::after(Duration::from_secs(30)), || {
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
        let result: Result<(), _> = with_retries(Deadline::after(Duration::from_secs(30)), || {
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
        let result: Result<(), _> =
            with_retries(Deadline::after(Duration::from_millis(50)), || {
                calls.set(calls.get() + 1);
                async { Err(transient()) }
            })
            .await;
        assert!(result.unwrap_err().is_retryable());
        assert!(calls.get() >= 1);
    }

    #[tokio::test]
    async fn loops_in_sequence_share_one_deadline() {
        // Two loops each given "the budget" used to get it twice: after the first loop has
        // spent the deadline, the next one tries once and gives up.
        let deadline = Deadline::after(Duration::from_millis(100));
        let first = Cell::new(0);
        let _: Result<(), _> = with_retries(deadline, || {
            first.set(first.get() + 1);
            async { Err(transient()) }
        })
        .await;
        tokio::time::sleep(deadline.remaining()).await;
        let second = Cell::new(0);
        let result: Result<(), _> = with_retries(deadline, || {
            second.set(second.get() + 1);
            async { Err(transient()) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(second.get(), 1);
    }
}
