//! notify on the bed: the template's alert rules in moto's EventBridge (delivered to SQS),
//! the real handler with the real SDK clients against moto (SNS, S3, Step Functions,
//! Scheduler) and the local MWAA control plane; emails read back from moto's SNS.

use std::time::Duration;

use aws_sdk_mwaa::types::EndpointManagement;
use mwaa_ops_tests::digest::{ended_execution, notify_resources, start_notify};
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::kms::suite_key;
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::rules::{sqs_batch, RuleQueue};
use mwaa_ops_tests::sns::{alert_topic, Email};
use mwaa_ops_tests::{session_without_airflow, Bed, Session};
use notify::ops::pending_schedule_name;
use serde_json::{json, Value};

const SUITE_BUCKET: &str = "mwaa-ops-suite";
const PARAMS: &[(&str, &str)] = &[("EnvironmentNamePrefix", "dev-")];
const RULES: [&str; 4] = [
    "NotifyFunctionExecutionEnded",
    "NotifyFunctionEnvironmentStatus",
    "NotifyFunctionMetadataFailed",
    "NotifyFunctionRoutesRejected",
];

/// The suite bucket, the alert topic and the function, as the template deploys them.
struct Alerts {
    topic_arn: String,
    functions: Functions,
    sfn: aws_sdk_sfn::Client,
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    events: aws_sdk_eventbridge::Client,
}

async fn deploy(bed: &Bed) -> Alerts {
    let config = bed.aws_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(SUITE_BUCKET)
        .send()
        .await
        .unwrap();
    let suite_key = suite_key(bed).await;
    let topic_arn = alert_topic(bed, "mwaa-ops-alerts", &suite_key).await;
    // notify's binary acts as its role of the template: the bed refuses what that role may
    // not do. PENDING is alerted after 30 minutes here (the template's default is 60).
    let functions = start_notify(
        bed,
        &[PARAMS[0], ("PendingAlertMinutes", "30")],
        &notify_resources(bed, SUITE_BUCKET, &topic_arn, &suite_key),
        Deployment::new(),
    )
    .await;
    Alerts {
        topic_arn,
        functions,
        sfn: aws_sdk_sfn::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        scheduler: aws_sdk_scheduler::Client::new(&config),
        events: aws_sdk_eventbridge::Client::new(&config),
    }
}

impl Alerts {
    async fn emails(&self, bed: &Bed) -> Vec<Email> {
        mwaa_ops_tests::sns::published(bed, &self.topic_arn).await
    }

    /// One invocation of notify with `event`, which it must handle.
    async fn handle(&self, event: Value) -> Value {
        self.functions
            .invoke("notify", &event)
            .await
            .unwrap_or_else(|f| panic!("notify failed: {f}"))
    }

    /// One invocation of notify with `event`, which it must fail: what Lambda reports.
    async fn fail(&self, event: Value) -> Failure {
        match self.functions.invoke("notify", &event).await {
            Ok(answer) => panic!("notify handled it: {answer}"),
            Err(failure) => failure,
        }
    }

    async fn put_event(&self, event: &Value) {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(event["source"].as_str().unwrap())
            .detail_type(event["detail-type"].as_str().unwrap())
            .detail(event["detail"].to_string())
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    }
}

fn sample(name: &str, account: &str) -> Value {
    let path = mwaa_ops_tests::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    // The rules name this deployment's account; the samples were taken from another.
    serde_json::from_str(&text.replace("210987654321", account)).unwrap()
}

async fn rules(bed: &Session) -> Vec<RuleQueue> {
    let mut queues = vec![];
    for rule in RULES {
        queues.push(bed.rule_to_queue(rule, PARAMS).await);
    }
    queues
}

