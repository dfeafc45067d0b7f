//! trigger-dag: S3 arrivals and schedule firings start MWAA DAG runs, exactly once per
//! object version or firing; while an environment is down they are held, and replayed
//! when the resume workflow asks.
//!
//! parse (event.rs) -> decide (decide.rs, routes.rs, run_id.rs) -> act (ops.rs) -> report.

pub mod catalog;
pub mod decide;
pub mod environments;
pub mod event;
pub mod ops;
pub mod replay;
pub mod route_files;
pub mod routes;
pub mod run_id;
pub mod workflows;

use serde_json::{json, Value};

use common::airflow::{start_dag_run, AirflowMajor, DagRunOutcome};
use common::event::event_id;
use common::metrics;
use common::retry::with_retries;
use common::{Availability, Deadline, Error};

use catalog::RouteCatalog;
use decide::{arrival_targets, decide, scheduled_run, Action, ScheduledRun, Target};
use environments::{Check, KnownEnvironments};
use event::{parse_input, Input};
use ops::Ops;
use workflows::{arrival_workflow_runs, WorkflowRun, WORKFLOW_RUN_STARTED};

/// The function's state for its lifetime: clients and routes, built once per cold start
/// (the routes files are re-read when they change, see catalog.rs), and the environments
/// known to be AVAILABLE (environments.rs).
pub struct TriggerDag<O> {
    pub ops: O,
    pub routes: RouteCatalog,
    pub environments: KnownEnvironments,
    /// How much one replay invocation does ([`replay::ReplayLimits::default`] in Lambda).
    pub replay: replay::ReplayLimits,
}

/// What an instance found when it looked at an environment: MWAA's answer, and whether a
/// pause has marked it (asked only of an AVAILABLE one).
pub(crate) struct Seen {
    availability: Availability,
    pausing: bool,
}

impl Seen {
    /// Start or hold: a marked environment holds like an absent one, because a run started
    /// now could begin after the export's snapshot and vanish with the environment.
    fn action(&self) -> Action {
        match decide(&self.availability) {
            Action::Start(_) if self.pausing => Action::Hold {
                reason: PAUSE_UNDER_WAY.into(),
            },
            action => action,
        }
    }

    /// The status to name in an error: MWAA's, or `PAUSING` for a marked environment.
    fn status(&self) -> String {
        if self.pausing {
            "PAUSING".into()
        } else {
            self.availability.status().as_str().to_owned()
        }
    }
}

/// Why an arrival for a marked environment is held.
const PAUSE_UNDER_WAY: &str = "a pause of the environment is under way";

/// detail-type of the event that reports a routes file (or route) not used.
pub const ROUTES_REJECTED: &str = "Routes Rejected";

/// What happened to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    AlreadyStarted,
    Held,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::AlreadyStarted => "already_started",
            Outcome::Held => "held",
        }
    }
}

impl<O: Ops> TriggerDag<O> {
    /// Handles one event. `deadline` ends the retries of transient failures.
    /// A target that fails for good is reported as "Arrival Failed" and fails the
    /// invocation, so Lambda retries it and finally sends it to the failed-events queue.
    pub async fn handle(&self, event: Value, deadline: Deadline) -> Result<Value, Error> {
        metrics::within("trigger-dag", self.handle_event(event, deadline)).await
    }

