//! Replay of held arrivals, one bounded batch per invocation. The resume workflow loops
//! while a batch answers `"more": true`, so any number of held arrivals is replayed inside
//! the resume with every invocation far inside the function's timeout: a batch reads one
//! listing page, starts no run after [`REPLAY_BATCH_TIME`], and leaves what it did not get
//! to in place for the next batch (records are deleted only once their run exists).

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use common::airflow::{start_dag_run, AirflowMajor, DagRunOutcome};
use common::retry::with_retries;
use common::{Deadline, Error};

use crate::decide::{Action, Target};
use crate::ops::Ops;
use crate::TriggerDag;

/// Held records one batch reads (one ListObjectsV2 page; S3 gives at most 1,000).
pub const REPLAY_PAGE: usize = 500;
/// A batch starts no run, and retries none, after this much time: the rest waits for the
/// next batch.
pub const REPLAY_BATCH_TIME: Duration = Duration::from_secs(20);
/// Runs a batch starts at once (each is one InvokeRestApi call; trigger-dag's reserved
/// concurrency guards the MWAA API for arrivals, this for a replay).
pub const REPLAY_PARALLEL: usize = 4;

/// The longest a replay invocation can take, which the template's `Timeout` must allow: the
/// batch's time, a call still in flight then, and the margin kept for reporting. (An
/// arrival retries until the invocation's deadline, whatever the timeout is.)
pub fn longest_replay() -> Duration {
    REPLAY_BATCH_TIME + common::aws::LONGEST_MWAA_CALL + common::runtime::MARGIN
}

/// How much one replay invocation does: the constants above, smaller on the bed to see
/// several batches with few runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    pub page: usize,
    pub batch_time: Duration,
    pub parallel: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            page: REPLAY_PAGE,
            batch_time: REPLAY_BATCH_TIME,
            parallel: REPLAY_PARALLEL,
        }
    }
}

/// What became of one held record in this batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replayed {
    Started,
    AlreadyStarted,
    SetAside,
    /// Not started in this batch (out of time, or a transient failure): still held.
    Left,
}

/// One batch's counts, as the resume workflow adds them up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    pub replayed: u64,
    pub already_started: u64,
    pub set_aside: u64,
    pub left: u64,
}

impl BatchReport {
    fn count(&mut self, replayed: Replayed) {
        match replayed {
            Replayed::Started => self.replayed += 1,
            Replayed::AlreadyStarted => self.already_started += 1,
            Replayed::SetAside => self.set_aside += 1,
            Replayed::Left => self.left += 1,
        }
    }

    /// Records this batch took off the held list.
    pub fn progress(&self) -> u64 {
        self.replayed + self.already_started + self.set_aside
    }
}

impl<O: Ops> TriggerDag<O> {
    /// One batch of the runs held for `environment`, which must be available. Runs that can
    /// never start (unknown DAG) are set aside under `failed/` and reported, not retried.
    pub(crate) async fn replay(
        &self,
        environment: &str,
        deadline: Deadline,
    ) -> Result<Value, Error> {
        // Always asked afresh: a replay right after a pause ended must see the mark gone.
        let seen = self.look_at(environment, deadline).await?;
        let Action::Start(major) = seen.action() else {
            return Err(Error::not_available(
                environment,
                &seen.status(),
                "cannot replay held arrivals",
            ));
        };
        let limits = self.replay;
        let batch_end = deadline.at_most(limits.batch_time);
        let page = with_retries(batch_end, || self.ops.held(environment, limits.page)).await?;
        // Owned targets: a closure over borrowed ones is not `Send` for every lifetime.
        let outcomes: Vec<Result<Replayed, Error>> = stream::iter(page.targets)
            .map(|target| async move { self.replay_one(&target, major, batch_end, deadline).await })
            .buffer_unordered(limits.parallel.max(1))
            .collect()
            .await;
        let mut report = BatchReport::default();
        let mut transient = None;
        for outcome in outcomes {
            match outcome {
                Ok(replayed) => report.count(replayed),
                Err(err) if err.is_retryable() => {
                    report.count(Replayed::Left);
                    transient.get_or_insert(err);
                }
                Err(err) => return Err(err),
            }
        }
        // A batch that moved nothing because the environment kept failing is an error, so
        // the workflow's retries (with their backoff) decide, not an endless loop.
        if let (Some(err), 0) = (transient, report.progress()) {
            return Err(err);
        }
        let more = page.more || report.left > 0;
        tracing::info!(
            environment,
            replayed = report.replayed,
            already = report.already_started,
            set_aside = report.set_aside,
            left = report.left,
            more,
            "held arrivals replayed (one batch)"
        );
        common::metrics::emit(
            "trigger-dag",
            environment,
            &[
                (common::metrics::ARRIVALS_REPLAYED, report.replayed as f64),
                (
                    common::metrics::RUNS_ALREADY_STARTED,
                    report.already_started as f64,
                ),
                (common::metrics::ARRIVALS_SET_ASIDE, report.set_aside as f64),
            ],
        );
        Ok(
            json!({"environment": environment, "replayed": report.replayed,
            "already_started": report.already_started, "set_aside": report.set_aside, "more": more}),
        )
    }

    /// Starts one held run and deletes its record, unless the batch is out of time.
    async fn replay_one(
        &self,
        target: &Target,
        major: AirflowMajor,
        batch_end: Deadline,
        deadline: Deadline,
    ) -> Result<Replayed, Error> {
        if batch_end.passed() {
            return Ok(Replayed::Left);
        }
        let run = target.dag_run();
        let environment = target.environment.as_str();
        let replayed = match with_retries(batch_end, || {
            start_dag_run(&self.ops, environment, major, &run)
        })
        .await
        {
            Ok(DagRunOutcome::Started) => Replayed::Started,
            Ok(DagRunOutcome::AlreadyExists) => Replayed::AlreadyStarted,
            Err(err) if !err.is_retryable() => {
                let reason = err.to_string();
                with_retries(deadline, || self.ops.set_aside(target, &reason)).await?;
                self.report_failure(target, &err).await;
                return Ok(Replayed::SetAside);
            }
            Err(err) => return Err(err),
        };
        // The run exists: deleting its record may use the rest of the invocation.
        with_retries(deadline, || self.ops.release(target)).await?;
        Ok(replayed)
    }
}
