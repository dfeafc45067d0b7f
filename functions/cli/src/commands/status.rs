//! `mwaa-ops status`: every environment of the suite with its last and next pause and
//! resume, what is held for it and the overrides in force.

use std::collections::BTreeSet;

use jiff::Timestamp;
use pause_resume::layout::{override_key, SKIP_NEXT_PAUSE, STAY_UP_UNTIL};
use serde_json::{json, Value};

use super::Context;
use crate::ops::{Execution, RECENT_EXECUTIONS};
use crate::render::{local, or_dash, table};
use crate::schedule::next_firing;
use crate::Report;
use common::Error;

fn json_of(execution: Option<&Execution>) -> Value {
    execution.map_or(Value::Null, |e| json!(e))
}

impl Context<'_> {
    /// The stay-up end kept for `environment`, if it is still ahead.
    async fn staying_up(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, Error> {
        let key = override_key(environment, STAY_UP_UNTIL);
        let until = self.aws.read(&self.suite.bucket, &key).await?;
        Ok(until
            .and_then(|t| t.trim().parse::<Timestamp>().ok())
            .filter(|t| *t > now))
    }

    pub async fn status(&self) -> Result<Report, Error> {
        let now = Timestamp::now();
        let snapshots: BTreeSet<String> = self
            .aws
            .folders(&self.suite.bucket, "snapshots/")
            .await?
            .into_iter()
            .collect();
        let mut names: BTreeSet<String> = self
            .aws
            .environments(&self.suite.prefix)
            .await?
            .into_iter()
            .collect();
        names.extend(self.suite.scheduled.iter().cloned());
        names.extend(
            snapshots
                .iter()
                .filter(|s| s.starts_with(&self.suite.prefix))
                .cloned(),
        );
        let pauses = self
            .aws
            .recent(&self.suite.pause_arn, RECENT_EXECUTIONS, false)
            .await?;
        let resumes = self
            .aws
            .recent(&self.suite.resume_arn, RECENT_EXECUTIONS, false)
            .await?;
        let firing =
            |at: &Option<String>| at.as_deref().and_then(|e| next_firing(e, &self.zone, now));
        let (next_pause, next_resume) =
            (firing(&self.suite.pause_at), firing(&self.suite.resume_at));
        let (mut rows, mut notes, mut items) = (vec![], vec![], vec![]);
        for name in &names {
            let status = self.aws.status(name).await?;
            let state = if status == "NOT_FOUND" && snapshots.contains(name) {
                "PAUSED".to_string()
            } else {
                status
            };
            let last = |list: &[Execution]| {
                list.iter()
                    .find(|e| e.environment.as_deref() == Some(name))
                    .cloned()
            };
            let (pause, resume) = (last(&pauses), last(&resumes));
            let held = self.aws.held(&self.suite.bucket, name).await?.len();
            let skip = self
                .aws
                .read(&self.suite.bucket, &override_key(name, SKIP_NEXT_PAUSE))
                .await?
                .is_some();
            let stay_up = self.staying_up(name, now).await?;
            let scheduled = self.suite.scheduled.contains(name);
            let next = |at: &Option<jiff::Zoned>| {
                at.as_ref()
                    .filter(|_| scheduled)
                    .map(|z| local(z.timestamp(), &self.zone))
            };
            let mut overrides = vec![];
            if skip {
                overrides.push("skip next pause".to_string());
            }
            if let Some(until) = stay_up {
                overrides.push(format!("up until {}", local(until, &self.zone)));
            }
            let shown = |e: &Option<Execution>| {
                e.as_ref()
                    .map(|e| format!("{} {}", e.result, local(e.started, &self.zone)))
            };
            for (what, e) in [("pause", &pause), ("resume", &resume)] {
                if let Some(reason) = e.as_ref().and_then(|e| e.reason.clone()) {
                    notes.push(format!(
                        "{name}: last {what} {}: {reason}",
                        e.as_ref().map_or("", |e| &e.result)
                    ));
                }
            }
            rows.push(vec![
                name.clone(),
                state.clone(),
                or_dash(shown(&pause)),
                or_dash(shown(&resume)),
                or_dash(next(&next_pause)),
                or_dash(next(&next_resume)),
                held.to_string(),
                or_dash(Some(overrides.join(", "))),
            ]);
            items.push(json!({
                "environment": name, "state": state, "scheduled": scheduled,
                "last_pause": json_of(pause.as_ref()), "last_resume": json_of(resume.as_ref()),
                "next_pause": next(&next_pause).and(next_pause.as_ref().map(|z| z.to_string())),
                "next_resume": next(&next_resume).and(next_resume.as_ref().map(|z| z.to_string())),
                "held": held, "skip_next_pause": skip, "stay_up_until": stay_up,
            }));
        }
        let mut text = format!(
            "stack {} (environments {}*, schedules in {})\n",
            self.suite.stack, self.suite.prefix, self.suite.time_zone
        );
        text.push_str(&table(
            &[
                "ENVIRONMENT",
                "STATE",
                "LAST PAUSE",
                "LAST RESUME",
                "NEXT PAUSE",
                "NEXT RESUME",
                "HELD",
                "OVERRIDES",
            ],
            &rows,
        ));
        for note in notes {
            text.push_str(&format!("{note}\n"));
        }
        let json = json!({"stack": self.suite.stack, "time_zone": self.suite.time_zone,
            "pause_at": self.suite.pause_at, "resume_at": self.suite.resume_at, "environments": items});
        Ok(Report { json, text })
    }
}