#[tokio::test]
async fn each_alert_rule_takes_its_own_events_and_no_others() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    let queues = rules(&bed).await;
    let mut pending = sample("mwaa-status-pending.json", &bed.account);
    pending["detail"]["name"] = json!("dev-shared");
    let mut other_machine = sample("sfn-execution-failed.json", &bed.account);
    other_machine["detail"]["stateMachineArn"] =
        json!("arn:aws:states:us-east-1:123456789012:stateMachine:someone-elses");
    let mut succeeded = sample("sfn-execution-failed.json", &bed.account);
    succeeded["detail"]["status"] = json!("SUCCEEDED");
    let mut other_prefix = sample("mwaa-status-create-failed.json", &bed.account);
    other_prefix["detail"]["name"] = json!("prod-analytics");
    for event in [
        sample("sfn-execution-failed.json", &bed.account),
        sample("mwaa-status-create-failed.json", &bed.account),
        pending,
        sample("metadata-export-failed.json", &bed.account),
        sample("routes-rejected.json", &bed.account),
        // The rule takes these too (the documented MWAA event has no status or name to
        // filter on); notify ignores them:
        sample("mwaa-status-deleted.json", &bed.account),
        other_prefix,
        // None of these is for notify:
        sample("s3-object-created.json", &bed.account),
        other_machine,
        succeeded,
    ] {
        alerts.put_event(&event).await;
    }
    let mut taken = vec![];
    let mut mwaa_events = vec![];
    for (queue, expected) in queues.iter().zip([1, 4, 1, 1]) {
        let events = queue.take(expected, Duration::from_secs(10)).await;
        if expected == 4 {
            mwaa_events.clone_from(&events);
        }
        taken.push(
            events
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["detail-type"].as_str().unwrap(),
                        e["detail"]["status"].as_str().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        taken,
        [
            vec!["Step Functions Execution Status Change FAILED"],
            vec![
                "MWAA Environment Status Change CREATE_FAILED",
                "MWAA Environment Status Change PENDING",
                "MWAA Environment Status Change DELETED",
                "MWAA Environment Status Change CREATE_FAILED"
            ],
            vec!["Metadata Export Failed -"],
            vec!["Routes Rejected -"],
        ]
    );
    // The function decides: DELETED is no failure, prod-analytics not this deployment's.
    for event in &mwaa_events[2..] {
        let answer = alerts.handle(event.clone()).await;
        assert!(answer.get("ignored").is_some(), "{answer}");
    }
    assert!(alerts.emails(&bed).await.is_empty());
}

#[tokio::test]
async fn a_rejected_routes_file_is_one_email_however_many_instances_report_it() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    let queues = rules(&bed).await;
    let event = sample("routes-rejected.json", &bed.account);
    // Two warm trigger-dag instances read the same broken version: two events.
    alerts.put_event(&event).await;
    alerts.put_event(&event).await;
    let delivered = queues[3].take(2, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), 2);
    assert_ne!(delivered[0]["id"], delivered[1]["id"]);
    alerts.handle(delivered[0].clone()).await;
    let again = alerts.handle(delivered[1].clone()).await;
    assert!(again.get("duplicate").is_some(), "{again}");
    // Each alert handled counts sent and de-duplicated together, one 1 and the other 0: the
    // dashboard's two lines exist from the first alert, and their Average is a rate.
    let counted: Vec<(Value, Value)> = alerts
        .functions
        .metrics()
        .iter()
        .filter(|doc| doc.get("AlertsSent").is_some() || doc.get("AlertsDeduplicated").is_some())
        .map(|doc| (doc["AlertsSent"].clone(), doc["AlertsDeduplicated"].clone()))
        .collect();
    assert_eq!(
        counted,
        [(json!(1.0), json!(0.0)), (json!(0.0), json!(1.0))],
        "{}",
        alerts.functions.output()
    );
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(
        email.subject,
        "[mwaa-ops] Routes file routes/sales.json rejected: routes[1] (\"orders\"): field `environment`"
    );
    for expected in [
        "File:           s3://mwaa-ops-suitebucket-1x2y3z/routes/sales.json",
        "Field:          environment",
        "Used meanwhile: 4 routes",
    ] {
        assert!(
            email.body.contains(expected),
            "missing {expected:?} in\n{}",
            email.body
        );
    }
    assert_eq!(email.attributes["kind"]["Value"], "routes-rejected");
}

