//! provision-endpoints on the bed: an environment created with EndpointManagement=CUSTOMER in
//! the local MWAA control plane goes PENDING and emits its status change on moto's
//! EventBridge -> the template's rule -> the function, as its built binary behind the bed's
//! Lambda service (its template role's key, its Timeout and variables), creates the endpoints
//! in moto EC2 -> the control plane sees them and makes the environment AVAILABLE. DELETED
//! cleans up. A failure is what Lambda gives (`errorType`, `errorMessage`).
//!
//! The rule takes every MWAA status change (the documented event has no field to filter
//! on); the function decides. Most tests here ask the control plane for the rich event (to
//! pick the PENDING one out); `sparse_events_pending_to_available_and_clean_up` runs the
//! loop on the event as AWS documents it.
//!
//! The template's reserved concurrency of 1 is not emulated (a second invocation while one
//! runs would get a new instance here, where Lambda throttles it); these tests invoke one at
//! a time, as the EventBridge rule's async invokes reach a function of concurrency 1.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VpcEndpointType};
use aws_sdk_mwaa::types::{EndpointManagement, WebserverAccessMode};
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::iam::Role;
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::rules::RuleQueue;
use mwaa_ops_tests::vpc::{endpoint_policy, endpoints_in, private_network, PrivateNetwork};
use mwaa_ops_tests::{session_without_airflow, Session};
use provision_endpoints::decide::{ENVIRONMENT_KEY, MANAGED_BY_KEY, QUEUE_KEY};
use serde_json::{json, Value};

const RULE: &str = "ProvisionEndpointsFunctionStatusChange";

/// These tests need no Airflow.
async fn bed() -> Session {
    session_without_airflow().await
}

/// A VPC with two subnets and a security group in moto, the template's rule to a queue,
/// and the template's functions on the bed's Lambda service.
struct Case {
    ec2: aws_sdk_ec2::Client,
    mwaa: aws_sdk_mwaa::Client,
    vpc: String,
    subnets: Vec<String>,
    security_group: String,
    rule: RuleQueue,
    functions: Functions,
    region: String,
}

/// A case whose control plane sends the rich event (detail name, status, queue, ...).
async fn case(bed: &Session) -> Case {
    bed.control("config", json!({"rich_events": true})).await;
    case_as_aws_sends(bed).await
}

/// A case whose control plane sends only what AWS documents (the bed's default).
async fn case_as_aws_sends(bed: &Session) -> Case {
    let config = bed.aws_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let PrivateNetwork {
        vpc,
        subnets,
        security_group,
    } = private_network(&ec2, &bed.region, 20).await;
    let rule = bed
        .rule_to_queue(
            RULE,
            &[
                ("EnvironmentNamePrefix", "pe-"),
                ("ArrivalBuckets", "unused"),
            ],
        )
        .await;
    let mwaa = bed.mwaa().await;
    // The function acts as its role of the template: the bed refuses what it may not do.
    let role =
        Role::new("ProvisionEndpointsFunctionRole").parameter("EnvironmentNamePrefix", "pe-");
    let as_role = bed.as_role(&role).await;
    let functions = Functions::start(
        bed,
        Deployment::new()
            .parameter("EnvironmentNamePrefix", "pe-")
            .parameter("ArrivalBuckets", "unused")
            .role_key("provision-endpoints", &as_role.key),
    )
    .await;
    Case {
        ec2,
        mwaa,
        vpc,
        subnets,
        security_group,
        rule,
        functions,
        region: bed.region.clone(),
    }
}

impl Case {
    /// The function invoked with `event`, as the rule's target is.
    async fn handle(&self, event: Value) -> Result<Value, Failure> {
        self.functions.invoke("provision-endpoints", &event).await
    }

    /// Creates a CUSTOMER-managed environment and waits for PENDING; returns its queue ARN.
    async fn pending(
        &self,
        name: &str,
        access: WebserverAccessMode,
    ) -> aws_sdk_mwaa::types::Environment {
        let mut new = NewEnvironment::new(name, "2.10.3");
        new.subnets = self.subnets.clone();
        new.security_groups = vec![self.security_group.clone()];
        new.endpoint_management = EndpointManagement::Customer;
        new.access_mode = access;
        new.create(&self.mwaa).await;
        wait_for_status(&self.mwaa, name, "PENDING", Duration::from_secs(30)).await
    }

