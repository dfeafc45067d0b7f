//! provision-endpoints across accounts on the bed. The owner (moto's default account) shares
//! its VPC; participants deploy `infra/participant.yaml` (through moto's CloudFormation) and
//! create environments in the local MWAA control plane as themselves. Their status changes go
//! participant bus -> the participant stack's rule -> the owner's default bus (its policy from
//! the template) -> the template's rule -> a queue, and the function's built binary, behind the
//! bed's Lambda service with the template's parameters for these participants and a key of
//! the owner's function role as its credentials (as Lambda hands it one; the bed's IAM holds
//! it to the template's ProvisionEndpointsFunctionRole), reads each environment through the
//! participant's role (a session the bed holds to that role's statements as deployed).
//!
//! The events are the sparse ones AWS documents: the account comes from the envelope, the
//! status from GetEnvironment.

use std::time::Duration;

use aws_sdk_ec2::types::VpcEndpointType;
use aws_sdk_mwaa::types::{EndpointManagement, WebserverAccessMode};
use mwaa_ops_tests::accounts::{AccountsSetUp, SharedVpcAccounts};
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::rules::RuleQueue;
use mwaa_ops_tests::vpc::{endpoint_policy, endpoints_in, private_network};
use mwaa_ops_tests::{session_without_airflow, Session};
use provision_endpoints::decide::{ACCOUNT_KEY, ENVIRONMENT_KEY};
use serde_json::{json, Value};

const EXTERNAL_ID: &str = "mwaa-ops-bed-external-id";
const P1: &str = "111111111111";
const P2: &str = "222222222222";
const P3: &str = "333333333333";
const NAME: &str = "pe-analytics";

/// The owner's VPC (two subnets, a security group, an SQS endpoint letting one unrelated
/// queue through), the template's rule to a queue, and the function as the owner deploys it
/// for `listed` participants.
struct Owner {
    ec2: aws_sdk_ec2::Client,
    vpc: String,
    subnets: Vec<String>,
    security_group: String,
    sqs_endpoint: String,
    unrelated_queue: String,
    rule: RuleQueue,
    functions: Functions,
    accounts: SharedVpcAccounts,
}

/// Participants (with their ExternalId when it is not the owner's) and unlisted accounts.
fn set_up<'a>(
    participants: &[(&'a str, Option<&'a str>)],
    unlisted: &[&'a str],
) -> AccountsSetUp<'a> {
    AccountsSetUp {
        external_id: EXTERNAL_ID,
        prefix: "pe-",
        participants: participants.to_vec(),
        unlisted: unlisted.to_vec(),
        without: vec![],
    }
}

async fn owner(bed: &Session, set_up: &AccountsSetUp<'_>, listed: &[&str]) -> Owner {
    let accounts = bed.shared_vpc_accounts(set_up);
    let admin = bed.aws_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&admin);
    let network = private_network(&ec2, &bed.region, 30).await;
    let unrelated_queue = format!("arn:aws:sqs:{}:{}:unrelated", bed.region, bed.account);
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": "*", "Action": "sqs:*", "Resource": unrelated_queue}]});
    let sqs_endpoint = ec2
        .create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(&network.vpc)
        .service_name(format!("com.amazonaws.{}.sqs", bed.region))
        .set_subnet_ids(Some(network.subnets.clone()))
        .security_group_ids(&network.security_group)
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap()
        .vpc_endpoint
        .unwrap()
        .vpc_endpoint_id
        .unwrap();
    let rule = bed
        .rule_to_queue(
            "ProvisionEndpointsFunctionStatusChange",
            &[
                ("EnvironmentNamePrefix", "pe-"),
                ("ArrivalBuckets", "unused"),
            ],
        )
        .await;
    // The function acts as its role of the template, as in Lambda: the bed holds its calls
    // to the role's statements, and the sessions it gets in participant accounts to the
    // participant role's.
    let functions = Functions::start(
        bed,
        Deployment::new()
            .parameter("EnvironmentNamePrefix", "pe-")
            .parameter("ArrivalBuckets", "unused")
            .parameter("ParticipantAccounts", &listed.join(","))
            .parameter("ParticipantRoleName", "mwaa-ops-participant")
            .parameter("ParticipantExternalId", EXTERNAL_ID)
            .role_key("provision-endpoints", &accounts.function.access_key_id),
    )
    .await;
    Owner {
        ec2,
        vpc: network.vpc,
        subnets: network.subnets,
        security_group: network.security_group,
        sqs_endpoint,
        unrelated_queue,
        rule,
        functions,
        accounts,
    }
}