#[tokio::test]
async fn a_failed_execution_is_one_email_naming_its_step_from_the_real_history() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    let queues = rules(&bed).await;
    // A state machine of this stack that fails the way the pause does when the
    // environment is not AVAILABLE: a Choice into a Fail state.
    let definition = json!({
        "StartAt": "ReadEnvironment",
        "States": {
            "ReadEnvironment": {"Type": "Pass", "Result": {"status": "UPDATING"}, "ResultPath": "$.environment_now", "Next": "IsAvailable"},
            "IsAvailable": {"Type": "Choice", "Choices": [
                {"Variable": "$.environment_now.status", "StringEquals": "AVAILABLE", "Next": "Done"}],
                "Default": "EnvironmentNotAvailable"},
            "EnvironmentNotAvailable": {"Type": "Fail", "Error": "MwaaOps.EnvironmentNotAvailable",
                                        "Cause": "dev-analytics is UPDATING, not AVAILABLE"},
            "Done": {"Type": "Succeed"}
        }
    });
    let input = json!({"environment": "dev-analytics"});
    let described = ended_execution(&alerts.sfn, "mwaa-ops-pause", &definition, &input).await;
    let (machine, execution) = (described.state_machine_arn(), described.execution_arn());
    assert_eq!(described.status().as_str(), "FAILED");
    // What EventBridge would say (moto's Step Functions emits no status events).
    let event = json!({
        "id": "exec-event-1", "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution, "stateMachineArn": machine, "name": execution.rsplit(':').next(),
            "status": "FAILED", "startDate": 1_795_298_400_000i64,
            "input": described.input(), "error": described.error(), "cause": described.cause()
        }
    });
    alerts.put_event(&event).await;
    let delivered = queues[0].take(1, Duration::from_secs(10)).await;
    assert_eq!(delivered.len(), 1);
    // Delivered twice (EventBridge is at least once): one email.
    alerts.handle(delivered[0].clone()).await;
    let again = alerts.handle(delivered[0].clone()).await;
    assert!(again.get("duplicate").is_some(), "{again}");

    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(
        email.subject,
        "[mwaa-ops] Pause of dev-analytics FAILED at EnvironmentNotAvailable"
    );
    for expected in [
        "Environment: dev-analytics",
        "Step:        EnvironmentNotAvailable",
        "Error:       MwaaOps.EnvironmentNotAvailable",
        "Cause:       dev-analytics is UPDATING, not AVAILABLE",
        "Started:     2026-11-21T22:00:00Z",
        &format!("#/v2/executions/details/{execution}"),
    ] {
        assert!(
            email.body.contains(expected),
            "missing {expected:?} in\n{}",
            email.body
        );
    }
    assert_eq!(email.attributes["kind"]["Value"], "execution-failed");
    let alert: Value =
        serde_json::from_str(email.attributes["alert"]["Value"].as_str().unwrap()).unwrap();
    assert_eq!(alert["environment"], "dev-analytics");
    assert_eq!(alert["fields"]["step"], "EnvironmentNotAvailable");
}