    async fn handle_event(&self, event: Value, deadline: Deadline) -> Result<Value, Error> {
        let input = parse_input(&event)?;
        let arrival = matches!(input, Input::Arrival(_));
        let (targets, workflow_runs) = match input {
            Input::Arrival(arrival) => {
                let routes = self.load_routes(deadline).await?;
                let targets = arrival_targets(&arrival, &routes);
                let workflow_runs = arrival_workflow_runs(&arrival, &routes);
                if targets.is_empty() && workflow_runs.is_empty() {
                    tracing::info!(event_id = %arrival.event_id, bucket = %arrival.bucket, key = %arrival.key,
                        "no route matches this arrival; ignored");
                }
                (targets, workflow_runs)
            }
            Input::Schedule(firing) => match scheduled_run(&event_id(&event), &firing) {
                ScheduledRun::Dag(target) => (vec![target], vec![]),
                ScheduledRun::Workflow(run) => (vec![], vec![run]),
            },
            Input::Replay(replay) => return self.replay(&replay.environment, deadline).await,
        };
        let mut report = vec![];
        let mut first_error = None;
        let mut outcomes = vec![];
        for target in &targets {
            let delivered = self.deliver(target, deadline).await;
            outcomes.push((
                target.environment.as_str(),
                delivered.as_ref().ok().copied(),
            ));
            match delivered {
                Ok(outcome) => report.push(
                    json!({"environment": target.environment, "dag_id": target.dag_id,
                    "run_id": target.run_id, "outcome": outcome.as_str()}),
                ),
                Err(err) => {
                    self.report_failure(target, &err).await;
                    first_error.get_or_insert(err);
                }
            }
        }
        for run in &workflow_runs {
            match self.start_workflow(run, deadline).await {
                // MWAA Serverless answers a repeated token with the same run: it cannot tell
                // a first start from a redelivery, so neither can we.
                Ok(run_id) => {
                    metrics::emit(
                        "trigger-dag",
                        workflow_dimension(&run.workflow_arn),
                        &[(metrics::WORKFLOW_RUNS_STARTED, 1.0)],
                    );
                    report.push(json!({"workflow_arn": run.workflow_arn,
                    "run_id": run_id, "client_token": run.client_token, "outcome": "started"}));
                }
                Err(err) => {
                    self.report_workflow_failure(run, &err).await;
                    first_error.get_or_insert(err);
                }
            }
        }
        emit_metrics(&outcomes, arrival);
        match first_error {
            Some(err) => Err(err),
            None => Ok(json!({"event_id": event_id(&event), "runs": report})),
        }
    }

    /// The routes to match arrivals against; files found broken are reported (logged and
    /// put on the bus as "Routes Rejected", which notify emails).
    pub async fn load_routes(
        &self,
        deadline: Deadline,
    ) -> Result<std::sync::Arc<Vec<routes::Route>>, Error> {
        let current = self.routes.current(&self.ops, deadline).await?;
        let bucket = self
            .routes
            .settings()
            .map(|s| s.bucket.as_str())
            .unwrap_or_default();
        for rejection in &current.rejected {
            tracing::error!(file = %rejection.key, kept_routes = ?rejection.kept,
                problems = %rejection.summary(), "routes file rejected");
            self.publish(ROUTES_REJECTED, rejection.detail(bucket))
                .await;
        }
        Ok(current.routes)
    }

