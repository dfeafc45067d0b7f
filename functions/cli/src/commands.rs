//! The commands: read what the suite keeps (stack, MWAA, the suite bucket, the pause and
//! resume executions), act through the same doors the schedules use (the state machines,
//! the override markers, trigger-dag's replay), and say what happened.

use std::time::Duration;

use common::{Error, ErrorKind};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use pause_resume::layout::{override_key, snapshot_key, SKIP_NEXT_PAUSE, STAY_UP_UNTIL};
use serde_json::json;

use crate::ops::{Aws, Execution, RECENT_EXECUTIONS};
use crate::render::{local, or_dash, table};
use crate::stack::Suite;
use crate::until::parse_until;
use crate::{Report, Start};

mod status;

/// How often `--wait` and `wake` look at a running execution.
const WATCH_PERIOD: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }
}

/// An execution name Step Functions accepts (80 characters, unique per state machine):
/// who started it, what, when (UTC), for which environment.
pub fn execution_name(action: Action, environment: &str, now: Timestamp) -> String {
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut name = format!("cli-{}-{stamp}-{environment}", action.as_str());
    name.truncate(80);
    name
}

pub struct Context<'a> {
    aws: &'a Aws,
    suite: &'a Suite,
    zone: TimeZone,
}

impl<'a> Context<'a> {
    pub fn new(aws: &'a Aws, suite: &'a Suite) -> Result<Self, Error> {
        let zone = TimeZone::get(&suite.time_zone).map_err(|e| {
            Error::new(
                ErrorKind::Configuration,
                format!(
                    "stack `{}`: ScheduleTimezone {:?}: {e}",
                    suite.stack, suite.time_zone
                ),
            )
        })?;
        Ok(Context { aws, suite, zone })
    }

    fn machine(&self, action: Action) -> &str {
        match action {
            Action::Pause => &self.suite.pause_arn,
            Action::Resume => &self.suite.resume_arn,
        }
    }

    /// Refuses to start a second pause or resume of the same environment.
    async fn not_running(&self, environment: &str) -> Result<(), Error> {
        for action in [Action::Pause, Action::Resume] {
            let running = self
                .aws
                .recent(self.machine(action), RECENT_EXECUTIONS, true)
                .await?;
            if let Some(e) = running
                .iter()
                .find(|e| e.environment.as_deref() == Some(environment))
            {
                return Err(Error::new(
                    ErrorKind::EnvironmentNotAvailable,
                    format!(
                        "a {} of {environment} is running ({}): wait for it to end",
                        action.as_str(),
                        e.arn
                    ),
                ));
            }
        }
        Ok(())
    }