    /// An SQS interface endpoint in the VPC with `policy`.
    async fn sqs_endpoint(&self, policy: &Value) -> String {
        self.endpoint(
            &format!("com.amazonaws.{}.sqs", self.region),
            Some(policy),
            &[],
        )
        .await
    }

    async fn endpoint(
        &self,
        service: &str,
        policy: Option<&Value>,
        tags: &[(&str, &str)],
    ) -> String {
        let mut request = self
            .ec2
            .create_vpc_endpoint()
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .vpc_id(&self.vpc)
            .service_name(service)
            .set_subnet_ids(Some(self.subnets.clone()))
            .security_group_ids(&self.security_group)
            .set_policy_document(policy.map(Value::to_string));
        if !tags.is_empty() {
            request = request.tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::VpcEndpoint)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                            .collect(),
                    ))
                    .build(),
            );
        }
        request
            .send()
            .await
            .unwrap()
            .vpc_endpoint
            .unwrap()
            .vpc_endpoint_id
            .unwrap()
    }

    /// The rich status-change events for `status` among those the template's rule delivered
    /// (it delivers every status; the others are dropped here).
    async fn events(&self, status: &str, min: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut events = vec![];
        let mut others = vec![];
        while events.len() < min && std::time::Instant::now() < deadline {
            for event in self.rule.take(1, Duration::from_secs(2)).await {
                match event["detail"]["status"] == status {
                    true => events.push(event),
                    false => others.push(event),
                }
            }
        }
        assert_eq!(events.len(), min, "{events:?}\nothers: {others:?}");
        events
    }

    /// The next `min` events the rule delivered for `name` (sparse: no status to pick by).
    async fn events_of(&self, name: &str, min: usize) -> Vec<Value> {
        let arn = format!("environment/{name}");
        let events = self.rule.take(min, Duration::from_secs(20)).await;
        assert!(
            events
                .iter()
                .all(|e| e["resources"][0].as_str().unwrap_or("").ends_with(&arn)),
            "{events:?}"
        );
        events
    }

    async fn endpoints_to(&self, service: &str) -> Vec<aws_sdk_ec2::types::VpcEndpoint> {
        self.ec2
            .describe_vpc_endpoints()
            .filters(
                Filter::builder()
                    .name("service-name")
                    .values(service)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .vpc_endpoints
            .unwrap_or_default()
    }

    async fn live_endpoints_to(&self, service: &str) -> Vec<aws_sdk_ec2::types::VpcEndpoint> {
        self.endpoints_to(service)
            .await
            .into_iter()
            .filter(|e| e.state().map(|s| s.as_str()) != Some("deleted"))
            .collect()
    }

    /// Ids of the endpoints not deleted to any of these services.
    async fn live_endpoint_ids(&self, services: &[&str]) -> Vec<String> {
        let mut ids = vec![];
        for service in services {
            let live = self.live_endpoints_to(service).await;
            ids.extend(
                live.iter()
                    .filter_map(|e| e.vpc_endpoint_id().map(str::to_owned)),
            );
        }
        ids
    }

    async fn policy(&self, endpoint: &str) -> Value {
        endpoint_policy(&self.ec2, endpoint).await
    }
}

fn allow(resource: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "sqs:*", "Resource": resource}]})
}