impl Owner {
    /// The MWAA client of a participant's administrator.
    async fn participant_mwaa(&self, bed: &Session, account: &str) -> aws_sdk_mwaa::Client {
        let keys = &self.accounts.participants[account];
        common::aws::mwaa_client(&bed.mwaa_config(&bed.aws_config_as(keys).await))
    }

    /// A participant creates a CUSTOMER-managed environment in the owner's subnets.
    async fn pending(&self, mwaa: &aws_sdk_mwaa::Client) -> aws_sdk_mwaa::types::Environment {
        let mut new = NewEnvironment::new(NAME, "2.10.3");
        new.subnets = self.subnets.clone();
        new.security_groups = vec![self.security_group.clone()];
        new.endpoint_management = EndpointManagement::Customer;
        new.access_mode = WebserverAccessMode::PrivateOnly;
        new.create(mwaa).await;
        wait_for_status(mwaa, NAME, "PENDING", Duration::from_secs(30)).await
    }

    /// The function invoked with `event`, as the rule's target (or the reconciler's schedule).
    async fn handle(&self, event: Value) -> Result<Value, Failure> {
        self.functions.invoke("provision-endpoints", &event).await
    }

    /// Every event the owner's rule got so far, at least `min`.
    async fn events(&self, min: usize) -> Vec<Value> {
        self.rule.take(min, Duration::from_secs(20)).await
    }

