//! MWAA Serverless targets: a route that names a workflow (`workflow_arn`) starts a
//! workflow run with `StartWorkflowRun` instead of a DAG run. The `ClientToken` is derived
//! from what a DAG run id is derived from, so a redelivery is the same run; the run's
//! `OverrideParameters` are the conf a DAG run would get. A workflow has no environment to
//! be away, so nothing is ever held: a refused run fails the arrival like an Airflow 4xx.

use serde::Serialize;
use serde_json::{json, Map, Value};

use common::retry::with_retries;
use common::{Deadline, Error};

use crate::decide::{arrival_conf, arrival_identity};
use crate::event::Arrival;
use crate::ops::Ops;
use crate::routes::{Destination, Route};
use crate::run_id::arrival_client_token;
use crate::TriggerDag;

/// detail-type of the event that reports a workflow run started (or already there).
pub const WORKFLOW_RUN_STARTED: &str = "Workflow Run Started";

/// One workflow run to start, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowRun {
    pub workflow_arn: String,
    pub route: String,
    pub event_id: String,
    pub client_token: String,
    /// `OverrideParameters`: the route's conf with the arrival's facts on top.
    pub parameters: Map<String, Value>,
}

/// The workflow runs an arrival starts: one per matching workflow route.
pub fn arrival_workflow_runs(arrival: &Arrival, routes: &[Route]) -> Vec<WorkflowRun> {
    let identity = arrival_identity(arrival);
    routes
        .iter()
        .filter(|r| r.matches(&arrival.bucket, &arrival.key))
        .filter_map(|route| match &route.destination {
            Destination::Workflow { arn } => Some(WorkflowRun {
                workflow_arn: arn.clone(),
                route: route.name.clone(),
                event_id: arrival.event_id.clone(),
                client_token: arrival_client_token(
                    &arrival.bucket,
                    &arrival.key,
                    &identity,
                    arn,
                    &route.name,
                ),
                parameters: override_parameters(route, arrival),
            }),
            Destination::Dag { .. } => None,
        })
        .collect()
}

/// The conf a DAG run would get, less the facts S3 did not give (`version_id` on an
/// unversioned bucket): `OverrideParameters` is a map that is not sparse, so a null value is
/// not a value AWS promises to take.
fn override_parameters(route: &Route, arrival: &Arrival) -> Map<String, Value> {
    let mut parameters = arrival_conf(route, arrival);
    parameters.retain(|_, v| !v.is_null());
    parameters
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