fn tag<'a>(endpoint: &'a aws_sdk_ec2::types::VpcEndpoint, key: &str) -> Option<&'a str> {
    endpoint
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The whole loop for one access mode, with three deliveries of the PENDING event and a
/// DELETED clean-up that leaves foreign endpoints alone.
async fn full_loop(name: &str, access: WebserverAccessMode) {
    let bed = bed().await;
    let case = case(&bed).await;
    let env = case.pending(name, access.clone()).await;
    let queue = env.celery_executor_queue().unwrap().to_owned();
    let other_queue = format!("arn:aws:sqs:{}:{}:unrelated", case.region, bed.account);
    let sqs = case.sqs_endpoint(&allow(json!(other_queue))).await;
    let database = env.database_vpc_endpoint_service().unwrap().to_owned();
    let webserver = env.webserver_vpc_endpoint_service().unwrap().to_owned();
    let private = access == WebserverAccessMode::PrivateOnly;

    let events = case.events("PENDING", 1).await;
    assert_eq!(events[0]["detail"]["name"], name);
    // At-least-once delivery: the same event three times.
    for delivery in 0..3 {
        let report = case
            .handle(events[0].clone())
            .await
            .unwrap_or_else(|e| panic!("delivery {delivery}: {e}"));
        assert_eq!(report["action"], "provisioned", "{report}");
        let created = report["created"].as_array().unwrap().len();
        assert_eq!(
            created,
            if delivery == 0 {
                1 + private as usize
            } else {
                0
            },
            "{report}"
        );
    }

    // The control plane saw the endpoints: the environment is AVAILABLE.
    wait_for_status(&case.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;

    let db = case.live_endpoints_to(&database).await;
    assert_eq!(db.len(), 1, "one database endpoint: {db:?}");
    let db = &db[0];
    assert_eq!(db.vpc_id(), Some(case.vpc.as_str()));
    assert_eq!(
        db.vpc_endpoint_type().map(|t| t.as_str()),
        Some("Interface")
    );
    let mut subnets = db.subnet_ids().to_vec();
    subnets.sort();
    let mut expected = case.subnets.clone();
    expected.sort();
    assert_eq!(subnets, expected);
    assert_eq!(
        db.groups()[0].group_id(),
        Some(case.security_group.as_str())
    );
    assert_eq!(tag(db, MANAGED_BY_KEY), Some("mwaa-ops"));
    assert_eq!(tag(db, ENVIRONMENT_KEY), Some(name));
    assert_eq!(tag(db, QUEUE_KEY), Some(queue.as_str()));
    assert_eq!(
        case.live_endpoints_to(&webserver).await.len(),
        private as usize,
        "a webserver endpoint only for PRIVATE_ONLY"
    );
    let policy = case.policy(&sqs).await;
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([other_queue, queue]),
        "exactly one entry for the queue after three deliveries"
    );

    // Foreign endpoints: not tagged as ours, or ours for another environment.
    let foreign_same_service = case
        .endpoint(&database, None, &[(ENVIRONMENT_KEY, name)])
        .await;
    let other_environment = case
        .endpoint(
            &format!(
                "com.amazonaws.vpce.{}.vpce-svc-0123456789abcdef0",
                case.region
            ),
            None,
            &[
                (MANAGED_BY_KEY, "mwaa-ops"),
                (ENVIRONMENT_KEY, "pe-someone-else"),
            ],
        )
        .await;

    case.mwaa
        .delete_environment()
        .name(name)
        .send()
        .await
        .unwrap();
    let deleted = case.events("DELETED", 1).await;
    for _ in 0..2 {
        let report = case.handle(deleted[0].clone()).await.unwrap();
        assert_eq!(report["action"], "cleaned_up", "{report}");
    }
    let still_there = case.live_endpoint_ids(&[&database, &webserver]).await;
    assert_eq!(
        still_there,
        [foreign_same_service],
        "only ours were deleted"
    );
    let others = case
        .ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&other_environment)
        .vpc_endpoint_ids(&sqs)
        .send()
        .await
        .unwrap();
    assert!(others
        .vpc_endpoints()
        .iter()
        .all(|e| e.state().map(|s| s.as_str()) == Some("available")));
    assert_eq!(
        case.policy(&sqs).await["Statement"][0]["Resource"],
        json!([other_queue]),
        "the queue left the policy again"
    );

    // Out of order: the PENDING event delivered once more, after the clean-up, recreates
    // nothing and does not put the queue back.
    let late = case.handle(events[0].clone()).await.unwrap();
    assert_eq!(late["action"], "ignored", "{late}");
    assert_eq!(
        case.live_endpoint_ids(&[&database, &webserver]).await,
        still_there,
        "a late PENDING created endpoints"
    );
    assert_eq!(
        case.policy(&sqs).await["Statement"][0]["Resource"],
        json!([other_queue]),
        "a late PENDING widened the policy again"
    );

    // The dashboard's lines, as the binary printed them (CloudWatch reads its output): one
    // document per event for this environment, both counters in each, zero included.
    let endpoints = 1 + private as usize;
    assert_eq!(
        endpoint_counts(&case.functions, name),
        [
            (endpoints, 0),
            (0, 0),
            (0, 0),
            (0, endpoints),
            (0, 0),
            (0, 0)
        ],
        "three PENDING, two DELETED and the late PENDING"
    );
}