    pub async fn start(&self, action: Action, start: &Start) -> Result<Report, Error> {
        let env = start.environment.as_str();
        self.suite.check(env)?;
        self.not_running(env).await?;
        let status = self.aws.status(env).await?;
        match action {
            Action::Pause if status != "AVAILABLE" => {
                return Err(Error::not_available(
                    env,
                    &status,
                    "only an AVAILABLE environment can be paused",
                ));
            }
            Action::Resume => {
                let snapshot = snapshot_key(env);
                if self
                    .aws
                    .read(&self.suite.bucket, &snapshot)
                    .await?
                    .is_none()
                {
                    return Err(Error::new(
                        ErrorKind::SnapshotNotFound,
                        format!(
                            "{env} has no verified pause to resume from (s3://{}/{snapshot})",
                            self.suite.bucket
                        ),
                    ));
                }
            }
            _ => {}
        }
        let name = execution_name(action, env, Timestamp::now());
        let input = json!({"environment": env, "poll_seconds": start.poll_seconds});
        let arn = self.aws.start(self.machine(action), &name, &input).await?;
        let mut json = json!({"environment": env, "action": action.as_str(), "execution": arn});
        let mut text = format!("{} of {env} started: {arn}\n", action.as_str());
        if start.wait {
            let done = self.watch(action, env, &arn).await?;
            text = format!(
                "{} of {env}: {}{}\n",
                action.as_str(),
                done.result,
                done.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            json["result"] = json!(done.result);
            json["reason"] = json!(done.reason);
        }
        Ok(Report { json, text })
    }

    /// Waits for an execution to end; anything but success (or a skip) is an error.
    async fn watch(&self, action: Action, env: &str, arn: &str) -> Result<Execution, Error> {
        loop {
            let execution = self.aws.execution(arn).await?;
            match execution.result.as_str() {
                "RUNNING" => tokio::time::sleep(WATCH_PERIOD).await,
                "SUCCEEDED" | "SKIPPED" => return Ok(execution),
                other => {
                    return Err(Error::new(
                        ErrorKind::OperationFailed,
                        format!(
                            "{} of {env} {other}: {} ({arn})",
                            action.as_str(),
                            execution.reason.as_deref().unwrap_or("no cause given")
                        ),
                    ))
                }
            }
        }
    }

    pub async fn skip(&self, env: &str, cancel: bool) -> Result<Report, Error> {
        self.suite.check(env)?;
        let key = override_key(env, SKIP_NEXT_PAUSE);
        let text = if cancel {
            self.aws.delete(&self.suite.bucket, &key).await?;
            format!("{env}'s next pause runs as scheduled\n")
        } else {
            self.aws.write(&self.suite.bucket, &key, "").await?;
            format!("{env}'s next pause will end \"Skipped\" (`mwaa-ops skip {env} --cancel` takes it back)\n")
        };
        Ok(Report {
            json: json!({"environment": env, "skip_next_pause": !cancel}),
            text,
        })
    }

    pub async fn stay_up(
        &self,
        env: &str,
        until: Option<&str>,
        cancel: bool,
    ) -> Result<Report, Error> {
        self.suite.check(env)?;
        let key = override_key(env, STAY_UP_UNTIL);
        if cancel {
            self.aws.delete(&self.suite.bucket, &key).await?;
            let text = format!("{env} stays up no longer: the next scheduled pause runs\n");
            return Ok(Report {
                json: json!({"environment": env, "stay_up_until": null}),
                text,
            });
        }
        let text = until.ok_or_else(|| Error::invalid_input("--until is required"))?;
        let at = parse_until(text, &self.zone, Timestamp::now())?;
        self.aws
            .write(&self.suite.bucket, &key, &at.to_string())
            .await?;
        let text = format!(
            "{env} stays up until {} ({at}): every pause until then ends \"Skipped\"\n",
            local(at, &self.zone)
        );
        Ok(Report {
            json: json!({"environment": env, "stay_up_until": at}),
            text,
        })
    }

    pub async fn wake(
        &self,
        env: &str,
        until: Option<&str>,
        poll_seconds: u64,
    ) -> Result<Report, Error> {
        self.suite.check(env)?;
        let mut text = String::new();
        let mut json = json!({"environment": env});
        if let Some(until) = until {
            let stayed = self.stay_up(env, Some(until), false).await?;
            text.push_str(&stayed.text);
            json["stay_up_until"] = stayed.json["stay_up_until"].clone();
        }
        let status = self.aws.status(env).await?;
        if status == "AVAILABLE" {
            text.push_str(&format!("{env} is AVAILABLE already\n"));
            json["result"] = json!("AVAILABLE");
            return Ok(Report { json, text });
        }
        let start = Start {
            environment: env.to_string(),
            wait: true,
            poll_seconds,
        };
        let resumed = self.start(Action::Resume, &start).await?;
        text.push_str(&resumed.text);
        json["execution"] = resumed.json["execution"].clone();
        json["result"] = resumed.json["result"].clone();
        Ok(Report { json, text })
    }

    pub async fn held(&self, env: &str) -> Result<Report, Error> {
        self.suite.check(env)?;
        let held = self.aws.held(&self.suite.bucket, env).await?;
        let rows: Vec<Vec<String>> = held
            .iter()
            .map(|h| {
                vec![
                    h.dag_id.clone(),
                    h.run_id.clone(),
                    or_dash(h.held_since.map(|t| local(t, &self.zone))),
                ]
            })
            .collect();
        let text = format!(
            "{} arrival(s) held for {env}\n{}",
            held.len(),
            table(&["DAG", "RUN ID", "HELD SINCE"], &rows)
        );
        Ok(Report {
            json: json!({"environment": env, "held": held}),
            text,
        })
    }

    pub async fn replay(&self, env: &str) -> Result<Report, Error> {
        self.suite.check(env)?;
        let answer = self
            .aws
            .invoke(
                &self.suite.trigger_dag_arn,
                &json!({"replay": {"environment": env}}),
            )
            .await?;
        let count = |k: &str| answer[k].as_u64().unwrap_or(0);
        let text = format!(
            "{env}: {} held arrival(s) started, {} had started already, {} set aside under failed/\n",
            count("replayed"), count("already_started"), count("set_aside")
        );
        Ok(Report { json: answer, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_say_who_what_when_and_fit_step_functions() {
        let now: Timestamp = "2026-11-30T20:15:00Z".parse().unwrap();
        assert_eq!(
            execution_name(Action::Pause, "dev", now),
            "cli-pause-20261130T201500Z-dev"
        );
        let long = "e".repeat(80);
        let name = execution_name(Action::Resume, &long, now);
        assert_eq!(name.len(), 80);
        assert!(name.starts_with("cli-resume-20261130T201500Z-e"));
    }
}
