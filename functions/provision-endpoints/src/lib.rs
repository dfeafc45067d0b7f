//! provision-endpoints: an MWAA environment with `EndpointManagement=CUSTOMER` waits in
//! PENDING until its VPC endpoints exist. On PENDING this function creates them (database,
//! and webserver for PRIVATE_ONLY) and lets the environment's Celery queue through the
//! VPC's SQS endpoint policy; on DELETED it removes what it created and takes the queue out
//! of the policy again. Every step is idempotent: the same event many times changes nothing
//! more.
//!
//! parse (event.rs) -> decide (decide.rs) -> act (ops.rs) -> report (logs + JSON result).

pub mod decide;
pub mod event;
pub mod ops;

use serde_json::{json, Value};
use std::collections::BTreeSet;

use common::environment::is_valid_name as valid_environment_name;
use common::retry::with_retries;
use common::Deadline;
use common::Error;

use decide::{
    allow_queue, disallow_queue, endpoints_to_delete, ours, plan_endpoints, queue_after_delete,
    requirements, step, vpc_of, PolicyChange, Requirement, Step,
};
use event::{parse_status_change, StatusChange};
use ops::Ops;

/// The function's state for its lifetime: clients, built once per cold start.
pub struct ProvisionEndpoints<O> {
    pub ops: O,
}

impl<O: Ops> ProvisionEndpoints<O> {
    /// Handles one status-change event. `deadline` ends the retries of transient failures.
    /// A failure fails the invocation, so Lambda retries it and finally sends it to the
    /// failed-events queue, where the alerts pick it up.
    pub async fn handle(&self, event: Value, deadline: Deadline) -> Result<Value, Error> {
        let change = parse_status_change(&event)?;
        if !valid_environment_name(&change.name) {
            return Err(Error::InvalidEvent {
                event_id: change.event_id,
                field: "detail.name".into(),
                reason: format!(
                    "{:?} is not an MWAA environment name (a letter, then letters, digits, - or _; at most 80)",
                    change.name
                ),
            });
        }
        let result = match step(&change) {
            Step::Provision => self.provision(&change, deadline).await,
            Step::CleanUp => self.clean_up(&change, deadline).await,
            Step::Ignore(reason) => Ok(json!({"action": "ignored", "reason": reason})),
        };
        match result {
            Ok(mut report) => {
                report["event_id"] = json!(change.event_id);
                report["environment"] = json!(change.name);
                report["status"] = json!(change.status);
                tracing::info!(event_id = %change.event_id, environment = %change.name,
                    status = %change.status, report = %report, "status change handled");
                Ok(report)
            }
            Err(err) => {
                tracing::error!(event_id = %change.event_id, environment = %change.name,
                    status = %change.status, error = %err, retryable = err.is_retryable(),
                    "status change failed");
                Err(err)
            }
        }
    }