    /// Our live endpoints in the owner's VPC: (account tag, environment tag, service).
    async fn ours(&self) -> Vec<(String, String, String)> {
        let tag = |e: &aws_sdk_ec2::types::VpcEndpoint, key: &str| {
            e.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .unwrap_or_default()
                .to_owned()
        };
        let mut ours: Vec<_> = endpoints_in(&self.ec2, &self.vpc)
            .await
            .iter()
            .filter(|e| e.state().map(|s| s.as_str()) != Some("deleted"))
            .filter(|e| !tag(e, ENVIRONMENT_KEY).is_empty())
            .map(|e| {
                (
                    tag(e, ACCOUNT_KEY),
                    tag(e, ENVIRONMENT_KEY),
                    e.service_name().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        ours.sort();
        ours
    }

    /// (EndpointsCreated, EndpointsDeleted) of each metric document the function printed
    /// for `pe-analytics` (whichever account's), in order.
    fn endpoint_counts(&self) -> Vec<(usize, usize)> {
        self.functions
            .metric_values(
                "provision-endpoints",
                NAME,
                &["EndpointsCreated", "EndpointsDeleted"],
            )
            .iter()
            .map(|v| (v[0] as usize, v[1] as usize))
            .collect()
    }

    async fn policy_resources(&self) -> Value {
        let policy = endpoint_policy(&self.ec2, &self.sqs_endpoint).await;
        policy["Statement"][0]["Resource"].clone()
    }
}

/// The email notify sends for the Lambda on-failure record of `event` failing with `err`
/// after every retry (the record's shape as in `events/lambda-destination-failure.json`).
fn gave_up_alert(event: &Value, err: &Failure) -> String {
    let record = json!({
        "version": "1.0",
        "timestamp": "2026-11-30T10:00:00.000Z",
        "requestContext": {"requestId": "a1b2c3d4-0000-4000-8000-000000000018",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:mwaa-ops-provision-endpoints:$LATEST",
            "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
            "functionError": "Unhandled"},
        "responsePayload": {"errorType": err.error_type, "errorMessage": err.error_message},
    });
    let failure = notify::event::parse_failure(&record).expect("an on-failure record");
    let settings = notify::decide::Settings {
        region: "us-east-1".into(),
        pending_minutes: 60,
        environment_prefix: "pe-".into(),
    };
    match notify::decide::decide(&failure, &Default::default(), &settings) {
        notify::decide::Plan::Send(alert) => format!("{}\n{}", alert.subject(), alert.body()),
        other => panic!("notify would not email it: {other:?}"),
    }
}

fn account_of(event: &Value) -> &str {
    event["account"].as_str().unwrap_or_default()
}

async fn wait_gone(mwaa: &aws_sdk_mwaa::Client) {
    for _ in 0..150 {
        match mwaa.get_environment().name(NAME).send().await {
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("{NAME} was not deleted");
}

/// Two participants, each with an environment named `pe-analytics` in the owner's VPC: each
/// gets its endpoints (tagged with its account) and its Celery queue (with its account id) in
/// the owner's SQS endpoint policy; one deleted takes away exactly its own.
#[tokio::test]
async fn participants_pending_environments_get_endpoints_in_the_owners_vpc_and_leave_cleanly() {
    let bed = session_without_airflow().await;
    let accounts = set_up(&[(P1, None), (P2, None)], &[]);
    let owner = owner(&bed, &accounts, &[P1, P2]).await;
    let (m1, m2) = (
        owner.participant_mwaa(&bed, P1).await,
        owner.participant_mwaa(&bed, P2).await,
    );
    let e1 = owner.pending(&m1).await;
    let e2 = owner.pending(&m2).await;
    let (q1, q2) = (
        e1.celery_executor_queue().unwrap().to_owned(),
        e2.celery_executor_queue().unwrap().to_owned(),
    );
    assert_eq!(
        (q1.split(':').nth(4), q2.split(':').nth(4)),
        (Some(P1), Some(P2))
    );

    // CREATING and PENDING of each, forwarded with the participant's account; at least
    // once: each is handed over twice.
    let events = owner.events(4).await;
    assert_eq!(events.len(), 4, "{events:?}");
    let mut made = 0;
    for event in &events {
        assert!([P1, P2].contains(&account_of(event)), "{event}");
        assert_eq!(
            event["resources"][0],
            format!(
                "arn:aws:airflow:{}:{}:environment/{NAME}",
                bed.region,
                account_of(event)
            )
        );
        for _ in 0..2 {
            let report = owner.handle(event.clone()).await.unwrap();
            assert_eq!(report["account"], account_of(event), "{report}");
            if report["action"] == "provisioned" {
                made += report["created"].as_array().unwrap().len();
            }
        }
    }
    assert_eq!(made, 4, "database and webserver endpoints for each, once");
    wait_for_status(&m1, NAME, "AVAILABLE", Duration::from_secs(30)).await;
    wait_for_status(&m2, NAME, "AVAILABLE", Duration::from_secs(30)).await;
    let ours = owner.ours().await;
    let accounts: Vec<&str> = ours.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(accounts, [P1, P1, P2, P2], "{ours:?}");
    assert!(ours.iter().all(|(_, name, _)| name == NAME));
    assert_eq!(
        owner.policy_resources().await,
        json!([owner.unrelated_queue, q1, q2])
    );

    // P1 deletes its environment: exactly its endpoints and queue go.
    let _ = owner.events(2).await; // the AVAILABLE ones
    m1.delete_environment().name(NAME).send().await.unwrap();
    wait_gone(&m1).await;
    let deleted = owner.events(2).await;
    for event in &deleted {
        assert_eq!(account_of(event), P1);
        let report = owner.handle(event.clone()).await.unwrap();
        assert_eq!(report["action"], "cleaned_up", "{report}");
    }
    let left: Vec<String> = owner.ours().await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(left, [P2, P2]);
    assert_eq!(
        owner.policy_resources().await,
        json!([owner.unrelated_queue, q2])
    );
    wait_for_status(&m2, NAME, "AVAILABLE", Duration::from_secs(1)).await;
    // Every handled event counted: four twice, two DELETED once; each endpoint once.
    let counts = owner.endpoint_counts();
    assert_eq!(counts.len(), 10, "{counts:?}");
    let created: usize = counts.iter().map(|(c, _)| c).sum();
    let deleted: usize = counts.iter().map(|(_, d)| d).sum();
    assert_eq!((created, deleted), (4, 2), "{counts:?}");
}

/// An account the owner does not list: its events never reach the owner's bus (the policy),
/// and one handed to the function anyway is refused with nothing changed.
#[tokio::test]
async fn an_unlisted_account_is_refused_and_nothing_changes() {
    let bed = session_without_airflow().await;
    let accounts = set_up(&[(P1, None)], &[P3]);
    let owner = owner(&bed, &accounts, &[P1]).await;
    let m3 = owner.participant_mwaa(&bed, P3).await;
    owner.pending(&m3).await;
    assert!(owner.rule.take(0, Duration::from_secs(2)).await.is_empty());
    let refused = bed.refused_events().await;
    assert!(
        refused.len() >= 2 && refused.iter().all(|r| r["event"]["account"] == P3),
        "{refused:?}"
    );
    let event = refused[1]["event"].clone();
    owner
        .handle(event)
        .await
        .unwrap_err()
        .assert_is("InvalidInput", &[P3, "`account`"]);
    assert!(owner.ours().await.is_empty());
    assert_eq!(owner.policy_resources().await, json!(owner.unrelated_queue));
    wait_for_status(&m3, NAME, "PENDING", Duration::from_secs(1)).await;
}

/// The participant's role does not let the owner in (another ExternalId): a clear error
/// naming the account and the role, before anything was created or widened. Lambda retries it
/// and then puts the event on the failed-events queue, which `notify` emails.
#[tokio::test]
async fn a_refused_assume_role_is_a_clear_error_and_nothing_is_half_done() {
    let bed = session_without_airflow().await;
    let accounts = set_up(&[(P1, Some("another-deployments-id"))], &[]);
    let owner = owner(&bed, &accounts, &[P1]).await;
    let m1 = owner.participant_mwaa(&bed, P1).await;
    owner.pending(&m1).await;
    let events = owner.events(2).await;
    for event in &events {
        // Not `Retryable`: a refusal stays one.
        owner.handle(event.clone()).await.unwrap_err().assert_is(
            "OperationFailed",
            &[
                P1,
                &format!("arn:aws:iam::{P1}:role/mwaa-ops-participant"),
                "AccessDenied",
                "Nothing was changed",
            ],
        );
    }
    // After Lambda's retries the failed invocation reaches notify as an on-failure record:
    // the email names the function, the account and what could not be done.
    let err = owner.handle(events[0].clone()).await.unwrap_err();
    let alert = gave_up_alert(&events[0], &err);
    for part in [
        "mwaa-ops-provision-endpoints failed",
        "cannot read the environments of participant account",
        P1,
    ] {
        assert!(
            alert.contains(part),
            "{part} missing from the alert:\n{alert}"
        );
    }
    assert!(owner.ours().await.is_empty());
    assert_eq!(owner.policy_resources().await, json!(owner.unrelated_queue));
    wait_for_status(&m1, NAME, "PENDING", Duration::from_secs(1)).await;
    // The reconciler meets the same refusal: it fails (and so alerts) and changes nothing.
    owner
        .handle(json!({"reconcile": {}}))
        .await
        .unwrap_err()
        .assert_is("OperationFailed", &[P1, "AccessDenied"]);
    assert!(owner.ours().await.is_empty());
}

/// The participant's role deployed without its ReadEnvironments statement: AssumeRole
/// succeeds (the trust is intact), but the session may not read the environment, and the bed
/// refuses it as MWAA would. The refusal (naming the action, the environment and the session)
/// is in the function's error object, and nothing was created or widened.
#[tokio::test]
async fn a_participant_role_without_read_environments_is_refused_in_the_error_object() {
    let bed = session_without_airflow().await;
    let mut accounts = set_up(&[(P1, None)], &[]);
    accounts.without = vec!["ReadEnvironments"];
    let owner = owner(&bed, &accounts, &[P1]).await;
    let m1 = owner.participant_mwaa(&bed, P1).await;
    owner.pending(&m1).await;
    let events = owner.events(2).await;
    let environment = format!("arn:aws:airflow:{}:{P1}:environment/{NAME}", bed.region);
    let session = format!("arn:aws:sts::{P1}:assumed-role/mwaa-ops-participant/");
    for event in &events {
        owner.handle(event.clone()).await.unwrap_err().assert_is(
            "OperationFailed",
            &[
                "GetEnvironment",
                "AccessDeniedException",
                "is not authorized to perform: airflow:GetEnvironment",
                &environment,
                &session,
            ],
        );
    }
    assert!(owner.ours().await.is_empty());
    assert_eq!(owner.policy_resources().await, json!(owner.unrelated_queue));
    wait_for_status(&m1, NAME, "PENDING", Duration::from_secs(1)).await;
}

/// Every event lost: the reconciler provisions the PENDING environment of a participant
/// (one run: one period), and once it is deleted cleans up after it.
#[tokio::test]
async fn the_reconciler_makes_up_for_a_dropped_pending_and_a_dropped_deleted_event() {
    let bed = session_without_airflow().await;
    let accounts = set_up(&[(P1, None), (P2, None)], &[]);
    let owner = owner(&bed, &accounts, &[P1, P2]).await;
    let m1 = owner.participant_mwaa(&bed, P1).await;
    let m2 = owner.participant_mwaa(&bed, P2).await;
    let e1 = owner.pending(&m1).await;
    let q1 = e1.celery_executor_queue().unwrap().to_owned();

    let run = owner.handle(json!({"reconcile": {}})).await.unwrap();
    assert_eq!(run["action"], "reconciled", "{run}");
    let fixed = run["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1, "{run}");
    assert_eq!(
        (&fixed[0]["account"], &fixed[0]["fix"]),
        (&json!(P1), &json!("provisioned"))
    );
    wait_for_status(&m1, NAME, "AVAILABLE", Duration::from_secs(30)).await;
    assert_eq!(
        owner.policy_resources().await,
        json!([owner.unrelated_queue, q1])
    );
    // Idempotent, also alongside the events it made up for.
    let again = owner.handle(json!({"reconcile": {}})).await.unwrap();
    assert_eq!(again["fixed"], json!([]), "{again}");
    for event in owner.events(3).await {
        let report = owner.handle(event).await.unwrap();
        assert_ne!(report["action"], "cleaned_up", "{report}");
    }
    assert_eq!(owner.ours().await.len(), 2);

    // P1's environment is deleted and no event arrives; P2 creates one of the same name
    // meanwhile, which the run must not mistake for P1's.
    m1.delete_environment().name(NAME).send().await.unwrap();
    wait_gone(&m1).await;
    owner.pending(&m2).await;
    let run = owner.handle(json!({"reconcile": {}})).await.unwrap();
    let fixes: Vec<(String, String)> = run["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["account"].as_str().unwrap().to_owned(),
                f["fix"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fixes,
        [
            (P2.to_owned(), "provisioned".to_owned()),
            (P1.to_owned(), "cleaned_up".to_owned())
        ],
        "{run}"
    );
    let left: Vec<String> = owner.ours().await.into_iter().map(|(a, _, _)| a).collect();
    assert_eq!(left, [P2, P2]);
    let resources = owner.policy_resources().await;
    assert!(!resources.to_string().contains(&q1), "{resources}");
    wait_for_status(&m2, NAME, "AVAILABLE", Duration::from_secs(30)).await;
    let last = owner.handle(json!({"reconcile": {}})).await.unwrap();
    assert_eq!(last["fixed"], json!([]), "{last}");

    // The dashboard's lines for the name, in order: each run's for each environment it looked
    // after and each event's, both counters every time (0 included).
    assert_eq!(
        owner.endpoint_counts(),
        [
            (2, 0), // the first run provisions P1's
            (0, 0), // the second finds it AVAILABLE
            (0, 0), // P1's three events
            (0, 0),
            (0, 0),
            (2, 0), // the third run provisions P2's
            (0, 2), // and cleans up after P1's
            (0, 0), // the last finds P2's AVAILABLE
        ]
    );
}
