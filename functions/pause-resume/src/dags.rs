//! The steps that talk to Airflow through MWAA `InvokeRestApi`: run-dag (the DAG <-> Step
//! Functions bridge) and enable-dags.

use aws_sdk_mwaa::types::RestApiMethod;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use std::time::Duration;

use common::airflow::{
    dag_path, dag_runs_path, start_dag_run, AirflowMajor, AirflowRest, DagRun, DagRunOutcome,
    RestRequest,
};
use common::retry::with_retries;
use common::Deadline;

use crate::environment::status_of;
use crate::ops::Environments;
use crate::{check_environment_name, parse};
use common::{Error, ErrorKind};

/// run-dag's input. `task_token` is `$$.Task.Token` of a `.waitForTaskToken` task.
#[derive(Debug, Deserialize)]
pub struct RunDagInput {
    pub environment: String,
    pub dag: String,
    #[serde(default)]
    pub conf: Option<Map<String, Value>>,
    pub task_token: String,
    #[serde(default = "yes")]
    pub unpause: bool,
}

fn yes() -> bool {
    true
}

/// How long run-dag and enable-dags, each invocation in all, retry REST calls that failed
/// transiently (throttling, 5xx, Airflow unreachable), on top of the SDK's own attempts. One
/// budget per invocation, not per call: a last attempt may still take up to 3 x 15 s
/// (`MWAA_ATTEMPT_TIMEOUT`), so the template gives both functions 120 s.
///
/// Retrying here rather than failing to Step Functions matters for run-dag: a start whose
/// answer was lost may have started the run, and only a retry with the same task token (so
/// the same run id) finds it (409). Step Functions' own retry of the task brings a new task
/// token, hence a new run id: a second run.
pub const REST_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// The run id for a task token: a retried invocation (same token) starts no second run.
pub fn run_id(task_token: &str) -> String {
    let digest = hex::encode(Sha256::digest(task_token.as_bytes()));
    format!("mwaa_ops_{}", &digest[..32])
}

/// The run to start: the input's conf plus `task_token`, so the DAG can answer.
pub fn dag_run(input: &RunDagInput) -> DagRun {
    let mut conf = input.conf.clone().unwrap_or_default();
    conf.insert("task_token".into(), json!(input.task_token));
    DagRun {
        dag_id: input.dag.clone(),
        run_id: run_id(&input.task_token),
        conf: Value::Object(conf),
    }
}

/// `PATCH /dags/{dag}?update_mask=is_paused {"is_paused": false}`.
pub fn unpause_request(environment: &str, dag: &str) -> Result<RestRequest, Error> {
    Ok(RestRequest {
        environment: environment.to_owned(),
        method: RestApiMethod::Patch,
        path: dag_path(environment, dag)?,
        query: Some(json!({"update_mask": "is_paused"})),
        body: Some(json!({"is_paused": false})),
    })
}

/// Whether Airflow unpaused the DAG (`false`: it does not know the DAG).
async fn unpause(
    api: &impl AirflowRest,
    environment: &str,
    dag: &str,
    deadline: Deadline,
) -> Result<bool, Error> {
    let request = unpause_request(environment, dag)?;
    let response = with_retries(deadline, || api.invoke(&request)).await?;
    match response.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        status => Err(Error::AirflowRejected {
            environment: environment.to_owned(),
            method: "PATCH".into(),
            path: request.path,
            status,
            body: response.body.to_string(),
        }
        .into()),
    }
}

fn dag_not_found(environment: &str, dag: &str) -> Error {
    Error::new(
        ErrorKind::DagNotFound,
        format!("Airflow in {environment} has no DAG {dag}"),
    )
}

