//! trigger-dag: S3 arrivals and schedule firings start MWAA DAG runs, exactly once per
//! object version or firing; while an environment is down they are held, and replayed
//! when the resume workflow asks.
//!
//! parse (event.rs) -> decide (decide.rs, routes.rs, run_id.rs) -> act (ops.rs) -> report.

pub mod decide;
pub mod event;
pub mod ops;
pub mod routes;
pub mod run_id;

use serde_json::{json, Value};

use common::airflow::{start_dag_run, DagRunOutcome};
use common::event::event_id;
use common::retry::with_retries;
use common::Deadline;
use common::Error;

use decide::{arrival_targets, decide, schedule_target, Action, EnvironmentState, Target};
use event::{parse_input, Input};
use ops::Ops;
use routes::Route;

/// The function's state for its lifetime: clients and routes, built once per cold start.
pub struct TriggerDag<O> {
    pub ops: O,
    pub routes: Vec<Route>,
}

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
                let targets = arrival_targets(&arrival, &self.routes);
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

    /// Starts the target's run, or holds it while its environment cannot run it.
    async fn deliver(&self, target: &Target, deadline: Deadline) -> Result<Outcome, Error> {
        let state = with_retries(deadline, || self.ops.environment(&target.environment)).await?;
        let major = match decide(&state) {
            Action::Start(major) => major,
            Action::Hold { reason } => return self.hold(target, &reason, deadline).await,
        };
        let run = target.dag_run();
        match with_retries(deadline, || {
            start_dag_run(&self.ops, &target.environment, major, &run)
        })
        .await
        {
            Ok(outcome) => {
                let outcome = match outcome {
                    DagRunOutcome::Started => Outcome::Started,
                    DagRunOutcome::AlreadyExists => Outcome::AlreadyStarted,
                };
                tracing::info!(environment = %target.environment, dag_id = %target.dag_id,
                    run_id = %target.run_id, event_id = %target.event_id, outcome = outcome.as_str(), "DAG run");
                self.publish(
                    "DAG Run Started",
                    json!({"target": target, "outcome": outcome.as_str()}),
                )
                .await;
                Ok(outcome)
            }
            // Deleted between GetEnvironment and the call (a pause began): hold it.
            Err(Error::EnvironmentNotFound(_)) => {
                self.hold(target, "environment disappeared", deadline).await
            }
            Err(err) => Err(err),
        }
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

    /// Starts every run held for `environment`, which must be AVAILABLE. Runs that can
    /// never start (unknown DAG) are set aside under `failed/` and reported, not retried.
    async fn replay(&self, environment: &str, deadline: Deadline) -> Result<Value, Error> {
        let state = with_retries(deadline, || self.ops.environment(environment)).await?;
        let EnvironmentState::Available(major) = state else {
            return Err(Error::InvalidRequest {
                environment: environment.to_owned(),
                reason: format!("cannot replay held arrivals: environment is {state:?}"),
            });
        };
        let held = with_retries(deadline, || self.ops.held(environment)).await?;
        let (mut started, mut already, mut set_aside) = (0, 0, 0);
        for target in &held {
            let run = target.dag_run();
            match with_retries(deadline, || {
                start_dag_run(&self.ops, environment, major, &run)
            })
            .await
            {
                Ok(DagRunOutcome::Started) => started += 1,
                Ok(DagRunOutcome::AlreadyExists) => already += 1,
                Err(err) if !err.is_retryable() => {
                    let reason = err.to_string();
                    with_retries(deadline, || self.ops.set_aside(target, &reason)).await?;
                    self.report_failure(target, &err).await;
                    set_aside += 1;
                    continue;
                }
                Err(err) => return Err(err),
            }
            with_retries(deadline, || self.ops.release(target)).await?;
        }
        tracing::info!(
            environment,
            started,
            already,
            set_aside,
            "held arrivals replayed"
        );
        Ok(
            json!({"environment": environment, "replayed": started, "already_started": already,
                  "set_aside": set_aside}),
        )
    }

    async fn report_failure(&self, target: &Target, err: &Error) {
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
mod tests {
    use super::*;
    use common::airflow::{AirflowMajor, AirflowRest, RestRequest, RestResponse};
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Mutex;

    /// Environments, Airflow and the held store in memory; Airflow remembers run ids.
    #[derive(Default)]
    struct Fake {
        environments: Mutex<HashMap<String, EnvironmentState>>,
        runs: Mutex<HashSet<(String, String)>>,
        unknown_dags: HashSet<String>,
        held: Mutex<BTreeMap<String, Target>>,
        set_aside: Mutex<Vec<String>>,
        published: Mutex<Vec<String>>,
        publish_fails: bool,
    }

    impl AirflowRest for Fake {
        async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
            let body = request.body.clone().unwrap();
            let dag = request.path.split('/').nth(2).unwrap().to_owned();
            if self.unknown_dags.contains(&dag) {
                return Ok(RestResponse {
                    status: 404,
                    body: json!({"title": "DAG not found"}),
                });
            }
            let new = self
                .runs
                .lock()
                .unwrap()
                .insert((dag, body["dag_run_id"].as_str().unwrap().into()));
            Ok(RestResponse {
                status: if new { 200 } else { 409 },
                body: json!({}),
            })
        }
    }

    impl Ops for Fake {
        async fn environment(&self, name: &str) -> Result<EnvironmentState, Error> {
            Ok(self
                .environments
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .unwrap_or(EnvironmentState::Missing))
        }
        async fn hold(&self, t: &Target) -> Result<(), Error> {
            self.held
                .lock()
                .unwrap()
                .insert(ops::held_key(t), t.clone());
            Ok(())
        }
        async fn held(&self, env: &str) -> Result<Vec<Target>, Error> {
            Ok(self
                .held
                .lock()
                .unwrap()
                .values()
                .filter(|t| t.environment == env)
                .cloned()
                .collect())
        }
        async fn release(&self, t: &Target) -> Result<(), Error> {
            self.held.lock().unwrap().remove(&ops::held_key(t));
            Ok(())
        }
        async fn set_aside(&self, t: &Target, reason: &str) -> Result<(), Error> {
            self.set_aside
                .lock()
                .unwrap()
                .push(format!("{}: {reason}", t.dag_id));
            self.release(t).await
        }
        async fn publish(&self, detail_type: &str, _detail: Value) -> Result<(), Error> {
            if self.publish_fails {
                return Err(Error::Config("bus down".into()));
            }
            self.published.lock().unwrap().push(detail_type.to_owned());
            Ok(())
        }
    }

    fn function(fake: Fake) -> TriggerDag<Fake> {
        let routes = routes::parse_routes(
            r#"[{"bucket":"landing","prefix":"in/","environment":"dev-a","dag":"ingest"},
                {"bucket":"landing","prefix":"in/","environment":"dev-b","dag":"gone"}]"#,
        )
        .unwrap();
        TriggerDag { ops: fake, routes }
    }

    fn arrival(key: &str) -> Value {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/s3-object-created.json")).unwrap();
        event["detail"]["bucket"]["name"] = json!("landing");
        event["detail"]["object"]["key"] = json!(key);
        event
    }

    const BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

    fn available(envs: &[&str]) -> Fake {
        let fake = Fake::default();
        for env in envs {
            fake.environments
                .lock()
                .unwrap()
                .insert((*env).into(), EnvironmentState::Available(AirflowMajor::V2));
        }
        fake
    }

    #[tokio::test]
    async fn redeliveries_start_one_run_per_route() {
        let f = function(available(&["dev-a", "dev-b"]));
        let first = f
            .handle(arrival("in/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        let again = f
            .handle(arrival("in/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        assert_eq!(first["runs"][0]["outcome"], "started");
        assert_eq!(first["runs"][1]["outcome"], "started");
        assert_eq!(again["runs"][0]["outcome"], "already_started");
        assert_eq!(f.ops.runs.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn one_failing_route_does_not_stop_the_others_but_fails_the_invocation() {
        let mut fake = available(&["dev-a", "dev-b"]);
        fake.unknown_dags.insert("gone".into());
        let f = function(fake);
        let err = f
            .handle(arrival("in/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        assert_eq!(
            f.ops.runs.lock().unwrap().len(),
            1,
            "dev-a's run started anyway"
        );
        assert!(f
            .ops
            .published
            .lock()
            .unwrap()
            .contains(&"Arrival Failed".to_string()));
    }

    #[tokio::test]
    async fn held_while_away_then_replayed_once_and_dead_dags_set_aside() {
        let f = function(Fake::default());
        f.handle(arrival("in/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        f.handle(arrival("in/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        assert_eq!(
            f.ops.held.lock().unwrap().len(),
            2,
            "one record per environment and run"
        );
        assert!(
            f.handle(
                json!({"replay": {"environment": "dev-a"}}),
                common::Deadline::after(BUDGET)
            )
            .await
            .is_err(),
            "not available yet"
        );

        f.ops.environments.lock().unwrap().insert(
            "dev-a".into(),
            EnvironmentState::Available(AirflowMajor::V3),
        );
        let report = f
            .handle(
                json!({"replay": {"environment": "dev-a"}}),
                common::Deadline::after(BUDGET),
            )
            .await
            .unwrap();
        assert_eq!(report["replayed"], 1);
        assert_eq!(
            f.ops.held.lock().unwrap().len(),
            1,
            "dev-b's arrival stays held"
        );

        let mut fake = Fake {
            unknown_dags: ["gone".to_string()].into(),
            ..Fake::default()
        };
        fake.held = Mutex::new(std::mem::take(&mut *f.ops.held.lock().unwrap()));
        fake.environments.lock().unwrap().insert(
            "dev-b".into(),
            EnvironmentState::Available(AirflowMajor::V2),
        );
        let f = function(fake);
        let report = f
            .handle(
                json!({"replay": {"environment": "dev-b"}}),
                common::Deadline::after(BUDGET),
            )
            .await
            .unwrap();
        assert_eq!(report["set_aside"], 1);
        assert!(f.ops.held.lock().unwrap().is_empty());
        assert!(f.ops.set_aside.lock().unwrap()[0].contains("404"));
    }

    #[tokio::test]
    async fn a_bus_that_is_down_does_not_fail_a_started_run() {
        let mut fake = available(&["dev-a", "dev-b"]);
        fake.publish_fails = true;
        let f = function(fake);
        assert!(f
            .handle(arrival("in/b.csv"), common::Deadline::after(BUDGET))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn arrivals_without_a_route_are_ignored() {
        let f = function(available(&["dev-a"]));
        let report = f
            .handle(arrival("elsewhere/a.csv"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        assert_eq!(report["runs"], json!([]));
        assert!(f.ops.runs.lock().unwrap().is_empty());
    }
}