/// (EndpointsCreated, EndpointsDeleted) of each metric document provision-endpoints printed
/// for `environment`, in order.
fn endpoint_counts(functions: &Functions, environment: &str) -> Vec<(usize, usize)> {
    functions
        .metric_values(
            "provision-endpoints",
            environment,
            &["EndpointsCreated", "EndpointsDeleted"],
        )
        .iter()
        .map(|v| (v[0] as usize, v[1] as usize))
        .collect()
}

#[tokio::test]
async fn public_only_pending_to_available_and_clean_up() {
    full_loop("pe-public", WebserverAccessMode::PublicOnly).await;
}

#[tokio::test]
async fn private_only_pending_to_available_and_clean_up() {
    full_loop("pe-private", WebserverAccessMode::PrivateOnly).await;
}

#[tokio::test]
async fn a_throttled_or_failing_control_plane_is_retried_and_provisions_once() {
    let bed = bed().await;
    let case = case(&bed).await;
    let name = "pe-faults";
    let env = case.pending(name, WebserverAccessMode::PublicOnly).await;
    let queue = env.celery_executor_queue().unwrap().to_owned();
    let other_queue = format!("arn:aws:sqs:{}:{}:unrelated", case.region, bed.account);
    let sqs = case.sqs_endpoint(&allow(json!(other_queue))).await;
    let events = case.events("PENDING", 1).await;
    bed.control(
        "faults",
        json!([
            {"operation": "GetEnvironment", "name": name, "kind": "throttle", "count": 2},
            {"operation": "GetEnvironment", "name": name, "kind": "server_error", "count": 1}
        ]),
    )
    .await;
    let report = case.handle(events[0].clone()).await.unwrap();
    assert_eq!(report["action"], "provisioned", "{report}");
    assert_eq!(report["created"].as_array().unwrap().len(), 1, "{report}");
    let faulted = bed
        .calls()
        .await
        .iter()
        .filter(|c| c["operation"] == "GetEnvironment" && c.get("fault").is_some())
        .count();
    assert_eq!(faulted, 3, "every injected fault was served");
    assert_eq!(
        case.policy(&sqs).await["Statement"][0]["Resource"],
        json!([other_queue, queue])
    );
    wait_for_status(&case.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
}

/// One PENDING environment handled with the SQS endpoint policy `policy(queue)`; returns
/// the handler's report and the policy afterwards.
async fn with_policy(name: &str, policy: impl Fn(&str) -> Value) -> (Value, Value, Value) {
    let bed = bed().await;
    let case = case(&bed).await;
    let env = case.pending(name, WebserverAccessMode::PublicOnly).await;
    let queue = env.celery_executor_queue().unwrap().to_owned();
    let before = policy(&queue);
    let sqs = case.sqs_endpoint(&before).await;
    let events = case.events("PENDING", 1).await;
    let report = case.handle(events[0].clone()).await.unwrap();
    wait_for_status(&case.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
    (report, before, case.policy(&sqs).await)
}

#[tokio::test]
async fn a_string_resource_gains_the_queue_as_a_list() {
    let (report, _, after) = with_policy("pe-string", |_| {
        allow(json!("arn:aws:sqs:us-east-1:123456789012:a"))
    })
    .await;
    let queue = report["queue"].as_str().unwrap();
    assert_eq!(
        after["Statement"][0]["Resource"],
        json!(["arn:aws:sqs:us-east-1:123456789012:a", queue])
    );
}

#[tokio::test]
async fn a_list_resource_gains_the_queue() {
    let (report, _, after) = with_policy("pe-list", |_| {
        allow(json!([
            "arn:aws:sqs:us-east-1:123456789012:a",
            "arn:aws:sqs:us-east-1:123456789012:b"
        ]))
    })
    .await;
    let queue = report["queue"].as_str().unwrap();
    assert_eq!(
        after["Statement"][0]["Resource"],
        json!([
            "arn:aws:sqs:us-east-1:123456789012:a",
            "arn:aws:sqs:us-east-1:123456789012:b",
            queue
        ])
    );
}

#[tokio::test]
async fn a_star_resource_is_left_as_it_is() {
    let (report, before, after) = with_policy("pe-star", |_| allow(json!("*"))).await;
    assert_eq!(after, before, "{report}");
    assert!(report["sqs_endpoints"][0]["policy"]
        .as_str()
        .unwrap()
        .contains("already allows"));
}

#[tokio::test]
async fn a_queue_already_present_is_left_as_it_is() {
    let (report, before, after) = with_policy("pe-present", |queue| {
        allow(json!(["arn:aws:sqs:us-east-1:123456789012:a", queue]))
    })
    .await;
    assert_eq!(after, before, "{report}");
    assert_eq!(
        report["sqs_endpoints"][0]["policy"],
        "the queue is already allowed"
    );
}

#[tokio::test]
async fn no_sqs_endpoint_is_a_clear_error_and_the_environment_stays_pending() {
    let bed = bed().await;
    let case = case(&bed).await;
    let env = case
        .pending("pe-no-sqs", WebserverAccessMode::PrivateOnly)
        .await;
    let events = case.events("PENDING", 1).await;
    // Not `Retryable`: Lambda's retries would not help, the event goes to the failed queue.
    case.handle(events[0].clone()).await.unwrap_err().assert_is(
        "ConfigurationInvalid",
        &["pe-no-sqs", "no SQS interface endpoint", &case.vpc],
    );
    assert!(case
        .live_endpoints_to(env.database_vpc_endpoint_service().unwrap())
        .await
        .is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    wait_for_status(&case.mwaa, "pe-no-sqs", "PENDING", Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_sqs_policy_without_allow_is_a_clear_error() {
    let bed = bed().await;
    let case = case(&bed).await;
    let env = case
        .pending("pe-deny", WebserverAccessMode::PublicOnly)
        .await;
    case.sqs_endpoint(&json!({"Statement": [{"Effect": "Deny", "Principal": "*",
        "Action": "sqs:DeleteQueue", "Resource": "*"}]}))
        .await;
    let events = case.events("PENDING", 1).await;
    case.handle(events[0].clone())
        .await
        .unwrap_err()
        .assert_is("ConfigurationInvalid", &["no Allow statement", "pe-deny"]);
    assert!(case
        .live_endpoints_to(env.database_vpc_endpoint_service().unwrap())
        .await
        .is_empty());
}

#[tokio::test]
async fn service_managed_environments_are_not_the_rules_business() {
    let bed = bed().await;
    let case = case(&bed).await;
    let everything = bed
        .pattern_to_queue("all-mwaa", &json!({"source": ["aws.airflow"]}))
        .await;
    let mut new = NewEnvironment::new("pe-service", "2.10.3");
    new.subnets = case.subnets.clone();
    new.security_groups = vec![case.security_group.clone()];
    new.create(&case.mwaa).await;
    wait_for_status(
        &case.mwaa,
        "pe-service",
        "AVAILABLE",
        Duration::from_secs(30),
    )
    .await;
    let emitted = everything.take(2, Duration::from_secs(10)).await;
    let statuses: Vec<&str> = emitted
        .iter()
        .filter_map(|e| e["detail"]["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["CREATING", "AVAILABLE"],
        "the control plane emitted them"
    );
    // The documented event has no status to filter on: the rule routes both, and the
    // function leaves them alone.
    let routed = case.rule.take(2, Duration::from_secs(10)).await;
    assert_eq!(routed.len(), 2, "{routed:?}");
    for event in routed {
        let report = case.handle(event).await.unwrap();
        assert_eq!(report["action"], "ignored", "{report}");
    }
    let in_vpc = endpoints_in(&case.ec2, &case.vpc).await;
    assert!(in_vpc.is_empty(), "{in_vpc:?}");
}

/// The loop on the event as AWS documents it: no detail, the environment ARN in
/// `resources`. Every status is read from GetEnvironment; once the environment is gone
/// (MWAA forgets it), the clean-up finds the queue on the endpoints' tags.
#[tokio::test]
async fn sparse_events_pending_to_available_and_clean_up() {
    let bed = bed().await;
    let case = case_as_aws_sends(&bed).await;
    let name = "pe-sparse";
    let env = case.pending(name, WebserverAccessMode::PrivateOnly).await;
    let queue = env.celery_executor_queue().unwrap().to_owned();
    let database = env.database_vpc_endpoint_service().unwrap().to_owned();
    let webserver = env.webserver_vpc_endpoint_service().unwrap().to_owned();
    let other_queue = format!("arn:aws:sqs:{}:{}:unrelated", case.region, bed.account);
    let sqs = case.sqs_endpoint(&allow(json!(other_queue))).await;
    let handle = |event: Value| async { case.handle(event).await.unwrap() };

    // CREATING and PENDING, both read as PENDING now: one provisions, the other finds
    // everything there (or the environment already AVAILABLE).
    let created = case.events_of(name, 2).await;
    let mut made = 0;
    for event in created {
        assert_eq!(event["detail"], json!({}), "the bed sends the sparse event");
        let report = handle(event).await;
        assert_eq!(report["status_from"], "GetEnvironment", "{report}");
        match report["action"].as_str() {
            Some("provisioned") => made += report["created"].as_array().unwrap().len(),
            _ => assert_eq!(report["status"], "AVAILABLE", "{report}"),
        }
    }
    assert_eq!(made, 2, "database and webserver endpoints, once");
    wait_for_status(&case.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
    assert_eq!(case.live_endpoints_to(&database).await.len(), 1);
    assert_eq!(case.live_endpoints_to(&webserver).await.len(), 1);
    assert_eq!(
        case.policy(&sqs).await["Statement"][0]["Resource"],
        json!([other_queue, queue])
    );
    let available = case.events_of(name, 1).await;
    let report = handle(available[0].clone()).await;
    assert_eq!(
        (report["action"].as_str(), report["status"].as_str()),
        (Some("ignored"), Some("AVAILABLE")),
        "{report}"
    );

    case.mwaa
        .delete_environment()
        .name(name)
        .send()
        .await
        .unwrap();
    // DELETING and DELETED; by the time they are handled MWAA no longer knows it.
    let deleted = case.events_of(name, 2).await;
    let gone = async {
        loop {
            match case.mwaa.get_environment().name(name).send().await {
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    break
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .expect("the environment is gone");
    let mut removed = 0;
    for event in deleted {
        let report = handle(event).await;
        assert_eq!(
            (report["action"].as_str(), report["status"].as_str()),
            (Some("cleaned_up"), Some("NOT_FOUND")),
            "{report}"
        );
        assert_eq!(
            report["queue"],
            json!(queue),
            "from the endpoints' tags: {report}"
        );
        removed += report["deleted"].as_array().unwrap().len();
    }
    assert_eq!(removed, 2, "both endpoints, once");
    assert!(case
        .live_endpoint_ids(&[&database, &webserver])
        .await
        .is_empty());
    assert_eq!(
        case.policy(&sqs).await["Statement"][0]["Resource"],
        json!([other_queue]),
        "the queue left the policy again"
    );
    // Five events (CREATING, PENDING, AVAILABLE, DELETING, DELETED), five documents: the
    // two endpoints counted once created and once deleted.
    let counts = endpoint_counts(&case.functions, name);
    assert_eq!(counts.len(), 5, "{counts:?}");
    let created: usize = counts.iter().map(|(c, _)| c).sum();
    let deleted: usize = counts.iter().map(|(_, d)| d).sum();
    assert_eq!((created, deleted), (2, 2), "{counts:?}");
    assert_eq!(counts[2], (0, 0), "AVAILABLE changes nothing: {counts:?}");
}

/// The template's reconcile schedule (SAM `Type: Schedule`), fired once on the bed, delivers its
/// `{"reconcile": {}}` input to provision-endpoints' binary by an asynchronous invoke, as
/// EventBridge does; the function, held to its role, reconciles.
#[tokio::test]
async fn the_reconcile_schedule_delivers_its_input_by_an_asynchronous_invoke() {
    let bed = bed().await;
    let role =
        Role::new("ProvisionEndpointsFunctionRole").parameter("EnvironmentNamePrefix", "pe-");
    let as_role = bed.as_role(&role).await;
    let functions = Functions::start(
        &bed,
        Deployment::new()
            .parameter("EnvironmentNamePrefix", "pe-")
            .parameter("ArrivalBuckets", "unused")
            .role_key("provision-endpoints", &as_role.key)
            .rule("ProvisionEndpointsFunctionReconcile"),
    )
    .await;
    let delivery = functions.fire("ProvisionEndpointsFunctionReconcile").await;
    assert_eq!(delivery["outcome"], "delivered", "{delivery}");
    assert_eq!(delivery["event"], json!({"reconcile": {}}), "{delivery}");
    let invocations = functions
        .ended_asynchronous_invocations(1, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    let invocation = &invocations[0];
    assert_eq!(invocation["requestId"], delivery["requestId"]);
    assert_eq!(invocation["function"], "provision-endpoints");
    assert_eq!(invocation["outcome"], "succeeded", "{invocation}");
    assert_eq!(
        invocation["response"]["action"], "reconciled",
        "{invocation}"
    );
}
