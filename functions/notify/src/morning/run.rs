//! The digest's one pass: is it due (marker, resumes still running), what each
//! environment's night was, then one email and the marker.

use std::time::{SystemTime, UNIX_EPOCH};

use common::retry::with_retries;
use common::{Deadline, Error};
use serde_json::{json, Value};

use super::ops::DigestOps;
use super::{
    configuration_key, latest_per_environment, marker_key, morning, night, render, utc_date,
    Morning, ResumeRun, LOOKBACK_MS,
};
use crate::event::ExecutionEnded;
use crate::ops::Ops;
use crate::Notify;

/// Nanoseconds since the epoch: what makes one invocation's claim its own.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `<stack>` of `arn:...:stateMachine:<stack>-resume`.
fn stack_of(state_machine_arn: &str) -> &str {
    let name = state_machine_arn.rsplit(':').next().unwrap_or_default();
    name.strip_suffix("-resume").unwrap_or(name)
}

impl<O: Ops + DigestOps> Notify<O> {
    /// Sends the morning digest if `ended` was the last of the morning's resumes and no
    /// digest went out for its date. Other executions: nothing.
    pub async fn morning_digest(
        &self,
        ended: &ExecutionEnded,
        deadline: Deadline,
    ) -> Result<Option<Value>, Error> {
        let Some(settings) = self
            .digest
            .as_ref()
            .filter(|s| s.resume_state_machine_arn == ended.state_machine_arn)
        else {
            return Ok(None);
        };
        let ended_ms = ended.stop_date.or(ended.start_date).unwrap_or_else(now_ms);
        let date = utc_date(ended_ms);
        if with_retries(deadline, || self.ops.digest_sent(&date)).await? {
            return Ok(Some(json!({"digest": "sent already", "date": date})));
        }
        let this = ResumeRun {
            execution_arn: ended.execution_arn.clone(),
            status: ended.status.clone(),
            started_ms: ended.start_date.unwrap_or(ended_ms),
        };
        let runs = with_retries(deadline, || {
            self.ops
                .resume_runs(&settings.resume_state_machine_arn, ended_ms - LOOKBACK_MS)
        })
        .await?;
        let runs = match morning(runs, &this, ended_ms) {
            Morning::Wait { running } => {
                return Ok(Some(json!({"digest": "waiting", "running": running})))
            }
            Morning::Summarize(runs) => runs,
        };
        let mut detailed = vec![];
        for run in runs {
            let detail = with_retries(deadline, || self.ops.run_detail(&run.execution_arn)).await?;
            detailed.push((run, detail));
        }
        let mut nights = vec![];
        for (environment, (run, detail)) in latest_per_environment(detailed) {
            let output: Option<Value> = detail
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok());
            // pause-resume's layout: the pause's snapshot record.
            let key = format!("snapshots/{environment}/latest.json");
            let snapshot = with_retries(deadline, || self.ops.record(&key)).await?;
            let configuration = match snapshot.as_ref().and_then(configuration_key) {
                Some(key) => with_retries(deadline, || self.ops.record(key)).await?,
                None => None,
            };
            // Explanations are best effort: a digest without the step beats none.
            let failed = if run.status == "SUCCEEDED" {
                None
            } else {
                self.ops
                    .failed_step(&run.execution_arn)
                    .await
                    .ok()
                    .flatten()
            };
            let pause = snapshot
                .as_ref()
                .and_then(|s| s.get("execution"))
                .and_then(Value::as_str);
            let pause_started = match pause {
                Some(arn) => self
                    .ops
                    .run_detail(arn)
                    .await
                    .ok()
                    .and_then(|d| d.started_ms),
                None => None,
            };
            nights.push(night(
                &environment,
                &run,
                output.as_ref(),
                snapshot.as_ref(),
                configuration.as_ref(),
                failed.as_ref(),
                pause_started,
            ));
        }
        let stack = stack_of(&settings.resume_state_machine_arn);
        let (subject, body) = render::digest(&date, stack, &nights, &settings.prices);
        // Two resumes ending at once both get here: the one whose marker lands first sends.
        // The claim names this invocation, so a retried write that had landed is still its.
        let claim = json!({"subject": subject, "claimed_by": ended.execution_arn,
            "claimed_at_ns": now_ns()});
        let marker = marker_key(&date);
        let claimed = with_retries(deadline, || self.ops.claim_digest(&date, &claim)).await?
            || with_retries(deadline, || self.ops.record(&marker)).await? == Some(claim.clone());
        if !claimed {
            return Ok(Some(json!({"digest": "sent already", "date": date})));
        }
        let sent = with_retries(deadline, || {
            self.ops
                .publish_digest(&settings.topic_arn, &subject, &body)
        })
        .await;
        if let Err(err) = sent {
            // Give the claim back, so Lambda's retry of this invocation sends it.
            if let Err(release) = self.ops.release_digest(&date).await {
                tracing::error!(error = %release, "the digest was not sent and its marker stays: no digest this morning");
            }
            return Err(err);
        }
        for n in &nights {
            let mut values = vec![(common::metrics::HOURS_PAUSED, n.hours())];
            if let Some((_, saved)) = render::night_saving(n, &settings.prices) {
                values.push((common::metrics::ESTIMATED_SAVING, saved));
            }
            common::metrics::emit("notify", &n.environment, &values);
        }
        Ok(Some(
            json!({"digest": subject, "date": date, "environments": nights.len()}),
        ))
    }
}
