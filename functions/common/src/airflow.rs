//! Airflow's REST API reached through MWAA `InvokeRestApi`, for Airflow 2 and 3.
//!
//! MWAA forwards `{Method, Path, Body, QueryParameters}` to the environment's Airflow
//! (`/api/v1` on 2.x, `/api/v2` on 3.x: the `Path` is the same). Airflow's 4xx answers come
//! back as `RestApiClientException`, its 5xx as `RestApiServerException`.

use std::future::Future;

use aws_sdk_mwaa::operation::invoke_rest_api::InvokeRestApiError;
use aws_sdk_mwaa::types::RestApiMethod;
use serde_json::{json, Value};

use crate::document::{to_document, to_json};
use crate::Error;

/// MWAA refuses request paths longer than this.
pub const MAX_PATH_LEN: usize = 64;

/// Airflow's major version decides the shape of some request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AirflowMajor {
    V2,
    V3,
}

impl AirflowMajor {
    /// Reads `AirflowVersion` as MWAA reports it ("2.10.3", "3.0.6").
    pub fn from_version(version: &str) -> Option<Self> {
        match version.split('.').next()? {
            "2" => Some(Self::V2),
            "3" => Some(Self::V3),
            _ => None,
        }
    }
}

/// One call to the Airflow REST API of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct RestRequest {
    pub environment: String,
    pub method: RestApiMethod,
    pub path: String,
    pub query: Option<Value>,
    pub body: Option<Value>,
}

/// Airflow's answer: 2xx, or a 4xx that the caller may treat as an outcome (409, 404).
#[derive(Debug, Clone, PartialEq)]
pub struct RestResponse {
    pub status: u16,
    pub body: Value,
}

/// The narrow seam over `InvokeRestApi`: the SDK client in Lambda, a fake in unit tests.
pub trait AirflowRest: Send + Sync {
    fn invoke(
        &self,
        request: &RestRequest,
    ) -> impl Future<Output = Result<RestResponse, Error>> + Send;
}

impl AirflowRest for aws_sdk_mwaa::Client {
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
        if request.path.len() > MAX_PATH_LEN {
            return Err(Error::InvalidRequest {
                environment: request.environment.clone(),
                reason: format!(
                    "REST path is {} characters, MWAA allows {MAX_PATH_LEN}: {}",
                    request.path.len(),
                    request.path
                ),
            });
        }
        let sent = self
            .invoke_rest_api()
            .name(&request.environment)
            .method(request.method.clone())
            .path(&request.path)
            .set_query_parameters(request.query.as_ref().map(to_document))
            .set_body(request.body.as_ref().map(to_document))
            .send()
            .await;
        match sent {
            Ok(out) => Ok(RestResponse {
                status: out.rest_api_status_code().unwrap_or(200) as u16,
                body: out.rest_api_response().map(to_json).unwrap_or(Value::Null),
            }),
            Err(err) => Err(match err.as_service_error() {
                Some(InvokeRestApiError::RestApiClientException(e)) => {
                    return Ok(RestResponse {
                        status: e.rest_api_status_code().unwrap_or(400) as u16,
                        body: e.rest_api_response().map(to_json).unwrap_or(Value::Null),
                    })
                }
                Some(InvokeRestApiError::RestApiServerException(e)) => Error::AirflowUnavailable {
                    environment: request.environment.clone(),
                    method: request.method.as_str().to_owned(),
                    path: request.path.clone(),
                    status: e.rest_api_status_code().unwrap_or(500) as u16,
                    body: e
                        .rest_api_response()
                        .map(to_json)
                        .unwrap_or(Value::Null)
                        .to_string(),
                },
                Some(InvokeRestApiError::ResourceNotFoundException(_)) => {
                    Error::EnvironmentNotFound(request.environment.clone())
                }
                Some(InvokeRestApiError::ValidationException(e)) => Error::InvalidRequest {
                    environment: request.environment.clone(),
                    reason: e.message().unwrap_or("ValidationException").to_owned(),
                },
                _ => Error::aws("MWAA", "InvokeRestApi", &err),
            }),
        }
    }
}

/// A DAG run to start: the id makes repeated deliveries land on the same run.
#[derive(Debug, Clone, PartialEq)]
pub struct DagRun {
    pub dag_id: String,
    pub run_id: String,
    pub conf: Value,
}

/// What starting a run came to. `AlreadyExists` is success: an earlier delivery started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagRunOutcome {
    Started,
    AlreadyExists,
}

/// `/dags/{dag_id}/dagRuns`, refusing DAG ids Airflow would not have and paths MWAA refuses.
pub fn dag_runs_path(environment: &str, dag_id: &str) -> Result<String, Error> {
    dag_subpath(environment, dag_id, "/dagRuns")
}

/// `/dags/{dag_id}` (the DAG itself: `PATCH` pauses or unpauses it), checked like
/// [`dag_runs_path`].
pub fn dag_path(environment: &str, dag_id: &str) -> Result<String, Error> {
    dag_subpath(environment, dag_id, "")
}

/// Why `dag_id` cannot name a DAG in a REST path, if it cannot. `.` and `..` are DAG ids by
/// Airflow's character rule, but as a path segment they name the folder or its parent:
/// `/dags/..` would reach another resource.
pub fn dag_id_problem(dag_id: &str) -> Option<&'static str> {
    if matches!(dag_id, "." | "..") {
        return Some("is a path segment (`.` or `..`), not a DAG id");
    }
    let valid = !dag_id.is_empty()
        && dag_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (!valid).then_some("is not a valid Airflow DAG id ([A-Za-z0-9_.-]+)")
}

