//! The morning digest: once the morning's resumes have ended, one email saying what each
//! environment went through overnight and what the night paused saved.
//!
//! Triggered by every end of a resume execution (rule `ResumeSucceeded`, and the alert
//! rule's failed ones): the resume that ends last, with no other resume of the last
//! [`LOOKBACK_MS`] still running, sends it. `digests/<date>.json` in the suite bucket
//! (UTC date of that end) makes it one per morning, however often it is triggered.
//! Everything it says was written already: the executions (ListExecutions,
//! DescribeExecution, the failed step from the history) and the pause's snapshot record
//! (`snapshots/<env>/latest.json`). Pure here; the calls are in [`ops`].

pub mod ops;
pub mod prices;
pub mod render;
mod run;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::message::iso8601;
use crate::ops::FailedStep;
use prices::{Prices, Size};

/// Resumes started this long before the one that ended belong to the same morning.
pub const LOOKBACK_MS: i64 = 12 * 3600 * 1000;

/// Where a sent digest is remembered: `digests/<YYYY-MM-DD>.json`.
pub fn marker_key(date: &str) -> String {
    format!("digests/{date}.json")
}

/// The UTC date of an instant, `YYYY-MM-DD`.
pub fn utc_date(millis: i64) -> String {
    iso8601(millis)[..10].to_owned()
}

/// What the digest needs to know about the deployment.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// The resume state machine: its executions are the morning's.
    pub resume_state_machine_arn: String,
    /// Where the digest goes (`DIGEST_TOPIC_ARN`: the alert topic unless the stack names
    /// another).
    pub topic_arn: String,
    pub prices: Prices,
}

/// One resume execution, as ListExecutions tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeRun {
    pub execution_arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or PENDING_REDRIVE).
    pub status: String,
    pub started_ms: i64,
}

/// What DescribeExecution tells about one execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunDetail {
    pub input: Option<String>,
    pub output: Option<String>,
    pub started_ms: Option<i64>,
}

/// What to do once a resume ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Morning {
    /// Other resumes of this morning still run: the last of them sends the digest.
    Wait { running: Vec<String> },
    /// Every resume of this morning ended: these, newest first.
    Summarize(Vec<ResumeRun>),
}

/// The morning of the resume that `ended`: the runs started within [`LOOKBACK_MS`] before
/// it ended. The one that ended counts as ended whatever the listing says (ListExecutions
/// may not show it yet).
pub fn morning(mut runs: Vec<ResumeRun>, ended: &ResumeRun, ended_ms: i64) -> Morning {
    runs.retain(|r| r.started_ms >= ended_ms - LOOKBACK_MS && r.started_ms <= ended_ms);
    match runs
        .iter_mut()
        .find(|r| r.execution_arn == ended.execution_arn)
    {
        Some(run) => run.status.clone_from(&ended.status),
        None => runs.push(ended.clone()),
    }
    let running: Vec<String> = runs
        .iter()
        .filter(|r| r.status == "RUNNING")
        .map(|r| r.execution_arn.clone())
        .collect();
    if running.is_empty() {
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        Morning::Summarize(runs)
    } else {
        Morning::Wait { running }
    }
}

/// The environment an execution worked on (its input's `environment`).
pub fn environment_of(detail: &RunDetail) -> Option<String> {
    let input: Value = serde_json::from_str(detail.input.as_deref()?).ok()?;
    input.get("environment")?.as_str().map(str::to_owned)
}

/// The latest resume of each environment, oldest ones left out.
pub fn latest_per_environment(
    runs: Vec<(ResumeRun, RunDetail)>,
) -> BTreeMap<String, (ResumeRun, RunDetail)> {
    let mut latest: BTreeMap<String, (ResumeRun, RunDetail)> = BTreeMap::new();
    for (run, detail) in runs {
        let Some(environment) = environment_of(&detail) else {
            continue;
        };
        match latest.get(&environment) {
            Some((kept, _)) if kept.started_ms >= run.started_ms => {}
            _ => {
                latest.insert(environment, (run, detail));
            }
        }
    }
    latest
}

/// How an environment's resume ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Resumed,
    /// Nothing to resume (the pause was skipped or failed): the resume's reason.
    NotResumed(String),
    /// FAILED, TIMED_OUT or ABORTED, at this step, with this error.
    Failed {
        status: String,
        step: Option<String>,
        error: Option<String>,
    },
}

