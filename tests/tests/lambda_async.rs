//! Lambda's asynchronous invocations, the template's EventBridge rules and the SQS event
//! source on the bed, end to end, with the functions as binaries and IAM held to their roles:
//! an object put in a landing bucket that trigger-dag cannot process reaches it through the
//! template's arrival rule (an asynchronous invoke), is tried three times and lands on the
//! failed-events queue as a destination record; notify, fed by the queue's event source
//! mapping, emails it and the queue is emptied. A rule Lambda does not let invoke its
//! function dead-letters the event with EventBridge's attributes. No Airflow needed.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use mwaa_ops_tests::arrivals::send_events_to_eventbridge;
use mwaa_ops_tests::iam::Role;
use mwaa_ops_tests::kms::suite_key;
use mwaa_ops_tests::lambda::{Deployment, Functions};
use mwaa_ops_tests::sns::{alert_topic, published, Email};
use mwaa_ops_tests::{session_without_airflow, Bed};
use serde_json::{json, Value};

const PREFIX: &str = "dev-";
/// Lambda's 1 and 2 minute waits become 0.6 and 1.2 s.
const SCALE: f64 = 0.01;
/// notify's Timeout (60 s in the template) and the failed-events queue's visibility timeout
/// (360 s there), scaled: Lambda refuses a mapping whose queue hides a message for less than
/// the function may run, and the batch test waits two of them for the redrive. notify keeps
/// 3 s of its Timeout for itself (common::runtime::MARGIN): 8 s leaves it 5 s for a batch on a
/// loaded machine.
const NOTIFY_TIMEOUT_S: u32 = 8;

/// One test's own queues, topic and bucket (the tests of this file share one bed).
struct Stack {
    sqs: aws_sdk_sqs::Client,
    failed_url: String,
    failed_arn: String,
    unreported_url: String,
    topic_arn: String,
    /// The suite key: both queues and the topic are encrypted with it, as in the template.
    key_arn: String,
    bucket: String,
    /// Sends S3's EventBridge notifications; trigger-dag's arrival rule takes its events.
    landing: String,
    s3: aws_sdk_s3::Client,
}

async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(&str, String)],
) -> (String, String) {
    let mut create = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        create = create.attributes(QueueAttributeName::from(*k), v.clone());
    }
    let url = create.send().await.unwrap().queue_url.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// The failed-events queue as the template makes it, scaled: a visibility timeout of
/// notify's scaled Timeout (360 s there) and a redrive to the unreported queue after 2
/// receives (100 there); it, the unreported queue and the alert topic encrypted with the
/// suite key.
async fn stack(bed: &Bed, name: &str) -> Stack {
    stack_hiding_for(bed, name, NOTIFY_TIMEOUT_S).await
}

/// As [`stack`], with a failed-events queue whose visibility timeout is `seconds`.
async fn stack_hiding_for(bed: &Bed, name: &str, seconds: u32) -> Stack {
    let config = bed.aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let key_arn = suite_key(bed).await;
    let encrypted = ("KmsMasterKeyId", key_arn.clone());
    let (unreported_url, unreported_arn) = queue(
        &sqs,
        &format!("{name}-unreported"),
        std::slice::from_ref(&encrypted),
    )
    .await;
    let redrive = json!({"deadLetterTargetArn": unreported_arn, "maxReceiveCount": 2});
    let (failed_url, failed_arn) = queue(
        &sqs,
        &format!("{name}-failed-events"),
        &[
            ("VisibilityTimeout", seconds.to_string()),
            ("RedrivePolicy", redrive.to_string()),
            encrypted,
        ],
    )
    .await;
    let topic_arn = alert_topic(bed, &format!("{name}-alerts"), &key_arn).await;
    let bucket = format!("{name}-suite");
    let landing = format!("{name}-landing");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    for b in [&bucket, &landing] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    send_events_to_eventbridge(&s3, &landing).await;
    Stack {
        sqs,
        failed_url,
        failed_arn,
        unreported_url,
        topic_arn,
        key_arn,
        bucket,
        landing,
        s3,
    }
}

