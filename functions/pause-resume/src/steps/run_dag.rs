//! run-dag, the DAG <-> Step Functions bridge: unpauses the DAG (unless `unpause: false`)
//! and starts a run whose conf carries the task token -> `{"environment", "dag",
//! "dag_run_id", "already_started"}`. The DAG answers the token when it is done.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use common::airflow::{dag_runs_path, start_dag_run, AirflowRest, DagRun, DagRunOutcome};
use common::retry::with_retries;
use common::{Availability, Deadline, EnvironmentName, Error, ErrorKind};

use super::enable_dags::{unpause, REST_RETRY_BUDGET};
use crate::ops::Environments;
use crate::parse;

/// run-dag's input. `task_token` is `$$.Task.Token` of a `.waitForTaskToken` task.
#[derive(Debug, Deserialize)]
pub struct RunDagInput {
    pub environment: EnvironmentName,
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

fn dag_not_found(environment: &str, dag: &str) -> Error {
    Error::new(
        ErrorKind::DagNotFound,
        format!("Airflow in {environment} has no DAG {dag}"),
    )
}

/// run-dag: `deadline` is the invocation's; REST retries stop at [`REST_RETRY_BUDGET`]
/// sooner.
pub async fn run_dag(
    mwaa: &(impl Environments + AirflowRest),
    event: Value,
    deadline: Deadline,
) -> Result<Value, Error> {
    let input: RunDagInput = parse(&event)?;
    if input.task_token.is_empty() {
        return Err(Error::invalid_input("field `task_token`: empty"));
    }
    let (environment, dag) = (input.environment.as_str(), input.dag.as_str());
    dag_runs_path(environment, dag)
        .map_err(|e| Error::invalid_input(format!("field `dag`: {e}")))?;
    let deadline = deadline.at_most(REST_RETRY_BUDGET);
    let env = mwaa.get(environment).await?;
    let major = match Availability::of(environment, env.as_ref()) {
        Ok(Availability::Available(major)) => major,
        Ok(other) => {
            return Err(Error::not_available(
                environment,
                other.status().as_str(),
                "DAG runs start only in an AVAILABLE environment",
            ))
        }
        // Not the caller's input but the environment: no request shape fits its Airflow.
        Err(_) => {
            let version = env.as_ref().and_then(|e| e.airflow_version());
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!(
                    "environment {environment} runs Airflow {:?}, which this step does not know",
                    version.unwrap_or_default()
                ),
            ));
        }
    };
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
        Err(err) => return Err(err),
    };
    tracing::info!(environment, dag, run_id = %run.run_id, already_started, "run-dag");
    Ok(
        json!({"environment": environment, "dag": dag, "dag_run_id": run.run_id,
        "already_started": already_started}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{budget, enable, with_dags as fake};
    use aws_sdk_mwaa::types::EnvironmentStatus;

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

    #[tokio::test]
    async fn run_dag_unpauses_and_starts_one_run_per_task_token() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let first = run_dag(&mwaa, run_input(), budget()).await.unwrap();
        let again = run_dag(&mwaa, run_input(), budget()).await.unwrap();
        assert_eq!(first["already_started"], false);
        assert_eq!(again["already_started"], true);
        assert_eq!(first["dag_run_id"], again["dag_run_id"]);
        assert_eq!(first["dag_run_id"], run_id("AQCEAAAAKgAAAA-token"));
        assert!(!mwaa.airflow.paused.lock().unwrap()["mwaa_ops_export"]);
        let runs = mwaa.airflow.runs.lock().unwrap();
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
        *mwaa.airflow.lost_answers.lock().unwrap() = 2;
        let out = run_dag(&mwaa, input, budget()).await.unwrap();
        assert_eq!(out["already_started"], true);
        assert_eq!(
            mwaa.airflow.runs.lock().unwrap().len(),
            1,
            "one run, not two"
        );
        assert_eq!(mwaa.airflow.requests.lock().unwrap().len(), 3);
        // The same for an unpause whose answer was lost.
        *mwaa.airflow.lost_answers.lock().unwrap() = 1;
        let out = enable(&mwaa, "dev", &["etl"]).await.unwrap();
        assert_eq!(out["enabled"], json!(["etl"]));
    }

    #[tokio::test]
    async fn on_airflow_3_the_run_carries_a_null_logical_date_and_unpause_can_be_skipped() {
        let mwaa = fake(EnvironmentStatus::Available, "3.0.6");
        let mut input = run_input();
        input["unpause"] = json!(false);
        run_dag(&mwaa, input, budget()).await.unwrap();
        let requests = mwaa.airflow.requests.lock().unwrap();
        assert_eq!(requests.len(), 1, "no PATCH: {requests:?}");
        let body = requests[0].body.as_ref().unwrap();
        assert!(body.as_object().unwrap().contains_key("logical_date"));
    }

    #[tokio::test]
    async fn run_dag_errors_name_what_is_wrong() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let mut unknown = run_input();
        unknown["dag"] = json!("nope");
        let err = run_dag(&mwaa, unknown.clone(), budget()).await.unwrap_err();
        common::testing::assert_fails_as(err, ErrorKind::DagNotFound, &["nope"]);
        unknown["unpause"] = json!(false);
        let err = run_dag(&mwaa, unknown, budget()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DagNotFound, "404 on the run itself");

        let mut no_token = run_input();
        no_token.as_object_mut().unwrap().remove("task_token");
        let err = run_dag(&mwaa, no_token, budget()).await.unwrap_err();
        common::testing::assert_invalid_input(err, &["task_token"]);

        let mut bad_conf = run_input();
        bad_conf["conf"] = json!([1, 2]);
        let err = run_dag(&mwaa, bad_conf, budget()).await.unwrap_err();
        common::testing::assert_invalid_input(err, &["conf"]);

        for dots in [".", ".."] {
            let mut path_segment = run_input();
            path_segment["dag"] = json!(dots);
            let err = run_dag(&mwaa, path_segment, budget()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            let text = err.to_string();
            assert!(
                text.contains("field `dag`") && text.contains("path segment"),
                "{text}"
            );
        }
        assert!(
            mwaa.airflow.runs.lock().unwrap().is_empty(),
            "nothing started"
        );

        let updating = fake(EnvironmentStatus::Updating, "2.10.3");
        let err = run_dag(&updating, run_input(), budget()).await.unwrap_err();
        common::testing::assert_fails_as(err, ErrorKind::EnvironmentNotAvailable, &["UPDATING"]);
        assert!(updating.airflow.requests.lock().unwrap().is_empty());
    }
}