    /// Starts the target's run, or holds it while its environment cannot run it.
    async fn deliver(&self, target: &Target, deadline: Deadline) -> Result<Outcome, Error> {
        let environment = target.environment.as_str();
        let (major, remembered) = match self.environments.check(environment) {
            Check::Start(major) => (major, true),
            Check::ListMark(major) => {
                if self.marked(environment, deadline).await? {
                    return self.hold(target, PAUSE_UNDER_WAY, deadline).await;
                }
                (major, true)
            }
            Check::Read => match self.look_at(environment, deadline).await?.action() {
                Action::Start(major) => (major, false),
                Action::Hold { reason } => return self.hold(target, &reason, deadline).await,
            },
        };
        match self.start(target, major, deadline).await {
            Ok(outcome) => Ok(outcome),
            // Deleted since it was looked at (a pause began): hold it.
            Err(Error::EnvironmentNotFound(_)) => {
                self.environments.forget(environment);
                self.hold(target, "environment disappeared", deadline).await
            }
            // Started on what this instance remembered: the environment may have changed
            // since (a pause, an update, an upgrade to another major), so look again before
            // failing the arrival.
            Err(err) if remembered => {
                self.environments.forget(environment);
                match self.look_at(environment, deadline).await?.action() {
                    Action::Hold { reason } => self.hold(target, &reason, deadline).await,
                    Action::Start(now) if now != major => self.start(target, now, deadline).await,
                    Action::Start(_) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Starts the target's run with the body of `major`. A start Airflow answered (started,
    /// or already there) shows the environment still up with that major (environments.rs).
    async fn start(
        &self,
        target: &Target,
        major: AirflowMajor,
        deadline: Deadline,
    ) -> Result<Outcome, Error> {
        let environment = target.environment.as_str();
        let run = target.dag_run();
        let asked_at = self.environments.now();
        let outcome = with_retries(deadline, || {
            start_dag_run(&self.ops, environment, major, &run)
        })
        .await?;
        self.environments.answered(environment, major, asked_at);
        let outcome = match outcome {
            DagRunOutcome::Started => Outcome::Started,
            DagRunOutcome::AlreadyExists => Outcome::AlreadyStarted,
        };
        tracing::info!(environment, dag_id = %target.dag_id,
            run_id = %target.run_id, event_id = %target.event_id, outcome = outcome.as_str(), "DAG run");
        self.publish(
            "DAG Run Started",
            json!({"target": target, "outcome": outcome.as_str()}),
        )
        .await;
        Ok(outcome)
    }

    /// Asks MWAA whether the environment runs DAGs now and, if it does, whether a pause has
    /// marked it. Only an AVAILABLE environment without the mark is remembered
    /// (environments.rs), so a marked environment costs a GetEnvironment and one S3 listing
    /// per arrival.
    pub(crate) async fn look_at(
        &self,
        environment: &str,
        deadline: Deadline,
    ) -> Result<Seen, Error> {
        let asked_at = self.environments.now();
        let availability = with_retries(deadline, || self.ops.environment(environment)).await?;
        let listed_at = self.environments.now();
        let pausing = matches!(availability, Availability::Available(_))
            && self.marked(environment, deadline).await?;
        if !pausing {
            self.environments
                .learn(environment, &availability, asked_at, listed_at);
        }
        Ok(Seen {
            availability,
            pausing,
        })
    }

    /// Whether a pause has marked the environment (`pausing/<environment>`, set before the
    /// export: a run started after the export's snapshot would be lost with the
    /// environment). Listed at least once per trust period by each warm instance, which is
    /// what the pause waits for after writing it.
    async fn marked(&self, environment: &str, deadline: Deadline) -> Result<bool, Error> {
        let listed_at = self.environments.now();
        let marked = with_retries(deadline, || self.ops.pausing(environment)).await?;
        if marked {
            self.environments.forget(environment);
        } else {
            self.environments.unmarked(environment, listed_at);
        }
        Ok(marked)
    }

    async fn hold(
        &self,
        target: &Target,
        reason: &str,
        deadline: Deadline,
    ) -> Result<Outcome, Error> {
        with_retries(deadline, || self.ops.hold(target)).await?;
        tracing::info!(environment = %target.environment, dag_id = %target.dag_id,
            run_id = %target.run_id, event_id = %target.event_id, reason, "arrival held");
        self.publish("Arrival Held", json!({"target": target, "reason": reason}))
            .await;
        Ok(Outcome::Held)
    }

    pub(crate) async fn report_failure(&self, target: &Target, err: &Error) {
        tracing::error!(environment = %target.environment, dag_id = %target.dag_id,
            run_id = %target.run_id, event_id = %target.event_id, error = %err, "arrival failed");
        self.publish(
            "Arrival Failed",
            json!({"target": target, "error": err.to_string(),
            "retryable": err.is_retryable()}),
        )
        .await;
    }

    /// Suite events are for users to build on; failing to send one must not fail a run.
    async fn publish(&self, detail_type: &str, detail: Value) {
        if let Err(err) = self.ops.publish(detail_type, detail).await {
            tracing::warn!(detail_type, error = %err, "could not publish the suite event");
        }
    }
}

impl<O: Ops> TriggerDag<O> {
    /// Starts the workflow run, retrying throttling and server errors until `deadline`;
    /// returns MWAA Serverless's run id (the same one for every delivery of the arrival).
    pub(crate) async fn start_workflow(
        &self,
        run: &WorkflowRun,
        deadline: Deadline,
    ) -> Result<String, Error> {
        let run_id = with_retries(deadline, || self.ops.start_workflow_run(run)).await?;
        tracing::info!(workflow_arn = %run.workflow_arn, route = %run.route, run_id = %run_id,
            event_id = %run.event_id, "workflow run started");
        self.publish(
            WORKFLOW_RUN_STARTED,
            json!({"target": run, "run_id": run_id}),
        )
        .await;
        Ok(run_id)
    }

    pub(crate) async fn report_workflow_failure(&self, run: &WorkflowRun, err: &Error) {
        tracing::error!(workflow_arn = %run.workflow_arn, route = %run.route,
            event_id = %run.event_id, error = %err, "arrival failed");
        self.publish(
            "Arrival Failed",
            json!({"target": run, "error": err.to_string(), "retryable": err.is_retryable()}),
        )
        .await;
    }
}

/// The metrics of one event's targets (`None`: failed), per environment.
fn run_metrics(
    outcomes: &[(&str, Option<Outcome>)],
    arrival: bool,
) -> Vec<(String, Vec<(metrics::Metric, f64)>)> {
    let mut environments: Vec<&str> = outcomes.iter().map(|(e, _)| *e).collect();
    environments.sort();
    environments.dedup();
    environments
        .into_iter()
        .map(|environment| {
            let count = |wanted: Option<Option<Outcome>>| {
                outcomes
                    .iter()
                    .filter(|(e, o)| *e == environment && wanted.is_none_or(|w| *o == w))
                    .count() as f64
            };
            let mut values = vec![
                (metrics::RUNS_STARTED, count(Some(Some(Outcome::Started)))),
                (
                    metrics::RUNS_ALREADY_STARTED,
                    count(Some(Some(Outcome::AlreadyStarted))),
                ),
                (metrics::ARRIVALS_HELD, count(Some(Some(Outcome::Held)))),
                (metrics::RUNS_FAILED, count(Some(None))),
            ];
            if arrival {
                values.push((metrics::ARRIVALS_ROUTED, count(None)));
            }
            (environment.to_string(), values)
        })
        .collect()
}

/// A workflow has no environment: the last part of its ARN (its name and id; as few as
/// environments) is the `Environment` dimension of what is counted for it.
fn workflow_dimension(workflow_arn: &str) -> &str {
    workflow_arn
        .rsplit_once(":workflow/")
        .map_or(workflow_arn, |(_, name)| name)
}

fn emit_metrics(outcomes: &[(&str, Option<Outcome>)], arrival: bool) {
    for (environment, values) in run_metrics(outcomes, arrival) {
        metrics::emit("trigger-dag", &environment, &values);
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn a_started_workflow_run_is_counted_per_workflow() {
        assert_eq!(
            workflow_dimension(
                "arn:aws:airflow-serverless:eu-west-1:123456789012:workflow/dev-orders-a1B2c3D4e5"
            ),
            "dev-orders-a1B2c3D4e5"
        );
    }

    #[test]
    fn each_environment_gets_its_own_counts_and_only_arrivals_count_as_routed() {
        let outcomes = [
            ("dev", Some(Outcome::Started)),
            ("dev", Some(Outcome::Held)),
            ("dev", None),
            ("prod", Some(Outcome::AlreadyStarted)),
        ];
        let by_env = run_metrics(&outcomes, true);
        let dev = &by_env[0];
        assert_eq!(dev.0, "dev");
        let value = |name: &str| dev.1.iter().find(|(m, _)| m.name == name).map(|(_, v)| *v);
        assert_eq!(
            [
                "RunsStarted",
                "RunsAlreadyStarted",
                "ArrivalsHeld",
                "RunsFailed",
                "ArrivalsRouted"
            ]
            .map(value),
            [Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(3.0)]
        );
        assert_eq!(by_env[1].0, "prod");
        let schedule = run_metrics(&outcomes[..1], false);
        assert!(
            schedule[0]
                .1
                .iter()
                .all(|(m, _)| m.name != "ArrivalsRouted"),
            "a firing is no arrival"
        );
    }
}

#[cfg(test)]
mod tests;