#[tokio::test]
async fn a_failing_environment_email_says_why_and_pending_is_watched_then_alerted() {
    let bed = session_without_airflow().await;
    // The rich event, to pick the statuses out (the sparse one has its own test below).
    bed.control("config", json!({"rich_events": true})).await;
    let alerts = deploy(&bed).await;
    let queues = rules(&bed).await;
    let mwaa = bed.mwaa().await;
    // CREATE_FAILED, as the control plane emits it on moto's bus.
    create_failing(&bed, &mwaa, "dev-broken").await;
    wait_for_status(
        &mwaa,
        "dev-broken",
        "CREATE_FAILED",
        Duration::from_secs(60),
    )
    .await;
    // PENDING: customer-managed endpoints that nobody creates.
    let mut shared = NewEnvironment::new("dev-shared", "2.10.3");
    shared.endpoint_management = EndpointManagement::Customer;
    shared.create(&mwaa).await;
    wait_for_status(&mwaa, "dev-shared", "PENDING", Duration::from_secs(60)).await;

    // The rule delivers every status change; the CREATING ones go elsewhere here.
    let delivered: Vec<Value> = queues[1]
        .take(4, Duration::from_secs(15))
        .await
        .into_iter()
        .filter(|e| e["detail"]["status"] != "CREATING")
        .collect();
    let statuses: Vec<&str> = delivered
        .iter()
        .map(|e| e["detail"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CREATE_FAILED", "PENDING"], "{delivered:?}");
    for event in &delivered {
        alerts.handle(event.clone()).await;
    }
    let emails = alerts.emails(&bed).await;
    assert_eq!(
        emails.len(),
        1,
        "PENDING alone sends nothing yet: {emails:?}"
    );
    assert_eq!(
        emails[0].subject,
        "[mwaa-ops] MWAA environment dev-broken is CREATE_FAILED"
    );
    assert!(
        emails[0]
            .body
            .contains("Last error:  INCORRECT_CONFIGURATION"),
        "{}",
        emails[0].body
    );

    // The PENDING event left a one-time schedule that will invoke notify again.
    let schedule = alerts
        .scheduler
        .get_schedule()
        .name(pending_schedule_name("dev-shared"))
        .send()
        .await
        .expect("the re-check schedule");
    assert!(schedule.schedule_expression().unwrap().starts_with("at("));
    // Its target is the function as Lambda named it to itself (the invoked function's ARN).
    let target = schedule.target().unwrap();
    // The invoked function's own ARN (the bed's Lambda service names it by its binary).
    assert_eq!(
        target.arn(),
        "arn:aws:lambda:us-east-1:123456789012:function:notify",
        "{target:?}"
    );
    // It fires, invoking that ARN as Scheduler would: still PENDING -> an alert.
    let fired: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    alerts
        .functions
        .invoke(target.arn(), &fired)
        .await
        .unwrap_or_else(|f| panic!("the re-check failed: {f}"));
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert_eq!(
        emails[1].subject,
        "[mwaa-ops] dev-shared still PENDING after 30 min: no VPC endpoints"
    );
}

/// Creates `name` on the control plane, told to end its creation in CREATE_FAILED.
async fn create_failing(bed: &Session, mwaa: &aws_sdk_mwaa::Client, name: &str) {
    bed.control("fail", json!({"name": name, "status": "CREATE_FAILED"}))
        .await;
    NewEnvironment::new(name, "2.10.3").create(mwaa).await;
}

/// The status change as AWS documents it (the bed's default): no detail, the environment
/// ARN in `resources`. notify reads each status, and why it failed, from GetEnvironment.
#[tokio::test]
async fn sparse_status_changes_are_read_from_get_environment() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    let queues = rules(&bed).await;
    let mwaa = bed.mwaa().await;
    create_failing(&bed, &mwaa, "dev-sparse-broken").await;
    let mut shared = NewEnvironment::new("dev-sparse-shared", "2.10.3");
    shared.endpoint_management = EndpointManagement::Customer;
    shared.create(&mwaa).await;
    // Outside the prefix: routed by the rule, ignored by notify before any read.
    create_failing(&bed, &mwaa, "prod-x").await;
    for (name, status) in [
        ("dev-sparse-broken", "CREATE_FAILED"),
        ("dev-sparse-shared", "PENDING"),
        ("prod-x", "CREATE_FAILED"),
    ] {
        wait_for_status(&mwaa, name, status, Duration::from_secs(60)).await;
    }
    // CREATING and its successor for each of the three.
    let delivered = queues[1].take(6, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    let calls_before = bed.calls().await.len();
    let mut answers = vec![];
    for event in &delivered {
        assert_eq!(event["detail"], json!({}), "the bed sends the sparse event");
        let name = event["resources"][0]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        answers.push((name, alerts.handle(event.clone()).await));
    }
    for (name, answer) in &answers {
        match name.as_str() {
            // Both events read CREATE_FAILED now: one email, then a duplicate.
            "dev-sparse-broken" => assert!(
                answer.get("sent").is_some() || answer.get("duplicate").is_some(),
                "{answer}"
            ),
            "dev-sparse-shared" => assert_eq!(answer["watching"], "dev-sparse-shared"),
            _ => assert!(
                answer["ignored"].as_str().unwrap().contains("prefix"),
                "{answer}"
            ),
        }
    }
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(
        emails[0].subject,
        "[mwaa-ops] MWAA environment dev-sparse-broken is CREATE_FAILED"
    );
    assert!(
        emails[0]
            .body
            .contains("Last error:  INCORRECT_CONFIGURATION"),
        "{}",
        emails[0].body
    );
    alerts
        .scheduler
        .get_schedule()
        .name(pending_schedule_name("dev-sparse-shared"))
        .send()
        .await
        .expect("the re-check schedule");
    // notify never read prod-x: the role may read only the deployment's environments.
    let reads: Vec<String> = bed.calls().await[calls_before..]
        .iter()
        .filter(|c| c["operation"] == "GetEnvironment")
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !reads.is_empty() && !reads.iter().any(|n| n == "prod-x"),
        "{reads:?}"
    );
}

/// Sends `bodies` to a queue and reads them back as the Lambda SQS event notify gets; a
/// body with an error code carries the attributes EventBridge adds to a dead letter.
async fn failed_events_batch(alerts: &Alerts, bodies: &[(String, Option<&str>)]) -> Value {
    const RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/mwaa-ops-Arrival";
    let messages: Vec<(String, Vec<(&str, &str)>)> = bodies
        .iter()
        .map(|(body, code)| {
            let attributes = code.map_or(vec![], |c| vec![("ERROR_CODE", c), ("RULE_ARN", RULE)]);
            (body.clone(), attributes)
        })
        .collect();
    sqs_batch(&alerts.sqs, "failed-events", &messages).await
}

#[tokio::test]
async fn dead_letters_are_emailed_and_kept_when_sns_fails() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    let record = sample("lambda-destination-failure.json", &bed.account);
    let s3_event = sample("s3-object-created.json", &bed.account);
    let batch = failed_events_batch(
        &alerts,
        &[
            (record.to_string(), None),
            (s3_event.to_string(), Some("SDK_CLIENT_ERROR")),
            ("not json at all".into(), None),
        ],
    )
    .await;
    let answer = alerts.handle(batch.clone()).await;
    assert_eq!(answer["batchItemFailures"], json!([]));
    let emails = alerts.emails(&bed).await;
    let subjects: Vec<&str> = emails.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects[0].starts_with("[mwaa-ops] mwaa-ops-trigger-dag failed after 3 attempts: "),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with("[mwaa-ops] Event not delivered to its target: SDK_CLIENT_ERROR"),
        "{subjects:?}"
    );
    assert_eq!(
        subjects[2],
        "[mwaa-ops] Unknown event kind: failed-events message that is not JSON"
    );
    assert!(
        emails[0].body.contains("sales/2026-11-21.csv"),
        "{}",
        emails[0].body
    );
    assert!(
        emails[2].body.contains("not json at all"),
        "{}",
        emails[2].body
    );

    // SNS gone: every message of a new batch stays on the queue, none is lost.
    let config = bed.aws_config().await;
    aws_sdk_sns::Client::new(&config)
        .delete_topic()
        .topic_arn(&alerts.topic_arn)
        .send()
        .await
        .unwrap();
    let mut unknown = s3_event.clone();
    unknown["id"] = json!("another-event");
    let batch = failed_events_batch(&alerts, &[(unknown.to_string(), None)]).await;
    let answer = alerts.handle(batch.clone()).await;
    assert_eq!(
        answer["batchItemFailures"][0]["itemIdentifier"],
        batch["Records"][0]["messageId"]
    );
    // And a single event fails the invocation (Lambda retries, then dead-letters it).
    let failure = alerts
        .fail(sample("mwaa-status-create-failed.json", &bed.account))
        .await;
    failure.assert_is("OperationFailed", &["SNS Publish"]);
}

#[tokio::test]
async fn unknown_kinds_are_reported_and_malformed_events_are_clear_errors() {
    let bed = session_without_airflow().await;
    let alerts = deploy(&bed).await;
    alerts
        .handle(json!({"id": "odd-1", "source": "aws.health", "detail-type": "AWS Health Event", "detail": {}}))
        .await;
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].subject,
        "[mwaa-ops] Unknown event kind: aws.health / AWS Health Event"
    );
    for (name, field) in [
        (
            "invalid/sfn-execution-without-arn.json",
            "missing field `executionArn`",
        ),
        (
            "invalid/mwaa-status-without-name.json",
            "missing field `name`",
        ),
    ] {
        let event = sample(name, &bed.account);
        let id = event["id"].as_str().unwrap().to_owned();
        let failure = alerts.fail(event).await;
        failure.assert_is("InvalidInput", &[field, &id]);
    }
    assert_eq!(alerts.emails(&bed).await.len(), 1);
}