fn dag_subpath(environment: &str, dag_id: &str, suffix: &str) -> Result<String, Error> {
    if let Some(why) = dag_id_problem(dag_id) {
        return Err(Error::InvalidRequest {
            environment: environment.to_owned(),
            reason: format!("DAG id {dag_id:?} {why}"),
        });
    }
    let path = format!("/dags/{dag_id}{suffix}");
    if path.len() > MAX_PATH_LEN {
        return Err(Error::InvalidRequest {
            environment: environment.to_owned(),
            reason: format!(
                "DAG id {dag_id:?} is too long for MWAA InvokeRestApi (path {path} exceeds {MAX_PATH_LEN} characters)"
            ),
        });
    }
    Ok(path)
}

/// The `POST dagRuns` body. Airflow 3 requires the `logical_date` key (null: "now");
/// Airflow 2 rejects a null `logical_date`, so it is left out there.
pub fn dag_run_body(major: AirflowMajor, run: &DagRun) -> Value {
    let mut body = json!({ "dag_run_id": run.run_id, "conf": run.conf });
    if major == AirflowMajor::V3 {
        body["logical_date"] = Value::Null;
    }
    body
}

/// Starts `run` in `environment`; a run with the same id already there counts as started.
pub async fn start_dag_run(
    api: &impl AirflowRest,
    environment: &str,
    major: AirflowMajor,
    run: &DagRun,
) -> Result<DagRunOutcome, Error> {
    let request = RestRequest {
        environment: environment.to_owned(),
        method: RestApiMethod::Post,
        path: dag_runs_path(environment, &run.dag_id)?,
        query: None,
        body: Some(dag_run_body(major, run)),
    };
    let response = api.invoke(&request).await?;
    match response.status {
        200..=299 => Ok(DagRunOutcome::Started),
        409 => Ok(DagRunOutcome::AlreadyExists),
        status => Err(Error::AirflowRejected {
            environment: environment.to_owned(),
            method: "POST".to_owned(),
            path: request.path,
            status,
            body: response.body.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::FakeAirflow;

    fn run() -> DagRun {
        DagRun {
            dag_id: "ingest_orders".into(),
            run_id: "s3__abc".into(),
            conf: json!({"key": "a b+c"}),
        }
    }

    #[test]
    fn airflow_3_body_carries_a_null_logical_date_and_airflow_2_none() {
        let v3 = dag_run_body(AirflowMajor::V3, &run());
        assert_eq!(v3["logical_date"], Value::Null);
        assert!(v3.as_object().unwrap().contains_key("logical_date"));
        let v2 = dag_run_body(AirflowMajor::V2, &run());
        assert!(!v2.as_object().unwrap().contains_key("logical_date"));
        assert_eq!(v2["dag_run_id"], "s3__abc");
        assert_eq!(v2["conf"]["key"], "a b+c");
    }

    #[test]
    fn majors_are_read_from_mwaa_versions() {
        assert_eq!(AirflowMajor::from_version("2.7.2"), Some(AirflowMajor::V2));
        assert_eq!(AirflowMajor::from_version("3.0.6"), Some(AirflowMajor::V3));
        assert_eq!(AirflowMajor::from_version("1.10.12"), None);
        assert_eq!(AirflowMajor::from_version(""), None);
    }

    #[test]
    fn paths_mwaa_would_refuse_are_refused_before_the_call() {
        assert_eq!(
            dag_runs_path("e", "a.b-c_d").unwrap(),
            "/dags/a.b-c_d/dagRuns"
        );
        assert!(dag_runs_path("e", &"x".repeat(51)).is_err());
        assert!(dag_runs_path("e", &"x".repeat(50)).is_ok());
        let err = dag_runs_path("env1", "../../variables").unwrap_err();
        assert!(err.to_string().contains("env1"), "{err}");
        assert!(dag_runs_path("e", "").is_err());
        assert!(dag_runs_path("e", "..").is_err());
        assert!(dag_path("e", ".").is_err());
        assert!(dag_path("e", "..").is_err());
        let dots = dag_runs_path("env1", "..").unwrap_err().to_string();
        assert!(
            dots.contains("env1") && dots.contains("path segment"),
            "{dots}"
        );
        assert!(dag_path("e", "...").is_ok());
        assert!(dag_path("e", ".hidden").is_ok());
        assert_eq!(dag_path("e", "a.b").unwrap(), "/dags/a.b");
        assert!(dag_path("e", &"x".repeat(58)).is_ok());
        assert!(dag_path("e", &"x".repeat(59)).is_err());
        assert!(dag_path("e", "a/b").is_err());
    }

    #[tokio::test]
    async fn a_conflict_means_an_earlier_delivery_started_the_run() {
        let api = FakeAirflow::default();
        let first = start_dag_run(&api, "env", AirflowMajor::V2, &run()).await;
        let again = start_dag_run(&api, "env", AirflowMajor::V2, &run()).await;
        assert_eq!(first.unwrap(), DagRunOutcome::Started);
        assert_eq!(again.unwrap(), DagRunOutcome::AlreadyExists);
        let seen = api.requests.lock().unwrap();
        assert_eq!(seen[0].path, "/dags/ingest_orders/dagRuns");
        assert_eq!(seen[0].method, RestApiMethod::Post);
    }

    #[tokio::test]
    async fn an_unknown_dag_is_a_permanent_error_naming_it() {
        let api = FakeAirflow::knowing(&[]);
        let err = start_dag_run(&api, "env", AirflowMajor::V3, &run())
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("404"), "{err}");
        assert!(err.to_string().contains("ingest_orders"), "{err}");
    }
}
