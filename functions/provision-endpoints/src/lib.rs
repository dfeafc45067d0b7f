//! provision-endpoints: an MWAA environment with `EndpointManagement=CUSTOMER` waits in
//! PENDING until its VPC endpoints exist. On PENDING this function creates them (database,
//! and webserver for PRIVATE_ONLY) and lets the environment's Celery queue through the
//! VPC's SQS endpoint policy; on DELETED it removes what it created and takes the queue out
//! of the policy again. Every step is idempotent: the same event many times changes nothing
//! more.
//!
//! parse (event.rs) -> decide (decide.rs) -> act (ops.rs) -> report (logs + JSON result).

pub mod accounts;
pub mod decide;
pub mod environments;
pub mod event;
pub mod ops;
pub mod reconcile;

use serde_json::{json, Value};
use std::collections::BTreeSet;

use common::retry::with_retries;
use common::Deadline;
use common::{Error, Status};

use accounts::{Accounts, Reader};
use decide::Environment;
use decide::{
    allow_queue, cannot_provision, disallow_queue, endpoints_to_delete, not_ours, ours,
    plan_endpoints, queue_after_delete, requirements, step, vpc_of, PolicyChange, Requirement,
    Step,
};
use environments::Environments;
use event::{parse_status_change, StatusChange};
use ops::Ops;

/// The function's state for its lifetime: clients, built once per cold start.
pub struct ProvisionEndpoints<O> {
    pub ops: O,
    /// The stack's `EnvironmentNamePrefix` (`ENVIRONMENT_NAME_PREFIX`): other environments
    /// are ignored, as the rule cannot filter the documented event by name.
    pub environment_prefix: String,
    /// The owner's account and the participants whose environments this deployment serves.
    pub accounts: Accounts,
}

impl<O: Ops + Environments> ProvisionEndpoints<O> {
    /// Handles one status-change event. `deadline` ends the retries of transient failures.
    /// A failure fails the invocation, so Lambda retries it and finally sends it to the
    /// failed-events queue, where the alerts pick it up.
    pub async fn handle(&self, event: Value, deadline: Deadline) -> Result<Value, Error> {
        common::metrics::within("provision-endpoints", self.handle_event(event, deadline)).await
    }

    async fn handle_event(&self, event: Value, deadline: Deadline) -> Result<Value, Error> {
        if reconcile::is_reconcile(&event) {
            return self.reconcile(deadline).await;
        }
        let change = parse_status_change(&event)?;
        let told_by = match change.status {
            Some(_) => "event",
            None => "GetEnvironment",
        };
        match self.act(&change, deadline).await {
            Ok(mut report) => {
                report["event_id"] = json!(change.event_id);
                report["environment"] = json!(change.name);
                report["account"] = json!(change.account);
                report["status_from"] = json!(told_by);
                common::metrics::emit(
                    "provision-endpoints",
                    &change.name,
                    &endpoint_metrics(&change, &self.environment_prefix, &report),
                );
                tracing::info!(event_id = %change.event_id, environment = %change.name,
                    status = %report["status"], status_from = told_by, report = %report,
                    "status change handled");
                Ok(report)
            }
            Err(err) => {
                tracing::error!(event_id = %change.event_id, environment = %change.name,
                    event_status = ?change.status, status_from = told_by, error = %err,
                    retryable = err.is_retryable(), "status change failed");
                Err(err)
            }
        }
    }

    /// Another deployment's environment is left alone before any call; else the status
    /// decides what to do.
    async fn act(&self, change: &StatusChange, deadline: Deadline) -> Result<Value, Error> {
        // An unlisted account is refused before anything is read or changed.
        let reader = self
            .accounts
            .reader(&change.event_id, change.account.as_deref())?;
        if let Some(reason) = not_ours(change, &self.environment_prefix) {
            return Ok(json!({"action": "ignored", "reason": reason}));
        }
        let (status, read) = self.status(&reader, change, deadline).await?;
        let mut report = match step(&status) {
            Step::Provision => self.provision(&reader, change, read, deadline).await?,
            Step::CleanUp => self.clean_up(change, deadline).await?,
            Step::Ignore(reason) => json!({"action": "ignored", "reason": reason}),
        };
        report["status"] = json!(status.as_str());
        Ok(report)
    }

