//! The handler with every AWS call faked: Airflow is common's `FakeAirflow`; the
//! environments, the held store and the bus are in memory here.

use super::*;
use common::airflow::{AirflowMajor, AirflowRest, RestRequest, RestResponse};
use common::testing::FakeAirflow;
use common::Availability;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What Lambda and the resume workflow see when an invocation fails.
mod errors;
/// A warm instance trusts an AVAILABLE answer for a while: one MWAA call per arrival.
mod known_environments;
/// A pause's mark holds arrivals while the environment still runs; read with a bound.
mod pausing;
/// Routes files in the suite bucket: read, re-read when changed, rejected when broken.
mod reload;
/// Routes to MWAA Serverless workflows: one run per arrival, retried, refused, never held.
mod workflows;

/// Environments, the held store and the bus in memory, around the shared Airflow fake.
#[derive(Default)]
struct Fake {
    airflow: FakeAirflow,
    environments: Mutex<HashMap<String, Availability>>,
    /// GetEnvironment is throttled on every call.
    get_environment_throttled: bool,
    /// GetEnvironment calls made.
    environment_reads: Mutex<u32>,
    held: Mutex<BTreeMap<String, Target>>,
    /// Environments a pause has marked (`pausing/<environment>` exists).
    pausing: Mutex<Vec<String>>,
    /// Reads of the pausing mark made.
    mark_reads: Mutex<u32>,
    set_aside: Mutex<Vec<String>>,
    published: Mutex<Vec<String>>,
    /// Every event put on the bus, with its detail.
    events: Mutex<Vec<(String, Value)>>,
    publish_fails: bool,
    /// Routes files in the suite bucket: key -> (ETag, content).
    route_files: Mutex<BTreeMap<String, (String, Vec<u8>)>>,
    /// S3 calls made for routes files: "list" or "get <key>".
    route_calls: Mutex<Vec<String>>,
    /// Every S3 call for routes files fails with this (retryable) error.
    route_files_down: bool,
    /// MWAA Serverless as AWS documents it: client token -> (workflow ARN, parameters, run id).
    workflow_runs: Mutex<BTreeMap<String, (String, Value, String)>>,
    /// Workflows MWAA Serverless does not know (ResourceNotFoundException).
    missing_workflows: Vec<String>,
    /// Answers StartWorkflowRun gives first, one per call, before doing anything.
    workflow_faults: Mutex<std::collections::VecDeque<Error>>,
    /// StartWorkflowRun calls made.
    workflow_calls: Mutex<u32>,
}

/// What the SDK's error becomes when MWAA Serverless refuses a call (4xx, not retried).
fn serverless_refused(code: &str) -> Error {
    Error::Aws {
        service: "MWAA Serverless",
        operation: "StartWorkflowRun",
        message: format!("{code}: refused"),
        retryable: false,
    }
}

/// What the SDK's error becomes when S3 answers 503 SlowDown.
fn s3_down(operation: &'static str) -> Error {
    Error::Aws {
        service: "S3",
        operation,
        message: "SlowDown: Please reduce your request rate.".into(),
        retryable: true,
    }
}

/// What the SDK's error becomes when MWAA throttles `operation` (see `Error::aws`).
fn throttled(operation: &'static str) -> Error {
    Error::transient("MWAA", operation, "ThrottlingException: Rate exceeded")
}

impl AirflowRest for Fake {
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
        self.airflow.invoke(request).await
    }
}