impl Stack {
    fn scheduler_role(&self) -> String {
        format!("arn:aws:iam::123456789012:role/{}-scheduler", self.bucket)
    }

    /// trigger-dag and notify deployed on this stack, each held to its role of the template.
    async fn deploy(&self, bed: &Bed, trigger_role: Role) -> Functions {
        self.deploy_with(bed, trigger_role, Deployment::new()).await
    }

    /// As [`Stack::deploy`], over `deployment` (a test's rules, say); trigger-dag's arrival
    /// rule takes this stack's landing bucket, its one route a workflow MWAA Serverless does
    /// not know (trigger-dag fails such an arrival: OperationFailed).
    async fn deploy_with(
        &self,
        bed: &Bed,
        trigger_role: Role,
        deployment: Deployment,
    ) -> Functions {
        Functions::start(
            bed,
            self.deployment(bed, trigger_role, deployment, self.notify_role())
                .await,
        )
        .await
    }

    /// As [`Stack::deploy_with`], notify held to `notify_role`.
    async fn deploy_as(
        &self,
        bed: &Bed,
        trigger_role: Role,
        notify_role: Role,
        deployment: Deployment,
    ) -> Functions {
        Functions::start(
            bed,
            self.deployment(bed, trigger_role, deployment, notify_role)
                .await,
        )
        .await
    }

    /// The deployment [`Stack::deploy_as`] starts.
    async fn deployment(
        &self,
        bed: &Bed,
        trigger_role: Role,
        deployment: Deployment,
        notify_role: Role,
    ) -> Deployment {
        let trigger = bed.as_role(&trigger_role).await;
        let notify = bed.as_role(&notify_role).await;
        let route = json!([{"bucket": self.landing,
            "workflow_arn": "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/dev-unknown-0123456789"}]);
        deployment
            .parameter("Routes", &route.to_string())
            .parameter("ArrivalBuckets", &self.landing)
            .parameter("EnvironmentNamePrefix", PREFIX)
            .resource("SuiteBucket", self.bucket.as_str().into())
            .resource("AlertTopic", self.topic_arn.as_str().into())
            .resource("NotifySchedulerRole", self.scheduler_role().into())
            .resource("FailedEventsQueue", self.failed_arn.as_str().into())
            .resource("SuiteKey", self.key_arn.as_str().into())
            .role_key("trigger-dag", &trigger.key)
            .role_key("notify", &notify.key)
            .timeout("notify", NOTIFY_TIMEOUT_S.into())
            .async_scale(SCALE)
            .event_source_mappings()
    }

    fn trigger_role(&self) -> Role {
        Role::new("TriggerDagFunctionRole")
            .resource("SuiteBucket", self.bucket.as_str().into())
            .resource("FailedEventsQueue", self.failed_arn.as_str().into())
            .resource("SuiteKey", self.key_arn.as_str().into())
    }

    fn notify_role(&self) -> Role {
        Role::new("NotifyFunctionRole")
            .parameter("EnvironmentNamePrefix", PREFIX)
            .resource("SuiteBucket", self.bucket.as_str().into())
            .resource("AlertTopic", self.topic_arn.as_str().into())
            .resource("NotifySchedulerRole", self.scheduler_role().into())
            .resource("FailedEventsQueue", self.failed_arn.as_str().into())
            .resource("SuiteKey", self.key_arn.as_str().into())
    }