/// The export the night's pause verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub rows: u64,
    pub bytes: u64,
    /// From the pause's start to the verified manifest's creation.
    pub seconds: Option<f64>,
}

/// One environment's night.
#[derive(Debug, Clone, PartialEq)]
pub struct Night {
    pub environment: String,
    pub outcome: Outcome,
    /// When the pause recorded its verified snapshot (right before the deletion).
    pub paused_ms: Option<i64>,
    /// When the resume started.
    pub resumed_ms: i64,
    pub held: u64,
    pub replayed: u64,
    pub set_aside: u64,
    pub export: Option<Export>,
    pub dags_on: Option<u64>,
    pub dags_missing: Vec<String>,
    pub size: Option<Size>,
}

impl Night {
    /// Hours the environment did not exist (paused -> resume started); 0 when it was not
    /// paused.
    pub fn hours(&self) -> f64 {
        match (self.paused_ms, &self.outcome) {
            (Some(from), Outcome::Resumed | Outcome::Failed { .. }) if from < self.resumed_ms => {
                (self.resumed_ms - from) as f64 / 3_600_000.0
            }
            _ => 0.0,
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time, `Z` or an offset (the pause writes
/// `2026-11-30T16:35:12.988642+00:00`).
pub fn millis(text: &str) -> Option<i64> {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    let t = DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset).ok()?;
    t.to_millis().ok()
}

fn count(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_u64).unwrap_or(0)
}

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Where the snapshot record points at the configuration the pause saved: this pause's
/// timestamped copy (`latest.json` may be a later pause's).
pub fn configuration_key(snapshot: &Value) -> Option<&str> {
    let saved = snapshot.pointer("/configuration/result")?;
    saved.get("copy").or_else(|| saved.get("key"))?.as_str()
}

/// One environment's night from its resume (`output`: the execution's output, absent when
/// it failed), the pause's snapshot record and saved configuration, the failed step, and the
/// pause's start.
pub fn night(
    environment: &str,
    run: &ResumeRun,
    output: Option<&Value>,
    snapshot: Option<&Value>,
    configuration: Option<&Value>,
    failed: Option<&FailedStep>,
    pause_started_ms: Option<i64>,
) -> Night {
    let outcome = match (run.status.as_str(), output) {
        ("SUCCEEDED", Some(out)) if out.get("resumed") == Some(&Value::Bool(false)) => {
            Outcome::NotResumed(
                out.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("not said")
                    .to_owned(),
            )
        }
        ("SUCCEEDED", _) => Outcome::Resumed,
        (status, _) => Outcome::Failed {
            status: status.to_owned(),
            step: failed.map(|f| f.state.clone()),
            error: failed.and_then(|f| f.error.clone()),
        },
    };
    let replay = output.and_then(|o| o.get("replayed"));
    let replayed = count(replay.and_then(|r| r.get("replayed")))
        + count(replay.and_then(|r| r.get("already_started")));
    let set_aside = count(replay.and_then(|r| r.get("set_aside")));
    let enabled = output.and_then(|o| o.pointer("/enabled/result"));
    let active = output
        .and_then(|o| o.pointer("/creation/result/snapshot/active_dags"))
        .and_then(Value::as_array)
        .map(|a| a.len() as u64);
    let mut dags_missing = names(enabled.and_then(|e| e.get("missing")));
    dags_missing.extend(names(enabled.and_then(|e| e.get("not_addressable"))));
    let verified = snapshot.and_then(|s| s.get("verified"));
    let export = verified.map(|v| Export {
        rows: count(v.get("rows")),
        bytes: count(v.get("bytes")),
        seconds: v
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(millis)
            .zip(pause_started_ms)
            .map(|(made, start)| (made - start).max(0) as f64 / 1000.0),
    });
    Night {
        environment: environment.to_owned(),
        paused_ms: snapshot
            .and_then(|s| s.get("paused_at"))
            .and_then(Value::as_str)
            .and_then(millis),
        resumed_ms: run.started_ms,
        held: replayed + set_aside,
        replayed,
        set_aside,
        export: if matches!(outcome, Outcome::NotResumed(_)) {
            None
        } else {
            export
        },
        dags_on: active
            .filter(|_| enabled.is_some())
            .map(|a| a.saturating_sub(dags_missing.len() as u64)),
        dags_missing,
        size: configuration.map(Size::of),
        outcome,
    }
}