    async fn provision(&self, change: &StatusChange, deadline: Deadline) -> Result<Value, Error> {
        let ops = &self.ops;
        let Some(env) = with_retries(deadline, || ops.environment(&change.name)).await? else {
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
            return Err(Error::InvalidRequest {
                environment: env.name.clone(),
                reason: format!(
                    "VPC {vpc} has no SQS interface endpoint (com.amazonaws.REGION.sqs) whose \
                     policy could allow the Celery queue {}; create one, then redrive this event",
                    needs.queue
                ),
            });
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
                    return Err(Error::InvalidRequest {
                        environment: env.name.clone(),
                        reason: format!(
                            "cannot allow the Celery queue {} in the policy of SQS endpoint {}: {problem}",
                            needs.queue, endpoint.id
                        ),
                    })
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
        let candidates = with_retries(deadline, || ops.managed_endpoints(&change.name)).await?;
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

#[cfg(test)]
mod tests {
    //! The handler against an in-memory EC2 and MWAA: idempotency and error paths.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use decide::{Endpoint, Environment, NewEndpoint, ENVIRONMENT_KEY, MANAGED_BY_KEY};

    const QUEUE: &str =
        "arn:aws:sqs:us-east-1:210987654321:airflow-celery-6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b";

    #[derive(Default)]
    struct Fake {
        env: Option<Environment>,
        subnets: Vec<(String, String)>,
        endpoints: Mutex<Vec<Endpoint>>,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn pending(access: &str) -> Fake {
            let fake = Fake {
                env: Some(Environment {
                    name: "analytics-shared".into(),
                    arn: Some(
                        "arn:aws:airflow:us-east-1:210987654321:environment/analytics-shared"
                            .into(),
                    ),
                    status: "PENDING".into(),
                    endpoint_management: "CUSTOMER".into(),
                    access_mode: access.into(),
                    subnets: vec!["subnet-a".into(), "subnet-b".into()],
                    security_groups: vec!["sg-1".into()],
                    database_service: Some(
                        "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718".into(),
                    ),
                    webserver_service: Some(
                        "com.amazonaws.vpce.us-east-1.vpce-svc-0f1e2d3c4b5a69788".into(),
                    ),
                    celery_queue: Some(QUEUE.into()),
                }),
                subnets: vec![
                    ("subnet-a".into(), "vpc-1".into()),
                    ("subnet-b".into(), "vpc-1".into()),
                ],
                ..Fake::default()
            };
            fake.add_sqs(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"arn:aws:sqs:us-east-1:210987654321:other"}]}"#);
            fake
        }

        fn add_sqs(&self, policy: &str) {
            let mut endpoints = self.endpoints.lock().unwrap();
            let id = format!("vpce-sqs{}", endpoints.len());
            endpoints.push(Endpoint {
                id,
                vpc_id: "vpc-1".into(),
                service_name: "com.amazonaws.us-east-1.sqs".into(),
                endpoint_type: "Interface".into(),
                state: "available".into(),
                policy: Some(policy.into()),
                tags: BTreeMap::new(),
            });
        }

        fn live(&self, service_suffix: &str) -> Vec<Endpoint> {
            self.endpoints
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.is_live() && e.service_name.ends_with(service_suffix))
                .cloned()
                .collect()
        }

        fn mutations(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Ops for Fake {
        async fn environment(&self, _name: &str) -> Result<Option<Environment>, Error> {
            Ok(self.env.clone())
        }
        async fn subnet_vpcs(&self, subnets: &[String]) -> Result<Vec<(String, String)>, Error> {
            Ok(self
                .subnets
                .iter()
                .filter(|(s, _)| subnets.contains(s))
                .cloned()
                .collect())
        }
        async fn endpoints_in_vpc(&self, vpc: &str) -> Result<Vec<Endpoint>, Error> {
            Ok(self
                .endpoints
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.vpc_id == vpc)
                .cloned()
                .collect())
        }
        async fn managed_endpoints(&self, environment: &str) -> Result<Vec<Endpoint>, Error> {
            Ok(self
                .endpoints
                .lock()
                .unwrap()
                .iter()
                .filter(|e| {
                    e.tags.contains_key(MANAGED_BY_KEY)
                        && e.tags.get(ENVIRONMENT_KEY).map(String::as_str) == Some(environment)
                })
                .cloned()
                .collect())
        }
        async fn create_endpoint(&self, new: &NewEndpoint) -> Result<String, Error> {
            let mut endpoints = self.endpoints.lock().unwrap();
            let id = format!("vpce-new{}", endpoints.len());
            self.calls
                .lock()
                .unwrap()
                .push(format!("create {}", new.kind.as_str()));
            endpoints.push(Endpoint {
                id: id.clone(),
                vpc_id: new.vpc_id.clone(),
                service_name: new.service_name.clone(),
                endpoint_type: "Interface".into(),
                state: "available".into(),
                policy: None,
                tags: new.tags.iter().cloned().collect(),
            });
            Ok(id)
        }
        async fn set_policy(&self, endpoint_id: &str, policy: &str) -> Result<(), Error> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("policy {endpoint_id}"));
            for e in self.endpoints.lock().unwrap().iter_mut() {
                if e.id == endpoint_id {
                    e.policy = Some(policy.into());
                }
            }
            Ok(())
        }
        async fn delete_endpoints(&self, ids: &[String]) -> Result<(), Error> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("delete {}", ids.join(",")));
            for e in self.endpoints.lock().unwrap().iter_mut() {
                if ids.contains(&e.id) {
                    e.state = "deleted".into();
                }
            }
            Ok(())
        }
    }

    fn event(name: &str) -> Value {
        serde_json::from_str(match name {
            "pending" => include_str!("../../../events/mwaa-status-pending.json"),
            _ => include_str!("../../../events/mwaa-status-deleted.json"),
        })
        .unwrap()
    }

    const BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

    fn queue_count(fake: &Fake) -> usize {
        fake.live(".sqs")[0]
            .policy
            .as_deref()
            .unwrap()
            .matches(QUEUE)
            .count()
    }

    #[tokio::test]
    async fn three_deliveries_make_one_endpoint_per_service_and_one_policy_entry() {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PRIVATE_ONLY"),
        };
        for _ in 0..3 {
            let report = function
                .handle(event("pending"), common::Deadline::after(BUDGET))
                .await
                .unwrap();
            assert_eq!(report["action"], "provisioned");
        }
        let ops = &function.ops;
        assert_eq!(ops.live("vpce-svc-0a1b2c3d4e5f60718").len(), 1);
        assert_eq!(ops.live("vpce-svc-0f1e2d3c4b5a69788").len(), 1);
        assert_eq!(queue_count(ops), 1);
        assert_eq!(
            ops.mutations(),
            ["policy vpce-sqs0", "create database", "create webserver"]
        );
    }

    #[tokio::test]
    async fn public_environments_get_only_the_database_endpoint() {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PUBLIC_ONLY"),
        };
        let report = function
            .handle(event("pending"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        assert_eq!(report["created"].as_array().unwrap().len(), 1);
        assert_eq!(report["created"][0]["kind"], "database");
    }

    #[tokio::test]
    async fn no_sqs_endpoint_is_a_clear_error_and_nothing_is_created() {
        let fake = Fake::pending("PUBLIC_ONLY");
        fake.endpoints.lock().unwrap().clear();
        let function = ProvisionEndpoints { ops: fake };
        let err = function
            .handle(event("pending"), common::Deadline::after(BUDGET))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("analytics-shared") && err.contains("no SQS interface endpoint"),
            "{err}"
        );
        assert!(function.ops.mutations().is_empty());
    }

    #[tokio::test]
    async fn a_policy_without_allow_is_a_clear_error_and_nothing_is_created() {
        let fake = Fake::pending("PUBLIC_ONLY");
        fake.endpoints.lock().unwrap().clear();
        fake.add_sqs(
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#,
        );
        let function = ProvisionEndpoints { ops: fake };
        let err = function
            .handle(event("pending"), common::Deadline::after(BUDGET))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no Allow statement") && err.contains("vpce-sqs0"),
            "{err}"
        );
        assert!(function.ops.mutations().is_empty());
    }

    #[tokio::test]
    async fn bad_names_are_rejected_before_any_call() {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PUBLIC_ONLY"),
        };
        let mut bad = event("pending");
        bad["detail"]["name"] = json!("no/such name");
        let err = function
            .handle(bad, common::Deadline::after(BUDGET))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("detail.name") && err.contains("a2b5c3d4"),
            "{err}"
        );
        assert!(function.ops.mutations().is_empty());
    }

    #[tokio::test]
    async fn deleted_removes_our_endpoints_and_the_queue_and_nothing_else() {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PRIVATE_ONLY"),
        };
        function
            .handle(event("pending"), common::Deadline::after(BUDGET))
            .await
            .unwrap();
        // Someone else's endpoint to the same service, not tagged as ours.
        function.ops.endpoints.lock().unwrap().push(Endpoint {
            id: "vpce-foreign".into(),
            vpc_id: "vpc-1".into(),
            service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718".into(),
            endpoint_type: "Interface".into(),
            state: "available".into(),
            policy: None,
            tags: [(ENVIRONMENT_KEY.to_owned(), "analytics-shared".to_owned())].into(),
        });
        for delivery in 0..2 {
            let report = function
                .handle(event("deleted"), common::Deadline::after(BUDGET))
                .await
                .unwrap();
            assert_eq!(report["action"], "cleaned_up");
            assert_eq!(
                report["vpcs"],
                json!(["vpc-1"]),
                "delivery {delivery}: {report}"
            );
            let deleted = report["deleted"].as_array().unwrap().len();
            assert_eq!(deleted, if delivery == 0 { 2 } else { 0 }, "{report}");
        }
        let live: Vec<String> = function.ops.live("").iter().map(|e| e.id.clone()).collect();
        assert_eq!(live, ["vpce-sqs0", "vpce-foreign"]);
        assert_eq!(queue_count(&function.ops), 0);
        assert!(function.ops.live(".sqs")[0]
            .policy
            .as_deref()
            .unwrap()
            .contains(":other"));
    }

    #[tokio::test]
    async fn other_statuses_and_service_managed_environments_are_left_alone() {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PUBLIC_ONLY"),
        };
        let mut available = event("pending");
        available["detail"]["status"] = json!("AVAILABLE");
        assert_eq!(
            function
                .handle(available, common::Deadline::after(BUDGET))
                .await
                .unwrap()["action"],
            "ignored"
        );

        let mut fake = Fake::pending("PUBLIC_ONLY");
        fake.env.as_mut().unwrap().endpoint_management = "SERVICE".into();
        let function = ProvisionEndpoints { ops: fake };
        assert_eq!(
            function
                .handle(event("pending"), common::Deadline::after(BUDGET))
                .await
                .unwrap()["action"],
            "ignored"
        );
        assert!(function.ops.mutations().is_empty());
    }
}
