//! The digest's one pass: is it due (marker, resumes still running), what each
//! environment's night was, then one email and the marker.

use std::time::{SystemTime, UNIX_EPOCH};

use common::retry::with_retries;
use common::{Deadline, Error};
use serde_json::{json, Value};

use super::ops::DigestOps;
use super::{
    latest_per_environment, morning, night, render, utc_date, Morning, ResumeRun, LOOKBACK_MS,
};
use crate::event::ExecutionEnded;
use crate::ops::Ops;
use crate::Notify;

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
                failed.as_ref(),
                pause_started,
            ));
        }
        let stack = stack_of(&settings.resume_state_machine_arn);
        let (subject, body) = render::digest(&date, stack, &nights, &settings.prices);
        with_retries(deadline, || {
            self.ops
                .publish_digest(&settings.topic_arn, &subject, &body)
        })
        .await?;
        for n in &nights {
            let mut values = vec![(common::metrics::HOURS_PAUSED, n.hours())];
            if let Some((_, saved)) = render::night_saving(n, &settings.prices) {
                values.push((common::metrics::ESTIMATED_SAVING, saved));
            }
            common::metrics::emit("notify", &n.environment, &values);
        }
        if let Err(err) = self.ops.mark_digest(&date, &subject).await {
            tracing::warn!(error = %err, "sent, but could not remember it: a second trigger may send again");
        }
        Ok(Some(
            json!({"digest": subject, "date": date, "environments": nights.len()}),
        ))
    }
}