    async fn messages_left(&self, url: &str) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| attributes[k].parse::<usize>().unwrap())
        .sum()
    }

    async fn emails(&self, bed: &Bed) -> Vec<Email> {
        published(bed, &self.topic_arn).await
    }

    /// The emails once notify emailed what reached the failed-events queue and the queue is
    /// empty.
    async fn emailed_from_the_queue(&self, bed: &Bed) -> Vec<Email> {
        eventually(
            "notify emailed from the queue and it is empty",
            || async move {
                !self.emails(bed).await.is_empty()
                    && self.messages_left(&self.failed_url).await == 0
            },
        )
        .await;
        self.emails(bed).await
    }

    /// Puts an object in the landing bucket, as a producer would.
    async fn arrive(&self, key: &str) {
        self.s3
            .put_object()
            .bucket(&self.landing)
            .key(key)
            .body(b"a,b".to_vec().into())
            .send()
            .await
            .unwrap();
    }
}

/// Waits (up to a minute) until `ready` says yes; what the test then asserts is the state.
async fn eventually<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(60);
    while !ready().await {
        assert!(Instant::now() < end, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An S3 arrival without its object: trigger-dag refuses it (InvalidInput) on every attempt.
fn unreadable_arrival(id: &str) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2026-11-30T19:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:s3:::landing-zone"],
        "detail": {"bucket": {"name": "landing-zone"}, "reason": "PutObject"}
    })
}

/// An on-failure record as Lambda sends it (events/lambda-destination-failure.json).
fn destination_record() -> Value {
    serde_json::from_str(include_str!("../../events/lambda-destination-failure.json")).unwrap()
}

/// The one asynchronous invocation, once it ended (its record sent, or not).
async fn the_async_invocation(functions: &Functions) -> Value {
    eventually("the asynchronous invocation ended", || async move {
        let all = functions.asynchronous_invocations().await;
        all.iter().any(|e| e.get("destination").is_some())
    })
    .await;
    let all = functions.asynchronous_invocations().await;
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

#[tokio::test]
async fn an_arrival_trigger_dag_cannot_process_is_tried_three_times_then_emailed_once_from_the_queue(
) {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "async-arrival").await;
    let functions = stack
        .deploy_with(
            &bed,
            stack.trigger_role(),
            Deployment::new().rule("TriggerDagFunctionArrival"),
        )
        .await;
    stack.arrive("orders/arrival-to-nowhere.csv").await;

    let invocation = the_async_invocation(&functions).await;
    // The rule's one delivery is the invocation Lambda then tried three times.
    let deliveries = functions.rule_deliveries().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["outcome"], "delivered", "{deliveries:?}");
    assert_eq!(deliveries[0]["attempts"], 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["requestId"], invocation["requestId"]);
    assert_eq!(
        deliveries[0]["event"]["detail"]["object"]["key"],
        "orders/arrival-to-nowhere.csv"
    );
    assert_eq!(
        invocation["response"]["errorType"], "OperationFailed",
        "{invocation}"
    );
    assert_eq!(invocation["attempts"], 3, "{invocation}");
    assert_eq!(invocation["condition"], "RetriesExhausted", "{invocation}");
    assert_eq!(invocation["destination"], "delivered", "{invocation}");

    let emails = stack.emailed_from_the_queue(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(
        emails[0]
            .subject
            .starts_with("[mwaa-ops] trigger-dag failed after 3 attempts: "),
        "{}",
        emails[0].subject
    );
    assert!(
        emails[0].body.contains("orders/arrival-to-nowhere.csv"),
        "{}",
        emails[0].body
    );
    let batches = functions.batches().await;
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0]["deleted"], batches[0]["messages"], "{batches:?}");
    assert_eq!(stack.messages_left(&stack.unreported_url).await, 0);
    // The queue and the topic are encrypted with the suite key: trigger-dag's send, notify's
    // receive and publish each needed (and got) the key through SQS and SNS.
    let refused = bed.iam_refusals().await;
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test]
async fn without_its_encrypted_queue_statement_notify_cannot_read_the_failed_events() {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "async-no-key").await;
    let functions = stack
        .deploy_as(
            &bed,
            stack.trigger_role(),
            stack.notify_role().without("EncryptedQueue"),
            Deployment::new(),
        )
        .await;
    let record = destination_record();
    stack
        .sqs
        .send_message()
        .queue_url(&stack.failed_url)
        .message_body(record.to_string())
        .send()
        .await
        .unwrap();

    let (stack, bed) = (&stack, &bed);
    eventually("SQS refused notify's receive its key", || async move {
        bed.iam_refusals()
            .await
            .iter()
            .any(|r| r["action"] == "kms:Decrypt")
    })
    .await;
    let refused = bed.iam_refusals().await;
    let decrypt = refused
        .iter()
        .find(|r| r["action"] == "kms:Decrypt")
        .unwrap();
    assert_eq!(decrypt["role"], "NotifyFunctionRole", "{decrypt}");
    assert_eq!(decrypt["resource"], json!(stack.key_arn), "{decrypt}");
    assert_eq!(
        decrypt["context"]["kms:EncryptionContext:aws:sqs:arn"],
        json!(stack.failed_arn),
        "{decrypt}"
    );
    // Nothing read, nothing emailed: the failure waits in the queue.
    assert!(functions.batches().await.is_empty());
    assert!(stack.emails(bed).await.is_empty());
    assert_eq!(stack.messages_left(&stack.failed_url).await, 1);
}