impl Ops for Fake {
    async fn environment(&self, name: &str) -> Result<Availability, Error> {
        *self.environment_reads.lock().unwrap() += 1;
        if self.get_environment_throttled {
            return Err(throttled("GetEnvironment"));
        }
        Ok(self
            .environments
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or(Availability::Missing))
    }
    async fn pausing(&self, environment: &str) -> Result<bool, Error> {
        *self.mark_reads.lock().unwrap() += 1;
        Ok(self
            .pausing
            .lock()
            .unwrap()
            .iter()
            .any(|e| e == environment))
    }
    async fn hold(&self, t: &Target) -> Result<(), Error> {
        self.held
            .lock()
            .unwrap()
            .insert(ops::held_key(t), t.clone());
        Ok(())
    }
    async fn held(&self, env: &str, limit: usize) -> Result<ops::HeldPage, Error> {
        let held: Vec<Target> = self
            .held
            .lock()
            .unwrap()
            .values()
            .filter(|t| t.environment == env)
            .cloned()
            .collect();
        Ok(ops::HeldPage {
            more: held.len() > limit,
            targets: held.into_iter().take(limit).collect(),
        })
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
    async fn start_workflow_run(
        &self,
        run: &crate::workflows::WorkflowRun,
    ) -> Result<String, Error> {
        *self.workflow_calls.lock().unwrap() += 1;
        if let Some(fault) = self.workflow_faults.lock().unwrap().pop_front() {
            return Err(fault);
        }
        if self.missing_workflows.contains(&run.workflow_arn) {
            return Err(serverless_refused("ResourceNotFoundException"));
        }
        let parameters = Value::Object(run.parameters.clone());
        let mut runs = self.workflow_runs.lock().unwrap();
        let next = format!("run{}", runs.len() + 1);
        let (arn, known, run_id) = runs.entry(run.client_token.clone()).or_insert((
            run.workflow_arn.clone(),
            parameters.clone(),
            next,
        ));
        if *arn != run.workflow_arn || *known != parameters {
            return Err(serverless_refused("ConflictException"));
        }
        Ok(run_id.clone())
    }
    async fn list_route_files(
        &self,
        prefix: &str,
    ) -> Result<Vec<crate::route_files::Listed>, Error> {
        self.route_calls.lock().unwrap().push("list".into());
        if self.route_files_down {
            return Err(s3_down("ListObjectsV2"));
        }
        Ok(self
            .route_files
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, (etag, content))| crate::route_files::Listed {
                key: key.clone(),
                etag: Some(etag.clone()),
                last_modified: Some(1_780_000_000),
                size: Some(content.len() as i64),
            })
            .collect())
    }
    async fn route_file(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.route_calls.lock().unwrap().push(format!("get {key}"));
        if self.route_files_down {
            return Err(s3_down("GetObject"));
        }
        Ok(self
            .route_files
            .lock()
            .unwrap()
            .get(key)
            .map(|(_, content)| content.clone()))
    }
    async fn publish(&self, detail_type: &str, detail: Value) -> Result<(), Error> {
        if self.publish_fails {
            return Err(Error::transient(
                "EventBridge",
                "PutEvents",
                "InternalException: bus down",
            ));
        }
        self.published.lock().unwrap().push(detail_type.to_owned());
        self.events
            .lock()
            .unwrap()
            .push((detail_type.to_owned(), detail));
        Ok(())
    }
}

fn function(fake: Fake) -> TriggerDag<Fake> {
    with_routes(
        fake,
        r#"[{"bucket":"landing","prefix":"in/","environment":"dev-a","dag":"ingest"},
            {"bucket":"landing","prefix":"in/","environment":"dev-b","dag":"gone"}]"#,
    )
}

/// trigger-dag with these routes (the `Routes` parameter's JSON).
fn with_routes(fake: Fake, routes: &str) -> TriggerDag<Fake> {
    let routes = routes::parse_routes(routes).unwrap();
    TriggerDag {
        ops: fake,
        routes: routes.into(),
        // Asks MWAA every time, as these tests change environments between arrivals;
        // tests/known_environments.rs covers what a warm instance remembers.
        environments: KnownEnvironments::new(std::time::Duration::ZERO),
        replay: Default::default(),
    }
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
        fake.set_environment(env, Availability::Available(AirflowMajor::V2));
    }
    fake
}

fn replay(environment: &str) -> Value {
    json!({"replay": {"environment": environment}})
}

impl Fake {
    fn set_environment(&self, name: &str, now: Availability) {
        self.environments.lock().unwrap().insert(name.into(), now);
    }
}

impl TriggerDag<Fake> {
    /// One invocation with the test's budget.
    async fn run(&self, event: Value) -> Result<Value, Error> {
        self.run_within(BUDGET, event).await
    }

    async fn run_within(&self, budget: std::time::Duration, event: Value) -> Result<Value, Error> {
        self.handle(event, common::Deadline::after(budget)).await
    }
}

