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

use serde_json::{json, Value};

use common::airflow::{start_dag_run, DagRunOutcome};
use common::event::event_id;
use common::retry::with_retries;
use common::{Availability, Deadline, Error};

use catalog::RouteCatalog;
use decide::{arrival_targets, decide, schedule_target, Action, Target};
use environments::KnownEnvironments;
use event::{parse_input, Input};
use ops::Ops;

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
        let targets = match parse_input(&event)? {
            Input::Arrival(arrival) => {
                let routes = self.load_routes(deadline).await?;
                let targets = arrival_targets(&arrival, &routes);
                if targets.is_empty() {
                    tracing::info!(event_id = %arrival.event_id, bucket = %arrival.bucket, key = %arrival.key,
                        "no route matches this arrival; ignored");
                }
                targets
            }
            Input::Schedule(firing) => vec![schedule_target(&event_id(&event), &firing)?],
            Input::Replay(replay) => return self.replay(&replay.environment, deadline).await,
        };
        let mut report = vec![];
        let mut first_error = None;
        for target in &targets {
            match self.deliver(target, deadline).await {
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
        let known = self.environments.available(environment);
        let major = match known {
            Some(major) => major,
            None => match decide(&self.look_at(environment, deadline).await?) {
                Action::Start(major) => major,
                Action::Hold { reason } => return self.hold(target, &reason, deadline).await,
            },
        };
        let run = target.dag_run();
        match with_retries(deadline, || {
            start_dag_run(&self.ops, environment, major, &run)
        })
        .await
        {
            Ok(outcome) => {
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
            // Deleted since it was looked at (a pause began): hold it.
            Err(Error::EnvironmentNotFound(_)) => {
                self.environments.forget(environment);
                self.hold(target, "environment disappeared", deadline).await
            }
            // Started on what this instance remembered: the environment may have changed
            // since (a pause, an update), so look again before failing the arrival.
            Err(err) if known.is_some() => {
                self.environments.forget(environment);
                match decide(&self.look_at(environment, deadline).await?) {
                    Action::Hold { reason } => self.hold(target, &reason, deadline).await,
                    Action::Start(_) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Asks MWAA whether the environment runs DAGs now, and remembers an AVAILABLE answer.
    pub(crate) async fn look_at(
        &self,
        environment: &str,
        deadline: Deadline,
    ) -> Result<Availability, Error> {
        let availability = with_retries(deadline, || self.ops.environment(environment)).await?;
        self.environments.learn(environment, &availability);
        Ok(availability)
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

#[cfg(test)]
mod tests;