#[tokio::test]
async fn a_batch_with_one_record_notify_cannot_handle_leaves_only_that_record() {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "async-batch").await;
    // notify must read the status of dev-unreadable (the sparse event has none): refused.
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "kind": "access_denied",
                              "name": "dev-unreadable", "count": 100}]),
    )
    .await;
    let functions = stack.deploy(&bed, stack.trigger_role()).await;
    let record = destination_record();
    let mut sparse: Value =
        serde_json::from_str(include_str!("../../events/mwaa-status-sparse.json")).unwrap();
    sparse["resources"] =
        json!(["arn:aws:airflow:us-east-1:123456789012:environment/dev-unreadable"]);
    let sent = stack
        .sqs
        .send_message_batch()
        .queue_url(&stack.failed_url)
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("record")
                .message_body(record.to_string())
                .build()
                .unwrap(),
        )
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("sparse")
                .message_body(sparse.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id_of = |entry: &str| {
        sent.successful()
            .iter()
            .find(|s| s.id() == entry)
            .unwrap()
            .message_id()
            .to_owned()
    };
    let (record_id, sparse_id) = (id_of("record"), id_of("sparse"));

    // Kept after each try, the unreadable one goes to the unreported queue past 2 receives.
    let (stack, bed) = (&stack, &bed);
    eventually(
        "the unreadable record moved to the unreported queue",
        || async move {
            stack.messages_left(&stack.failed_url).await == 0
                && stack.messages_left(&stack.unreported_url).await == 1
        },
    )
    .await;
    let batches = functions.batches().await;
    let with_record = batches
        .iter()
        .find(|b| {
            b["messages"]
                .as_array()
                .unwrap()
                .contains(&json!(record_id))
        })
        .expect("a batch with the destination record");
    assert_eq!(with_record["deleted"], json!([record_id]), "{batches:?}");
    let tries: Vec<&Value> = batches
        .iter()
        .filter(|b| {
            b["messages"]
                .as_array()
                .unwrap()
                .contains(&json!(sparse_id))
        })
        .collect();
    assert_eq!(tries.len(), 2, "received twice, then redriven: {batches:?}");
    assert!(
        tries.iter().all(|b| b["kept"] == json!([sparse_id])),
        "{batches:?}"
    );
    let emails = stack.emails(bed).await;
    assert_eq!(emails.len(), 1, "only the destination record: {emails:?}");
    assert!(emails[0].subject.contains("failed after 3 attempts"));
    let moved = stack
        .sqs
        .receive_message()
        .queue_url(&stack.unreported_url)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.messages()[0].message_id(), Some(sparse_id.as_str()));
    reqwest::Client::new()
        .delete(format!("{}/_bed/faults", bed.mwaa_url))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_role_that_may_not_send_to_the_destination_loses_the_record() {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "async-denied").await;
    // The role as deployed without the failed-events queue named: its SAM-made
    // sqs:SendMessage statement allows no queue, as if the template had left it out.
    let role =
        Role::new("TriggerDagFunctionRole").resource("SuiteBucket", stack.bucket.as_str().into());
    let functions = stack.deploy(&bed, role).await;
    functions
        .invoke_async("trigger-dag", &unreadable_arrival("arrival-lost"))
        .await;

    let invocation = the_async_invocation(&functions).await;
    assert_eq!(invocation["attempts"], 3, "{invocation}");
    let destination = invocation["destination"].as_str().unwrap();
    assert!(
        destination.starts_with("refused") && destination.contains("AccessDenied"),
        "{destination}"
    );
    assert!(
        bed.iam_refusals()
            .await
            .iter()
            .any(|r| r["action"] == "sqs:SendMessage" && r["resource"] == json!(stack.failed_arn)),
        "the bed's IAM refused the send"
    );
    assert_eq!(stack.messages_left(&stack.failed_url).await, 0);
    assert!(stack.emails(&bed).await.is_empty());
}

