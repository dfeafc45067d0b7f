//! MWAA Serverless targets: a route that names a workflow (`workflow_arn`) starts a
//! workflow run with `StartWorkflowRun` instead of a DAG run. The `ClientToken` is derived
//! from what a DAG run id is derived from, so a redelivery is the same run; the run's
//! `OverrideParameters` are the conf a DAG run would get. A workflow has no environment to
//! be away, so nothing is ever held: a refused run fails the arrival like an Airflow 4xx.
//! A schedule firing may name a workflow too (`scheduled_run` in decide.rs).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::Arrival;
use crate::routes::{Destination, Route};
use crate::run_id::{arrival_client_token, schedule_client_token};

/// detail-type of the event that reports a workflow run started (or already there).
pub const WORKFLOW_RUN_STARTED: &str = "Workflow Run Started";

/// The route named in what a schedule firing starts (a firing comes by no route).
pub const SCHEDULE_ROUTE: &str = "schedule";

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
    let identity = arrival.identity();
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
/// unversioned bucket).
fn override_parameters(route: &Route, arrival: &Arrival) -> Map<String, Value> {
    without_nulls(arrival.conf(route))
}

/// The workflow run a schedule firing starts: `parameters` is the firing's conf with
/// `scheduled_time`. The token is derived from the firing alone, so a redelivered invocation
/// (same input, same scheduled time) is the same run.
pub fn schedule_workflow_run(
    event_id: &str,
    workflow_arn: &str,
    scheduled_time: &str,
    parameters: Map<String, Value>,
) -> WorkflowRun {
    let parameters = without_nulls(parameters);
    WorkflowRun {
        workflow_arn: workflow_arn.to_owned(),
        route: SCHEDULE_ROUTE.into(),
        event_id: event_id.to_owned(),
        client_token: schedule_client_token(workflow_arn, scheduled_time, &parameters),
        parameters,
    }
}

/// `OverrideParameters` is a map that is not sparse: a null value is not a value AWS
/// promises to take, so a fact nobody gave is left out rather than sent as null.
fn without_nulls(mut parameters: Map<String, Value>) -> Map<String, Value> {
    parameters.retain(|_, v| !v.is_null());
    parameters
}