/// run-dag: unpauses the DAG (unless `unpause: false`) and starts a run whose conf carries
/// the task token -> `{"environment", "dag", "dag_run_id", "already_started"}`.
pub async fn run_dag(
    mwaa: &(impl Environments + AirflowRest),
    event: Value,
) -> Result<Value, Error> {
    let input: RunDagInput = parse(&event)?;
    check_environment_name(&input.environment)?;
    if input.task_token.is_empty() {
        return Err(Error::invalid_input("field `task_token`: empty"));
    }
    let (environment, dag) = (input.environment.as_str(), input.dag.as_str());
    dag_runs_path(environment, dag)?;
    let deadline = Deadline::after(REST_RETRY_BUDGET);
    let env = mwaa.get(environment).await?;
    let status = status_of(env.as_ref());
    let Some(env) = env.filter(|_| status == "AVAILABLE") else {
        return Err(Error::not_available(
            environment,
            &status,
            "DAG runs start only in an AVAILABLE environment",
        ));
    };
    let version = env.airflow_version().unwrap_or_default();
    let major = AirflowMajor::from_version(version).ok_or_else(|| {
        Error::new(
            ErrorKind::OperationFailed,
            format!(
                "environment {environment} runs Airflow {version:?}, which this step does not know"
            ),
        )
    })?;
    if input.unpause && !unpause(mwaa, environment, dag, deadline).await? {
        return Err(dag_not_found(environment, dag));
    }
    let run = dag_run(&input);
    let started = with_retries(deadline, || start_dag_run(mwaa, environment, major, &run)).await;
    let already_started = match started {
        Ok(DagRunOutcome::Started) => false,
        Ok(DagRunOutcome::AlreadyExists) => true,
        Err(Error::AirflowRejected { status: 404, .. }) => {
            return Err(dag_not_found(environment, dag))
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(environment, dag, run_id = %run.run_id, already_started, "run-dag");
    Ok(
        json!({"environment": environment, "dag": dag, "dag_run_id": run.run_id,
        "already_started": already_started}),
    )
}

#[derive(Debug, Deserialize)]
struct EnableDagsInput {
    environment: String,
    dags: Vec<String>,
}

/// enable-dags: unpauses each DAG -> `{"environment", "enabled", "missing",
/// "not_addressable"}`. Unknown DAGs are `missing`; ids InvokeRestApi cannot address (path
/// over 64 characters, characters Airflow does not allow) are `not_addressable` with why.
pub async fn enable_dags(api: &impl AirflowRest, event: Value) -> Result<Value, Error> {
    let input: EnableDagsInput = parse(&event)?;
    check_environment_name(&input.environment)?;
    let environment = input.environment.as_str();
    let deadline = Deadline::after(REST_RETRY_BUDGET);
    let (mut enabled, mut missing, mut not_addressable) = (vec![], vec![], vec![]);
    let mut seen = std::collections::HashSet::new();
    for dag in input.dags.iter().filter(|d| seen.insert(d.as_str())) {
        match unpause(api, environment, dag, deadline).await {
            Ok(true) => enabled.push(dag),
            Ok(false) => missing.push(dag),
            Err(err) if err.kind() == ErrorKind::InvalidInput => {
                not_addressable.push(json!({"dag": dag, "reason": err.to_string()}))
            }
            Err(err) => return Err(err),
        }
    }
    tracing::info!(environment, enabled = enabled.len(), missing = ?missing,
        not_addressable = not_addressable.len(), "enable-dags");
    Ok(
        json!({"environment": environment, "enabled": enabled, "missing": missing,
        "not_addressable": not_addressable}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{environment, FakeMwaa};
    use aws_sdk_mwaa::types::EnvironmentStatus;

    fn fake(status: EnvironmentStatus, version: &str) -> FakeMwaa {
        let mut fake = FakeMwaa::with(&[environment("dev", status, version)]);
        fake.dags = ["mwaa_ops_export".to_string(), "etl".to_string()].into();
        fake
    }

    fn run_input() -> Value {
        json!({"environment": "dev", "dag": "mwaa_ops_export", "task_token": "AQCEAAAAKgAAAA-token",
            "conf": {"bucket": "exports", "kms_key_id": "alias/k", "task_token": "stale"}})
    }

    #[test]
    fn the_run_id_is_a_function_of_the_task_token() {
        let id = run_id("AQCEAAAAKgAAAA-token");
        assert_eq!(id, run_id("AQCEAAAAKgAAAA-token"));
        assert_ne!(id, run_id("AQCEAAAAKgAAAA-other"));
        assert!(id.starts_with("mwaa_ops_"));
        assert_eq!(id.len(), "mwaa_ops_".len() + 32);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }

    #[test]
    fn the_conf_carries_the_task_token_over_any_given_one() {
        let input: RunDagInput = parse(&run_input()).unwrap();
        assert!(input.unpause, "unpause defaults to true");
        let run = dag_run(&input);
        assert_eq!(run.conf["task_token"], "AQCEAAAAKgAAAA-token");
        assert_eq!(run.conf["bucket"], "exports");
        assert_eq!(run.dag_id, "mwaa_ops_export");
        let bare: RunDagInput =
            parse(&json!({"environment": "e", "dag": "d", "task_token": "t", "conf": null}))
                .unwrap();
        assert_eq!(dag_run(&bare).conf, json!({"task_token": "t"}));
    }

    #[test]
    fn the_unpause_request_patches_only_is_paused() {
        let request = unpause_request("dev", "etl").unwrap();
        assert_eq!(request.method, RestApiMethod::Patch);
        assert_eq!(request.path, "/dags/etl");
        assert_eq!(request.query, Some(json!({"update_mask": "is_paused"})));
        assert_eq!(request.body, Some(json!({"is_paused": false})));
        let err = unpause_request("dev", "a/b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn run_dag_unpauses_and_starts_one_run_per_task_token() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let first = run_dag(&mwaa, run_input()).await.unwrap();
        let again = run_dag(&mwaa, run_input()).await.unwrap();
        assert_eq!(first["already_started"], false);
        assert_eq!(again["already_started"], true);
        assert_eq!(first["dag_run_id"], again["dag_run_id"]);
        assert_eq!(first["dag_run_id"], run_id("AQCEAAAAKgAAAA-token"));
        assert!(!mwaa.paused.lock().unwrap()["mwaa_ops_export"]);
        let runs = mwaa.runs.lock().unwrap();
        assert_eq!(runs.len(), 1);
        let body = &runs[0].2;
        assert_eq!(body["conf"]["task_token"], "AQCEAAAAKgAAAA-token");
        assert!(
            body.get("logical_date").is_none(),
            "Airflow 2 takes no null logical_date"
        );
    }

    #[tokio::test]
    async fn a_start_whose_answer_was_lost_is_retried_onto_the_same_run() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let mut input = run_input();
        input["unpause"] = json!(false);
        // Airflow starts the run, but the answer is lost (MWAA: RestApiServerException 504),
        // twice: the step asks again with the same run id and takes the 409 as started.
        *mwaa.lost_answers.lock().unwrap() = 2;
        let out = run_dag(&mwaa, input).await.unwrap();
        assert_eq!(out["already_started"], true);
        assert_eq!(mwaa.runs.lock().unwrap().len(), 1, "one run, not two");
        assert_eq!(mwaa.requests.lock().unwrap().len(), 3);
        // The same for an unpause whose answer was lost.
        *mwaa.lost_answers.lock().unwrap() = 1;
        let out = enable_dags(&mwaa, json!({"environment": "dev", "dags": ["etl"]}))
            .await
            .unwrap();
        assert_eq!(out["enabled"], json!(["etl"]));
    }

    #[tokio::test]
    async fn on_airflow_3_the_run_carries_a_null_logical_date_and_unpause_can_be_skipped() {
        let mwaa = fake(EnvironmentStatus::Available, "3.0.6");
        let mut input = run_input();
        input["unpause"] = json!(false);
        run_dag(&mwaa, input).await.unwrap();
        let requests = mwaa.requests.lock().unwrap();
        assert_eq!(requests.len(), 1, "no PATCH: {requests:?}");
        let body = requests[0].body.as_ref().unwrap();
        assert!(body.as_object().unwrap().contains_key("logical_date"));
    }

    #[tokio::test]
    async fn run_dag_errors_name_what_is_wrong() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let mut unknown = run_input();
        unknown["dag"] = json!("nope");
        let err = run_dag(&mwaa, unknown.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DagNotFound);
        assert!(err.to_string().contains("nope"), "{err}");
        unknown["unpause"] = json!(false);
        let err = run_dag(&mwaa, unknown).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DagNotFound, "404 on the run itself");

        let mut no_token = run_input();
        no_token.as_object_mut().unwrap().remove("task_token");
        let err = run_dag(&mwaa, no_token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("task_token"), "{err}");

        let mut bad_conf = run_input();
        bad_conf["conf"] = json!([1, 2]);
        let err = run_dag(&mwaa, bad_conf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("conf"), "{err}");

        let updating = fake(EnvironmentStatus::Updating, "2.10.3");
        let err = run_dag(&updating, run_input()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentNotAvailable);
        assert!(err.to_string().contains("UPDATING"), "{err}");
        assert!(updating.requests.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn enable_dags_reports_enabled_missing_and_unaddressable_dags() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let long = "x".repeat(59);
        let out = enable_dags(
            &mwaa,
            json!({"environment": "dev", "dags": ["etl", "gone", "etl", long]}),
        )
        .await
        .unwrap();
        assert_eq!(out["enabled"], json!(["etl"]));
        assert_eq!(out["missing"], json!(["gone"]));
        assert_eq!(out["not_addressable"][0]["dag"], json!(long));
        assert!(out["not_addressable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("64"));
        assert!(!mwaa.paused.lock().unwrap()["etl"]);
        let none = enable_dags(&mwaa, json!({"environment": "dev", "dags": []}))
            .await
            .unwrap();
        assert_eq!(none["enabled"], json!([]));
        let err = enable_dags(&mwaa, json!({"environment": "gone", "dags": ["etl"]}))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentNotAvailable);
    }
}
