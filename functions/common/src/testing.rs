//! The one Airflow fake of the workspace (feature `test-util`, for tests only): Airflow's
//! REST API as MWAA forwards it, in memory. It knows DAGs, remembers run ids (a repeated run
//! id answers 409, as Airflow does), records pause flags and every request, and can lose
//! answers or fail calls on demand, so tests see the behaviour, not a script.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::airflow::{AirflowRest, RestRequest, RestResponse};
use crate::{Error, ErrorKind};

/// A started run: DAG id, run id and the request body.
pub type StartedRun = (String, String, Value);

#[derive(Default)]
pub struct FakeAirflow {
    /// The DAGs Airflow knows; `None`: every DAG but those in `unknown`.
    pub known: Option<HashSet<String>>,
    /// DAGs Airflow does not know when `known` is `None`.
    pub unknown: HashSet<String>,
    pub runs: Mutex<Vec<StartedRun>>,
    pub paused: Mutex<HashMap<String, bool>>,
    pub requests: Mutex<Vec<RestRequest>>,
    /// The next this many calls reach Airflow, but their answer is lost on the way back
    /// (MWAA answers RestApiServerException 504): the work is done all the same.
    pub lost_answers: Mutex<u32>,
    /// Errors the next calls fail with before reaching Airflow (throttling, a deleted
    /// environment), first in first out.
    pub failures: Mutex<VecDeque<Error>>,
}

impl FakeAirflow {
    /// An Airflow that knows exactly these DAGs.
    pub fn knowing(dags: &[&str]) -> Self {
        FakeAirflow {
            known: Some(dags.iter().map(|d| d.to_string()).collect()),
            ..Self::default()
        }
    }

    /// An Airflow that knows every DAG but these.
    pub fn knowing_all_but(dags: &[&str]) -> Self {
        FakeAirflow {
            unknown: dags.iter().map(|d| d.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Makes the next call fail with `err` before it reaches Airflow.
    pub fn fail_next(&self, err: Error) {
        self.failures.lock().unwrap().push_back(err);
    }

    /// The run ids started for `dag`, in order.
    pub fn run_ids(&self, dag: &str) -> Vec<String> {
        let runs = self.runs.lock().unwrap();
        runs.iter()
            .filter(|(d, _, _)| d == dag)
            .map(|(_, r, _)| r.clone())
            .collect()
    }

    fn knows(&self, dag: &str) -> bool {
        match &self.known {
            Some(known) => known.contains(dag),
            None => !self.unknown.contains(dag),
        }
    }

    /// Airflow's answer to `request`, without faults.
    fn answer(&self, request: &RestRequest) -> RestResponse {
        let dag = request
            .path
            .split('/')
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        if !self.knows(&dag) {
            return RestResponse {
                status: 404,
                body: json!({"title": "DAG not found"}),
            };
        }
        let body = request.body.clone().unwrap_or(Value::Null);
        if request.path.ends_with("/dagRuns") {
            let run_id = body["dag_run_id"].as_str().unwrap_or_default().to_owned();
            let mut runs = self.runs.lock().unwrap();
            if runs.iter().any(|(d, r, _)| *d == dag && *r == run_id) {
                return RestResponse {
                    status: 409,
                    body: json!({"title": "DAGRun already exists"}),
                };
            }
            runs.push((dag, run_id, body));
            return RestResponse {
                status: 200,
                body: json!({"state": "queued"}),
            };
        }
        let paused = body["is_paused"].as_bool().unwrap_or_default();
        self.paused.lock().unwrap().insert(dag, paused);
        RestResponse {
            status: 200,
            body: json!({"is_paused": paused}),
        }
    }
}

impl AirflowRest for FakeAirflow {
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
        self.requests.lock().unwrap().push(request.clone());
        if let Some(err) = self.failures.lock().unwrap().pop_front() {
            return Err(err);
        }
        let response = self.answer(request);
        let lost = {
            let mut lost = self.lost_answers.lock().unwrap();
            let now = *lost > 0;
            *lost = lost.saturating_sub(1);
            now
        };
        if lost {
            return Err(Error::AirflowUnavailable {
                environment: request.environment.clone(),
                method: request.method.as_str().to_owned(),
                path: request.path.clone(),
                status: 504,
                body: "Gateway Timeout".into(),
            });
        }
        Ok(response)
    }
}

/// Asserts that `err` reaches Lambda as `InvalidInput` and that its message names each of
/// `mentions` (the fields at fault and the event id), the contract every function keeps for
/// bad input.
pub fn assert_invalid_input(err: Error, mentions: &[&str]) {
    assert_fails_as(err, ErrorKind::InvalidInput, mentions);
}

/// Asserts that `err` reaches Lambda with `kind` as its `errorType` (what a state machine's
/// `Retry`/`Catch` matches) and that its message names each of `mentions`.
pub fn assert_fails_as(err: Error, kind: ErrorKind, mentions: &[&str]) {
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, kind.as_str());
    let message = diagnostic.error_message;
    for mention in mentions {
        assert!(message.contains(mention), "{mention:?} not in: {message}");
    }
}

/// Starts a function's built `binary` as Lambda would, but without the setting the template
/// gives it: it must stop at start-up naming `setting`, not panic. (The functions' integration
/// tests call this; having one is what makes `cargo test --workspace` build the binaries the
/// bed's Lambda service runs, tests/bed/lambda_local.py.)
pub fn stops_at_start_up_naming(binary: &str, setting: &str) {
    let out = std::process::Command::new(binary)
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("the binary starts");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{binary} started without {setting}");
    assert!(
        said.contains(&format!("{setting} is not set")),
        "{binary}: {said}"
    );
    assert!(!said.contains("panicked"), "{binary}: {said}");
}
