//! The steps, one module each, and the one registry of them: [`Step`] names every step and
//! runs it. The Lambda binaries (`src/bin/`) and the bed's step-worker both serve steps
//! from here, so a new step is added in this file (plus its binary and Cargo `[[bin]]`).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use common::aws::LONGEST_MWAA_CALL;
use common::metrics::{self, Metric};
use common::runtime::{Invocation, MARGIN};
use common::Error;

use crate::Clients;

pub mod create_environment;
pub mod delete_environment;
pub mod enable_dags;
pub mod environment_status;
pub mod proof;
pub mod run_dag;
pub mod save_configuration;
pub mod stale_pause;
pub mod verify_export;

/// What a step reports: how long it took and whether it failed; environment-status whether
/// the environment is up; verify-export the verified export's rows and bytes.
pub fn step_metrics(
    step: Step,
    seconds: f64,
    outcome: &Result<Value, Error>,
) -> Vec<(Metric, f64)> {
    let mut values = vec![
        (metrics::STEP_SECONDS, seconds),
        (metrics::STEP_FAILURES, outcome.is_err() as u8 as f64),
    ];
    let Ok(out) = outcome else { return values };
    match step {
        Step::EnvironmentStatus => {
            let up = out["status"] == "AVAILABLE";
            values.push((metrics::ENVIRONMENT_AVAILABLE, up as u8 as f64));
        }
        Step::VerifyExport => {
            for (metric, key) in [
                (metrics::EXPORT_ROWS, "rows"),
                (metrics::EXPORT_BYTES, "bytes"),
            ] {
                if let Some(n) = out[key].as_u64() {
                    values.push((metric, n as f64));
                }
            }
        }
        _ => {}
    }
    values
}

#[cfg(test)]
mod tests;

/// A step of the pause and resume state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    EnvironmentStatus,
    SaveConfiguration,
    CreateEnvironment,
    DeleteEnvironment,
    RunDag,
    EnableDags,
    VerifyExport,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::EnvironmentStatus,
        Step::SaveConfiguration,
        Step::CreateEnvironment,
        Step::DeleteEnvironment,
        Step::RunDag,
        Step::EnableDags,
        Step::VerifyExport,
    ];

    /// The name of its binary and function (`infra/template.yaml`).
    pub fn name(self) -> &'static str {
        match self {
            Step::EnvironmentStatus => "environment-status",
            Step::SaveConfiguration => "save-configuration",
            Step::CreateEnvironment => "create-environment",
            Step::DeleteEnvironment => "delete-environment",
            Step::RunDag => "run-dag",
            Step::EnableDags => "enable-dags",
            Step::VerifyExport => "verify-export",
        }
    }

    /// The step of that name.
    pub fn named(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.name() == name)
    }

    /// Whether it keeps or reads things in the suite's bucket (saved configurations,
    /// snapshots, overrides): only these get `SUITE_BUCKET`.
    pub fn uses_bucket(self) -> bool {
        matches!(
            self,
            Step::EnvironmentStatus
                | Step::SaveConfiguration
                | Step::CreateEnvironment
                | Step::DeleteEnvironment
        )
    }

    /// The longest one invocation can take, which the template's `Timeout` must allow:
    /// its MWAA calls one after another, each at worst [`LONGEST_MWAA_CALL`] (run-dag and
    /// enable-dags: their REST retry budget, then the call still in flight), plus the
    /// [`MARGIN`] kept for reporting. `None`: bounded by the data, not the code (verify-export
    /// streams the whole export; it gets Lambda's maximum).
    pub fn longest(self) -> Option<Duration> {
        let calls = |n: u32| LONGEST_MWAA_CALL * n + MARGIN;
        match self {
            Step::EnvironmentStatus | Step::SaveConfiguration => Some(calls(1)),
            // GetEnvironment, the create or delete, GetEnvironment again after a refusal; a
            // resume that restores nothing: GetEnvironment, DescribeExecution of the pause
            // named by a pausing mark (S3 calls are not counted, as for every step).
            Step::CreateEnvironment | Step::DeleteEnvironment => Some(calls(3)),
            Step::RunDag | Step::EnableDags => Some(enable_dags::REST_RETRY_BUDGET + calls(1)),
            Step::VerifyExport => None,
        }
    }

    /// Runs one invocation of the step and reports its metrics.
    pub async fn run(self, clients: &Clients, invocation: Invocation) -> Result<Value, Error> {
        let started = std::time::Instant::now();
        let environment = invocation.payload["environment"].as_str().map(String::from);
        let outcome = common::metrics::within(self.name(), self.work(clients, invocation)).await;
        if let Some(environment) = environment {
            let values = step_metrics(self, started.elapsed().as_secs_f64(), &outcome);
            common::metrics::emit(self.name(), &environment, &values);
        }
        outcome
    }

    async fn work(self, clients: &Clients, invocation: Invocation) -> Result<Value, Error> {
        let Invocation {
            payload, deadline, ..
        } = invocation;
        let (mwaa, s3) = (&clients.mwaa, &clients.s3);
        match self {
            Step::EnvironmentStatus => {
                environment_status::environment_status(mwaa, s3, clients.bucket()?, payload).await
            }
            Step::SaveConfiguration => {
                let now = SystemTime::now().into();
                let allowed = &clients.may_lose_settings;
                save_configuration::save_configuration(
                    mwaa,
                    s3,
                    clients.bucket()?,
                    allowed,
                    now,
                    payload,
                )
                .await
            }
            Step::CreateEnvironment => {
                create_environment::create_environment(
                    mwaa,
                    s3,
                    clients,
                    clients.bucket()?,
                    payload,
                )
                .await
            }
            Step::DeleteEnvironment => {
                delete_environment::delete_environment(mwaa, s3, clients.bucket()?, payload).await
            }
            Step::RunDag => run_dag::run_dag(mwaa, payload, deadline).await,
            Step::EnableDags => enable_dags::enable_dags(mwaa, payload, deadline).await,
            Step::VerifyExport => verify_export::verify_export(s3, payload).await,
        }
    }
}