#[tokio::test]
async fn redeliveries_start_one_run_per_route() {
    let f = function(available(&["dev-a", "dev-b"]));
    let first = f.run(arrival("in/a.csv")).await.unwrap();
    let again = f.run(arrival("in/a.csv")).await.unwrap();
    assert_eq!(first["runs"][0]["outcome"], "started");
    assert_eq!(first["runs"][1]["outcome"], "started");
    assert_eq!(again["runs"][0]["outcome"], "already_started");
    assert_eq!(f.ops.airflow.runs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn one_failing_route_does_not_stop_the_others_but_fails_the_invocation() {
    let mut fake = available(&["dev-a", "dev-b"]);
    fake.airflow.unknown.insert("gone".into());
    let f = function(fake);
    let err = f.run(arrival("in/a.csv")).await.unwrap_err();
    assert!(err.to_string().contains("gone"), "{err}");
    assert_eq!(
        f.ops.airflow.runs.lock().unwrap().len(),
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
    f.run(arrival("in/a.csv")).await.unwrap();
    f.run(arrival("in/a.csv")).await.unwrap();
    assert_eq!(
        f.ops.held.lock().unwrap().len(),
        2,
        "one record per environment and run"
    );
    assert!(f.run(replay("dev-a")).await.is_err(), "not available yet");

    f.ops
        .set_environment("dev-a", Availability::Available(AirflowMajor::V3));
    let report = f.run(replay("dev-a")).await.unwrap();
    assert_eq!(report["replayed"], 1);
    assert_eq!(
        f.ops.held.lock().unwrap().len(),
        1,
        "dev-b's arrival stays held"
    );

    let fake = Fake {
        airflow: FakeAirflow::knowing_all_but(&["gone"]),
        held: Mutex::new(std::mem::take(&mut *f.ops.held.lock().unwrap())),
        ..Fake::default()
    };
    fake.set_environment("dev-b", Availability::Available(AirflowMajor::V2));
    let f = function(fake);
    let report = f.run(replay("dev-b")).await.unwrap();
    assert_eq!(report["set_aside"], 1);
    assert!(f.ops.held.lock().unwrap().is_empty());
    assert!(f.ops.set_aside.lock().unwrap()[0].contains("404"));
}

#[tokio::test]
async fn a_bus_that_is_down_does_not_fail_a_started_run() {
    let mut fake = available(&["dev-a", "dev-b"]);
    fake.publish_fails = true;
    let f = function(fake);
    assert!(f.run(arrival("in/b.csv")).await.is_ok());
}

#[tokio::test]
async fn arrivals_without_a_route_are_ignored() {
    let f = function(available(&["dev-a"]));
    let report = f.run(arrival("elsewhere/a.csv")).await.unwrap();
    assert_eq!(report["runs"], json!([]));
    assert!(f.ops.airflow.runs.lock().unwrap().is_empty());
}

/// `n` runs held for `environment`, as arrivals while it was away leave them.
fn holding(environment: &str, n: usize) -> Fake {
    let fake = Fake::default();
    for i in 0..n {
        let target = Target {
            environment: environment.into(),
            route: "orders".into(),
            event_id: format!("e{i}"),
            dag_id: "ingest".into(),
            run_id: format!("s3__night-{i:05}"),
            conf: json!({"key": format!("night/{i}.csv")}),
        };
        fake.held
            .lock()
            .unwrap()
            .insert(ops::held_key(&target), target);
    }
    fake
}

#[tokio::test]
async fn ten_thousand_held_arrivals_replay_in_bounded_batches_each_run_once() {
    let fake = holding("dev-a", 10_000);
    fake.set_environment("dev-a", Availability::Available(AirflowMajor::V2));
    let f = function(fake);
    let (mut batches, mut replayed) = (0, 0);
    loop {
        let report = f.run(replay("dev-a")).await.unwrap();
        batches += 1;
        let batch = report["replayed"].as_u64().unwrap();
        assert!(batch <= replay::REPLAY_PAGE as u64, "{report}");
        replayed += batch;
        if report["more"] == json!(false) {
            break;
        }
        assert!(batches < 100, "the replay made no progress: {report}");
    }
    assert_eq!(replayed, 10_000);
    // A full page per batch unless a batch reached its work budget first (a loaded
    // machine): then more batches, never fewer.
    assert!(batches >= 10_000 / replay::REPLAY_PAGE, "{batches} batches");
    assert!(f.ops.held.lock().unwrap().is_empty());
    let runs = f.ops.airflow.runs.lock().unwrap();
    let ids: std::collections::HashSet<_> = runs.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!((runs.len(), ids.len()), (10_000, 10_000), "each run once");
}

#[tokio::test]
async fn a_batch_out_of_time_leaves_the_rest_held_and_asks_for_more() {
    let fake = holding("dev-a", 3);
    fake.set_environment("dev-a", Availability::Available(AirflowMajor::V2));
    let f = function(fake);
    // No time left to start a run: nothing is started, nothing released, more to do.
    let report = f
        .run_within(std::time::Duration::ZERO, replay("dev-a"))
        .await
        .unwrap();
    assert_eq!(
        (report["replayed"].clone(), report["more"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(f.ops.held.lock().unwrap().len(), 3);
    let report = f.run(replay("dev-a")).await.unwrap();
    assert_eq!(
        (report["replayed"].clone(), report["more"].clone()),
        (json!(3), json!(false))
    );
}
