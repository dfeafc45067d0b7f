//! enable-dags: unpauses a batch of DAGs -> `{"environment", "enabled", "missing",
//! "not_addressable", "next"}`. Unknown DAGs are `missing`; ids InvokeRestApi cannot address
//! (path over 64 characters, characters Airflow does not allow) are `not_addressable` with
//! why. `next` is where the following batch starts (`null`: every DAG was handled), so any
//! number of DAGs is enabled in invocations that each stay inside the function's timeout.

use std::time::Duration;

use aws_sdk_mwaa::types::RestApiMethod;
use serde::Deserialize;
use serde_json::{json, Value};

use common::airflow::{dag_path, AirflowRest, RestRequest};
use common::retry::with_retries;
use common::{Deadline, EnvironmentName, Error, ErrorKind};

use crate::parse;

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
pub(crate) async fn unpause(
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
        }),
    }
}

#[derive(Debug, Deserialize)]
struct EnableDagsInput {
    environment: EnvironmentName,
    dags: Vec<String>,
    /// Where this batch starts in `dags` (duplicates left out): the last batch's `next`.
    #[serde(default)]
    start: usize,
}

/// At most this many DAGs per invocation; the state machine loops while `next` is a number.
pub const ENABLE_BATCH: usize = 200;

/// One batch: from `start`, until [`ENABLE_BATCH`] DAGs or [`REST_RETRY_BUDGET`] is spent.
/// A DAG that still fails transiently once the budget is spent ends the batch (it is the
/// next batch's first); one that fails so before any progress fails the invocation, so the
/// state machine's retries decide.
pub async fn enable_dags(
    api: &impl AirflowRest,
    event: Value,
    deadline: Deadline,
) -> Result<Value, Error> {
    let input: EnableDagsInput = parse(&event)?;
    let environment = input.environment.as_str();
    let deadline = deadline.at_most(REST_RETRY_BUDGET);
    let mut seen = std::collections::HashSet::new();
    let dags: Vec<&String> = input
        .dags
        .iter()
        .filter(|d| seen.insert(d.as_str()))
        .collect();
    let (mut enabled, mut missing, mut not_addressable) = (vec![], vec![], vec![]);
    let mut next = input.start.min(dags.len());
    // The first DAG of a batch is always tried: every batch moves on, or fails.
    while next < dags.len()
        && next - input.start < ENABLE_BATCH
        && (next == input.start || !deadline.passed())
    {
        let dag = dags[next];
        match unpause(api, environment, dag, deadline).await {
            Ok(true) => enabled.push(dag),
            Ok(false) => missing.push(dag),
            Err(err) if err.kind() == ErrorKind::InvalidInput => {
                not_addressable.push(json!({"dag": dag, "reason": err.to_string()}))
            }
            Err(err) if err.is_retryable() && next > input.start => break,
            Err(err) => return Err(err),
        }
        next += 1;
    }
    let next = (next < dags.len()).then_some(next);
    tracing::info!(environment, start = input.start, next, enabled = enabled.len(), missing = ?missing,
        not_addressable = not_addressable.len(), "enable-dags (one batch)");
    Ok(
        json!({"environment": environment, "enabled": enabled, "missing": missing,
        "not_addressable": not_addressable, "next": next}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{enable, with_dags as fake};
    use aws_sdk_mwaa::types::EnvironmentStatus;

    #[test]
    fn the_unpause_request_patches_only_is_paused() {
        let request = unpause_request("dev", "etl").unwrap();
        assert_eq!(request.method, RestApiMethod::Patch);
        assert_eq!(request.path, "/dags/etl");
        assert_eq!(request.query, Some(json!({"update_mask": "is_paused"})));
        assert_eq!(request.body, Some(json!({"is_paused": false})));
        let err = unpause_request("dev", "a/b").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // `PATCH /dags/..` would address the folder's parent, not a DAG.
        for dots in [".", ".."] {
            let err = unpause_request("dev", dots).unwrap_err();
            common::testing::assert_invalid_input(err, &["path segment"]);
        }
    }

    #[tokio::test]
    async fn enable_dags_reports_enabled_missing_and_unaddressable_dags() {
        let mwaa = fake(EnvironmentStatus::Available, "2.10.3");
        let long = "x".repeat(59);
        let out = enable(&mwaa, "dev", &["etl", "gone", "etl", &long])
            .await
            .unwrap();
        assert_eq!(out["enabled"], json!(["etl"]));
        assert_eq!(out["missing"], json!(["gone"]));
        assert_eq!(out["not_addressable"][0]["dag"], json!(long));
        assert!(out["not_addressable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("64"));
        assert!(!mwaa.airflow.paused.lock().unwrap()["etl"]);
        assert_eq!(out["next"], Value::Null);
        let none = enable(&mwaa, "dev", &[]).await.unwrap();
        assert_eq!(none["enabled"], json!([]));
        let err = enable(&mwaa, "gone", &["etl"]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentNotAvailable);
    }

    /// An Airflow that knows every DAG.
    fn knowing_all() -> crate::fakes::FakeMwaa {
        crate::fakes::FakeMwaa {
            airflow: common::testing::FakeAirflow::default(),
            ..fake(EnvironmentStatus::Available, "2.10.3")
        }
    }

    #[tokio::test]
    async fn a_thousand_dags_are_enabled_in_batches_each_once() {
        let mwaa = knowing_all();
        let names: Vec<String> = (0..1000).map(|i| format!("dag_{i:04}")).collect();
        let mut dags: Vec<&str> = names.iter().map(String::as_str).collect();
        dags.push("dag_0001"); // a duplicate counts once
        let (mut start, mut batches, mut enabled) = (json!(0), 0, vec![]);
        while let Some(from) = start.as_u64() {
            let input = json!({"environment": "dev", "dags": dags, "start": from});
            let out = enable_dags(&mwaa, input, crate::fakes::budget())
                .await
                .unwrap();
            let batch = out["enabled"].as_array().unwrap();
            assert!(batch.len() <= ENABLE_BATCH, "{}", batch.len());
            enabled.extend(batch.iter().cloned());
            start = out["next"].clone();
            batches += 1;
        }
        assert_eq!(batches, 1000 / ENABLE_BATCH);
        assert_eq!(enabled, names.iter().map(|n| json!(n)).collect::<Vec<_>>());
        let patches = mwaa.airflow.requests.lock().unwrap().len();
        assert_eq!(patches, 1000, "one PATCH per DAG");
    }

    #[tokio::test]
    async fn a_batch_out_of_time_hands_on_where_it_stopped() {
        let mwaa = knowing_all();
        let input = json!({"environment": "dev", "dags": ["a", "b", "c"], "start": 1});
        let spent = Deadline::after(Duration::ZERO);
        let out = enable_dags(&mwaa, input.clone(), spent).await.unwrap();
        assert_eq!(
            (out["enabled"].clone(), out["next"].clone()),
            (json!(["b"]), json!(2))
        );
        let input = json!({"environment": "dev", "dags": ["a", "b", "c"], "start": 2});
        let out = enable_dags(&mwaa, input, crate::fakes::budget())
            .await
            .unwrap();
        assert_eq!(
            (out["enabled"].clone(), out["next"].clone()),
            (json!(["c"]), Value::Null)
        );
    }
}