    /// The status to act on: the event's when it says one, else GetEnvironment's (then
    /// also what it read, so provisioning does not ask again).
    async fn status(
        &self,
        reader: &Reader,
        change: &StatusChange,
        deadline: Deadline,
    ) -> Result<(Status, Option<Option<Environment>>), Error> {
        if let Some(status) = &change.status {
            return Ok((status.clone(), None));
        }
        let env = with_retries(deadline, || self.ops.environment(reader, &change.name)).await?;
        let status = env.as_ref().map_or(Status::NotFound, |e| e.status.clone());
        Ok((status, Some(env)))
    }

    async fn provision(
        &self,
        reader: &Reader,
        change: &StatusChange,
        read: Option<Option<Environment>>,
        deadline: Deadline,
    ) -> Result<Value, Error> {
        let ops = &self.ops;
        let env = match read {
            Some(env) => env,
            None => with_retries(deadline, || ops.environment(reader, &change.name)).await?,
        };
        let Some(env) = env else {
            return Ok(
                json!({"action": "ignored", "reason": "the environment does not exist (any more)"}),
            );
        };
        let needs = match requirements(&env)? {
            Requirement::Needs(needs) => needs,
            Requirement::Nothing(reason) => {
                return Ok(json!({"action": "ignored", "reason": reason}))
            }
        };
        let found = with_retries(deadline, || ops.subnet_vpcs(&env.subnets)).await?;
        let vpc = vpc_of(&env.name, &env.subnets, &found)?;
        let in_vpc = with_retries(deadline, || ops.endpoints_in_vpc(&vpc)).await?;

        // The SQS policy is checked before anything is created: an environment whose
        // workers cannot reach their queue must not become AVAILABLE.
        let sqs: Vec<_> = in_vpc.iter().filter(|e| e.is_sqs()).collect();
        if sqs.is_empty() {
            return Err(cannot_provision(
                &env.name,
                format!(
                    "VPC {vpc} has no SQS interface endpoint (com.amazonaws.REGION.sqs) whose \
                     policy could allow the Celery queue {}; create one, then redrive this event",
                    needs.queue
                ),
            ));
        }
        let mut policy_updates = vec![];
        let mut policy_report = vec![];
        for endpoint in &sqs {
            let current = endpoint.policy.as_deref().unwrap_or("");
            match allow_queue(current, &needs.queue) {
                Ok(PolicyChange::Changed(policy)) => {
                    policy_report.push(json!({"endpoint": endpoint.id, "policy": "queue added"}));
                    policy_updates.push((endpoint.id.clone(), policy));
                }
                Ok(PolicyChange::Unchanged(why)) => {
                    policy_report.push(json!({"endpoint": endpoint.id, "policy": why}))
                }
                Err(problem) => {
                    return Err(cannot_provision(
                        &env.name,
                        format!(
                            "cannot allow the Celery queue {} in the policy of SQS endpoint {}: {problem}",
                            needs.queue, endpoint.id
                        ),
                    ))
                }
            }
        }
        for (id, policy) in &policy_updates {
            with_retries(deadline, || ops.set_policy(id, policy)).await?;
            tracing::info!(environment = %env.name, endpoint = %id, queue = %needs.queue,
                "Celery queue added to the SQS endpoint policy");
        }

        let plan = plan_endpoints(&env, &needs, &vpc, &in_vpc);
        let mut created = vec![];
        for new in &plan.create {
            let id = with_retries(deadline, || ops.create_endpoint(new)).await?;
            tracing::info!(environment = %env.name, endpoint = %id, kind = new.kind.as_str(),
                service = %new.service_name, vpc = %vpc, "endpoint created");
            created.push(json!({"kind": new.kind, "endpoint": id, "service": new.service_name}));
        }
        let existing: Vec<Value> = plan
            .existing
            .iter()
            .map(|(kind, id)| json!({"kind": kind, "endpoint": id}))
            .collect();
        Ok(json!({
            "action": "provisioned",
            "vpc": vpc,
            "created": created,
            "existing": existing,
            "sqs_endpoints": policy_report,
            "queue": needs.queue,
        }))
    }

