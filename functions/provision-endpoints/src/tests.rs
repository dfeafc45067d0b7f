//! The handler against an in-memory EC2 and MWAA: idempotency and error paths.
use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

use common::Status;
use decide::{Endpoint, Environment, NewEndpoint, ENVIRONMENT_KEY, MANAGED_BY_KEY};

const QUEUE: &str =
    "arn:aws:sqs:us-east-1:210987654321:airflow-celery-6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b";

#[derive(Default)]
struct Fake {
    env: Option<Environment>,
    subnets: Vec<(String, String)>,
    endpoints: Mutex<Vec<Endpoint>>,
    calls: Mutex<Vec<String>>,
    /// The one call (by its AWS operation name) that is throttled on every attempt.
    throttled: Option<&'static str>,
    attempts: Mutex<usize>,
    /// GetEnvironment calls answered.
    reads: Mutex<usize>,
    /// Through whom each GetEnvironment / ListEnvironments read.
    readers: Mutex<Vec<Reader>>,
}

impl Fake {
    fn pending(access: &str) -> Fake {
        let fake = Fake {
            env: Some(Environment {
                name: "analytics-shared".into(),
                arn: Some(
                    "arn:aws:airflow:us-east-1:210987654321:environment/analytics-shared".into(),
                ),
                status: Status::Pending,
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

    /// Throttles `operation` of `service` if it is the throttled one: the error
    /// `Error::aws` makes of a ThrottlingException (common's tests show that classification).
    fn throttle(&self, service: &'static str, operation: &'static str) -> Result<(), Error> {
        if self.throttled != Some(operation) {
            return Ok(());
        }
        *self.attempts.lock().unwrap() += 1;
        Err(Error::transient(
            service,
            operation,
            "ThrottlingException: Rate exceeded",
        ))
    }
}

impl environments::Environments for Fake {
    async fn environment(
        &self,
        reader: &Reader,
        _name: &str,
    ) -> Result<Option<Environment>, Error> {
        self.readers.lock().unwrap().push(reader.clone());
        self.throttle("MWAA", "GetEnvironment")?;
        *self.reads.lock().unwrap() += 1;
        Ok(self.env.clone())
    }
    async fn environment_names(&self, reader: &Reader) -> Result<Vec<String>, Error> {
        self.readers.lock().unwrap().push(reader.clone());
        self.throttle("MWAA", "ListEnvironments")?;
        // The environment lives in the account of its ARN.
        Ok(self
            .env
            .iter()
            .filter(|e| e.arn.as_deref().and_then(decide::arn_account) == Some(reader.account()))
            .map(|e| e.name.clone())
            .collect())
    }
}

impl Ops for Fake {
    async fn subnet_vpcs(&self, subnets: &[String]) -> Result<Vec<(String, String)>, Error> {
        self.throttle("EC2", "DescribeSubnets")?;
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
    async fn managed_endpoints(&self, environment: Option<&str>) -> Result<Vec<Endpoint>, Error> {
        self.throttle("EC2", "DescribeVpcEndpoints")?;
        Ok(self
            .endpoints
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                e.tags.contains_key(MANAGED_BY_KEY)
                    && environment.is_none_or(|name| {
                        e.tags.get(ENVIRONMENT_KEY).map(String::as_str) == Some(name)
                    })
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
        "sparse" => include_str!("../../../events/mwaa-status-sparse.json"),
        _ => include_str!("../../../events/mwaa-status-deleted.json"),
    })
    .unwrap()
}

const BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// The prefix of the sample events' environment (`analytics-shared`).
const PREFIX: &str = "analytics-";

fn pending(access: &str) -> ProvisionEndpoints<Fake> {
    with_fake(Fake::pending(access))
}

fn with_fake(ops: Fake) -> ProvisionEndpoints<Fake> {
    ProvisionEndpoints {
        ops,
        environment_prefix: PREFIX.into(),
        accounts: accounts::Accounts::owner_only(SAMPLE_ACCOUNT),
    }
}

/// The account of the sample events: the owner's in these tests.
const SAMPLE_ACCOUNT: &str = "210987654321";

impl ProvisionEndpoints<Fake> {
    /// One invocation with the test's budget.
    async fn run(&self, event: Value) -> Result<Value, Error> {
        self.handle(event, common::Deadline::after(BUDGET)).await
    }
}

/// An environment whose VPC has no SQS endpoint but, if given, one with `policy`.
fn pending_with_sqs(policy: Option<&str>) -> Fake {
    let fake = Fake::pending("PUBLIC_ONLY");
    fake.endpoints.lock().unwrap().clear();
    if let Some(policy) = policy {
        fake.add_sqs(policy);
    }
    fake
}

/// The message Lambda is given for a set-up that must change (no retry helps), after
/// checking that is the error type and that nothing was changed.
async fn refused_as_misconfigured(fake: Fake) -> String {
    let function = with_fake(fake);
    let err = function.run(event("pending")).await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "ConfigurationInvalid");
    assert!(function.ops.mutations().is_empty());
    diagnostic.error_message
}

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
    let function = pending("PRIVATE_ONLY");
    for _ in 0..3 {
        let report = function.run(event("pending")).await.unwrap();
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
    let function = pending("PUBLIC_ONLY");
    let report = function.run(event("pending")).await.unwrap();
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    assert_eq!(report["created"][0]["kind"], "database");
}

#[tokio::test]
async fn no_sqs_endpoint_is_a_clear_error_and_nothing_is_created() {
    let err = refused_as_misconfigured(pending_with_sqs(None)).await;
    assert!(
        err.contains("analytics-shared") && err.contains("no SQS interface endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn a_policy_without_allow_is_a_clear_error_and_nothing_is_created() {
    let fake = pending_with_sqs(Some(
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#,
    ));
    let err = refused_as_misconfigured(fake).await;
    assert!(
        err.contains("no Allow statement") && err.contains("vpce-sqs0"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_names_are_rejected_before_any_call() {
    let function = pending("PUBLIC_ONLY");
    let mut bad = event("pending");
    bad["detail"]["name"] = json!("no/such name");
    let err = function.run(bad).await.unwrap_err().to_string();
    assert!(
        err.contains("detail.name") && err.contains("a2b5c3d4"),
        "{err}"
    );
    assert!(function.ops.mutations().is_empty());
}

#[tokio::test]
async fn deleted_removes_our_endpoints_and_the_queue_and_nothing_else() {
    let function = pending("PRIVATE_ONLY");
    function.run(event("pending")).await.unwrap();
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
        let report = function.run(event("deleted")).await.unwrap();
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
    let function = pending("PUBLIC_ONLY");
    let mut available = event("pending");
    available["detail"]["status"] = json!("AVAILABLE");
    assert_eq!(function.run(available).await.unwrap()["action"], "ignored");

    let mut fake = Fake::pending("PUBLIC_ONLY");
    fake.env.as_mut().unwrap().endpoint_management = "SERVICE".into();
    let function = with_fake(fake);
    assert_eq!(
        function.run(event("pending")).await.unwrap()["action"],
        "ignored"
    );
    assert!(function.ops.mutations().is_empty());
}

#[tokio::test]
async fn a_call_throttled_until_the_deadline_ends_the_invocation_as_retryable() {
    let cases = [
        ("GetEnvironment", "pending"),
        ("DescribeSubnets", "pending"),
        ("DescribeVpcEndpoints", "deleted"),
    ];
    for (operation, status) in cases {
        let fake = Fake {
            throttled: Some(operation),
            ..Fake::pending("PRIVATE_ONLY")
        };
        let function = with_fake(fake);
        let budget = std::time::Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = function
            .handle(event(status), common::Deadline::after(budget))
            .await
            .unwrap_err();
        // Retried while the deadline allowed, then given up (not sleeping past it).
        assert!(*function.ops.attempts.lock().unwrap() > 1, "{operation}");
        assert!(started.elapsed() < budget * 3, "{operation}");
        assert!(function.ops.mutations().is_empty(), "{operation}");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "Retryable", "{operation}");
        assert!(
            diagnostic.error_message.contains(operation),
            "{}",
            diagnostic.error_message
        );
    }
}

#[tokio::test]
async fn a_bad_event_ends_the_invocation_as_invalid_input_before_any_call() {
    let mut bad_name = event("pending");
    bad_name["detail"]["name"] = json!("no/such name");
    // (No status at all is the documented sparse event: see tests/sparse.rs.)
    let mut no_status = event("pending");
    no_status["detail"]["status"] = json!("");
    let mut wrong_source = event("pending");
    wrong_source["source"] = json!("mwaa-ops");
    for bad in [bad_name, no_status, wrong_source] {
        let function = with_fake(Fake {
            // Any call would fail loudly: none may be made.
            throttled: Some("GetEnvironment"),
            ..Fake::pending("PUBLIC_ONLY")
        });
        let err = function.run(bad.clone()).await.unwrap_err();
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "InvalidInput", "{bad}");
        assert!(diagnostic.error_message.contains("a2b5c3d4"), "{bad}");
        assert_eq!(*function.ops.attempts.lock().unwrap(), 0);
        assert!(function.ops.mutations().is_empty());
    }
}

mod participants;
mod sparse;

#[test]
fn every_event_of_ours_counts_created_and_deleted_endpoints_zero_included() {
    let change = parse_status_change(&event("pending")).unwrap();
    let named = |change: &StatusChange, prefix: &str, report: Value| {
        super::endpoint_metrics(change, prefix, &report)
            .into_iter()
            .map(|(m, v)| (m.name, v))
            .collect::<Vec<_>>()
    };
    let ours = |report: Value| named(&change, PREFIX, report);
    assert_eq!(
        ours(json!({"action": "provisioned", "created": [{"endpoint": "a"}, {"endpoint": "b"}]})),
        [("EndpointsCreated", 2.0), ("EndpointsDeleted", 0.0)]
    );
    assert_eq!(
        ours(json!({"action": "provisioned", "created": [], "existing": [{"endpoint": "a"}]})),
        [("EndpointsCreated", 0.0), ("EndpointsDeleted", 0.0)],
        "a redelivery: both lines, at zero"
    );
    assert_eq!(
        ours(json!({"action": "cleaned_up", "deleted": ["vpce-1"]})),
        [("EndpointsCreated", 0.0), ("EndpointsDeleted", 1.0)]
    );
    assert_eq!(
        ours(json!({"action": "ignored", "reason": "AVAILABLE needs nothing"})),
        [("EndpointsCreated", 0.0), ("EndpointsDeleted", 0.0)],
        "an environment of ours that needs nothing still has its lines"
    );
    assert_eq!(
        named(
            &change,
            "other-",
            json!({"action": "ignored", "reason": "not ours"})
        ),
        [],
        "another deployment's environment is not charted"
    );
}