#[tokio::test]
async fn an_arrival_the_rule_may_not_invoke_trigger_dag_with_is_dead_lettered_and_emailed() {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "rule-denied").await;
    let functions = stack
        .deploy_with(
            &bed,
            stack.trigger_role(),
            Deployment::new()
                .rule("TriggerDagFunctionArrival")
                .rule_without_permission("TriggerDagFunctionArrival"),
        )
        .await;
    stack.arrive("orders/never-invoked.csv").await;

    let emails = stack.emailed_from_the_queue(&bed).await;
    // Lambda refused the rule (403): EventBridge does not retry a missing permission.
    let deliveries = functions.rule_deliveries().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["outcome"], "dead-lettered", "{delivery}");
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    assert_eq!(delivery["errorCode"], "NO_PERMISSIONS", "{delivery}");
    assert!(functions.asynchronous_invocations().await.is_empty());
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = format!("{}\n{}", emails[0].subject, emails[0].body);
    for mention in [
        "rule/mwaa-ops-arrival",
        "NO_PERMISSIONS",
        "orders/never-invoked.csv",
    ] {
        assert!(email.contains(mention), "{mention} not in {email}");
    }
}

/// Deploys `stack` with notify held to `notify_role` and asserts Lambda refuses notify's
/// event source mapping on its queue for `why`.
async fn assert_the_mapping_is_refused(bed: &Bed, stack: &Stack, notify_role: Role, why: &str) {
    let deployment = stack
        .deployment(bed, stack.trigger_role(), Deployment::new(), notify_role)
        .await;
    let refusal = Functions::try_start(bed, deployment)
        .await
        .err()
        .expect("Lambda refuses the event source mapping");
    for mention in [
        "InvalidParameterValueException",
        "NotifyFailedEvents",
        stack.failed_arn.as_str(),
        why,
    ] {
        assert!(refusal.contains(mention), "{mention} not in {refusal}");
    }
}

#[tokio::test]
async fn a_queue_hiding_messages_for_less_than_notifys_timeout_is_refused_at_deploy() {
    let bed = session_without_airflow().await;
    let stack = stack_hiding_for(&bed, "esm-short", NOTIFY_TIMEOUT_S - 1).await;
    let why = "Queue visibility timeout: 7 seconds is less than Function timeout: 8 seconds";
    assert_the_mapping_is_refused(&bed, &stack, stack.notify_role(), why).await;
}

#[tokio::test]
async fn a_notify_role_that_may_not_drain_the_queue_is_refused_at_deploy() {
    let bed = session_without_airflow().await;
    let stack = stack(&bed, "esm-role").await;
    let why = "does not have permissions to call ReceiveMessage on SQS";
    let role = stack.notify_role().without("DrainFailedEvents");
    assert_the_mapping_is_refused(&bed, &stack, role, why).await;
}