    async fn clean_up(&self, change: &StatusChange, deadline: Deadline) -> Result<Value, Error> {
        let ops = &self.ops;
        let candidates =
            with_retries(deadline, || ops.managed_endpoints(Some(&change.name))).await?;
        let ours = ours(change, &candidates);
        let ids: Vec<String> = endpoints_to_delete(change, &candidates)
            .iter()
            .map(|e| e.id.clone())
            .collect();
        if !ids.is_empty() {
            with_retries(deadline, || ops.delete_endpoints(&ids)).await?;
            tracing::info!(environment = %change.name, endpoints = ?ids, "endpoints deleted");
        }
        let mut vpcs: BTreeSet<String> = ours.iter().map(|e| e.vpc_id.clone()).collect();
        if !change.subnets.is_empty() {
            // The subnets may be gone with the environment; then our endpoints name the VPC.
            match with_retries(deadline, || ops.subnet_vpcs(&change.subnets)).await {
                Ok(found) => vpcs.extend(found.into_iter().map(|(_, vpc)| vpc)),
                Err(err) => tracing::warn!(environment = %change.name, error = %err,
                    "the event's subnets could not be read"),
            }
        }
        let queue = queue_after_delete(change, &ours);
        let mut policy_report = vec![];
        match &queue {
            None => tracing::warn!(environment = %change.name,
                "no Celery queue known (neither in the event nor on our endpoints): SQS policy left as it is"),
            Some(queue) => {
                for vpc in &vpcs {
                    let in_vpc = with_retries(deadline, || ops.endpoints_in_vpc(vpc)).await?;
                    for endpoint in in_vpc.iter().filter(|e| e.is_sqs()) {
                        let current = endpoint.policy.as_deref().unwrap_or("");
                        match disallow_queue(current, queue) {
                            Ok(PolicyChange::Changed(policy)) => {
                                with_retries(deadline, || ops.set_policy(&endpoint.id, &policy))
                                    .await?;
                                tracing::info!(environment = %change.name, endpoint = %endpoint.id,
                                    queue = %queue, "Celery queue removed from the SQS endpoint policy");
                                policy_report.push(
                                    json!({"endpoint": endpoint.id, "policy": "queue removed"}),
                                );
                            }
                            Ok(PolicyChange::Unchanged(why)) => {
                                policy_report.push(json!({"endpoint": endpoint.id, "policy": why}))
                            }
                            // Not ours to repair on the way out; say so and carry on.
                            Err(problem) => {
                                tracing::warn!(environment = %change.name, endpoint = %endpoint.id,
                                    problem = %problem, "SQS endpoint policy left as it is");
                                policy_report.push(
                                    json!({"endpoint": endpoint.id, "policy": problem.to_string()}),
                                )
                            }
                        }
                    }
                }
            }
        }
        Ok(json!({
            "action": "cleaned_up",
            "deleted": ids,
            "vpcs": vpcs,
            "queue": queue,
            "sqs_endpoints": policy_report,
        }))
    }
}

/// Endpoints created and deleted for one handled event of an environment this deployment
/// looks after: both counters, 0 when the report lists none, so the dashboard has each
/// environment's lines from its first event on (CloudWatch draws no line for a metric never
/// sent). Another deployment's environment gets none: its name is not ours to chart.
fn endpoint_metrics(
    change: &StatusChange,
    prefix: &str,
    report: &Value,
) -> Vec<(common::metrics::Metric, f64)> {
    if not_ours(change, prefix).is_some() {
        return vec![];
    }
    [
        (common::metrics::ENDPOINTS_CREATED, "created"),
        (common::metrics::ENDPOINTS_DELETED, "deleted"),
    ]
    .into_iter()
    .map(|(metric, key)| (metric, report[key].as_array().map_or(0, Vec::len) as f64))
    .collect()
}

#[cfg(test)]
mod tests;
