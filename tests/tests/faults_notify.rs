//! The fault matrix of notify: its binary behind the bed's Lambda service (as its role of the
//! template), SNS and S3 faults through a fault proxy in front of moto (its endpoints), MWAA
//! faults through the local control plane (`/_bed/faults`). Every test checks that each fault
//! it injected was served (a fault never served proves nothing) and that each failure is sent
//! exactly once. The pause-resume steps' faults are in faults_pause_resume.rs.
//!
//! The SDK makes 3 attempts per call: 2 faults in a row are its to absorb. Beyond them notify
//! retries until its deadline (Lambda's, less its margin): an outage that outlasts that is
//! what reaches the caller, so those faults last until the test withdraws them.

use mwaa_ops_tests::digest::{ended_execution, notify_resources, start_notify, Digest};
use mwaa_ops_tests::fault_proxy::{Fault, FaultProxy};
use mwaa_ops_tests::kms::suite_key;
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::rules::sqs_batch;
use mwaa_ops_tests::sns::alert_topic;
use mwaa_ops_tests::{session_without_airflow, Bed, Session};
use notify::ops::SENT_PREFIX;
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
/// notify's Timeout here: 7 s of retries after its 3 s margin, time for an SDK call that
/// failed (up to 3 s of the SDK's backoff) and then one more of its own.
const TIMEOUT_SECONDS: f64 = 10.0;
/// An outage: more faults than any invocation can use up.
const UNTIL_WITHDRAWN: u32 = 10_000;

fn sample(name: &str, account: &str) -> Value {
    let path = mwaa_ops_tests::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("210987654321", account)).unwrap()
}

struct Alerts {
    functions: Functions,
    topic_arn: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

/// notify with SNS and S3 behind the fault proxy; its MWAA is the control plane.
async fn deploy(bed: &Bed, proxy: &FaultProxy) -> Alerts {
    let config = bed.aws_config().await;
    let direct_s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    direct_s3
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let suite_key = suite_key(bed).await;
    let topic_arn = alert_topic(bed, "mwaa-ops-alerts", &suite_key).await;
    let functions = start_notify(
        bed,
        &[("EnvironmentNamePrefix", "dev-")],
        &notify_resources(bed, BUCKET, &topic_arn, &suite_key),
        Deployment::new()
            .timeout("notify", TIMEOUT_SECONDS)
            .endpoint("AWS_ENDPOINT_URL_SNS", &proxy.url)
            .endpoint("AWS_ENDPOINT_URL_S3", &proxy.url),
    )
    .await;
    Alerts {
        functions,
        topic_arn,
        s3: direct_s3,
        sqs: aws_sdk_sqs::Client::new(&config),
    }
}

impl Alerts {
    /// Subjects of the emails moto's SNS recorded.
    async fn emails(&self, bed: &Bed) -> Vec<String> {
        let published = mwaa_ops_tests::sns::published(bed, &self.topic_arn).await;
        published.into_iter().map(|e| e.subject).collect()
    }

    async fn markers(&self) -> usize {
        self.s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(SENT_PREFIX)
            .send()
            .await
            .unwrap()
            .contents()
            .len()
    }

    /// The SQS event of the failed-events queue carrying `bodies` (as Lambda delivers it).
    async fn batch(&self, bodies: &[(&Value, Option<&str>)]) -> Value {
        let messages: Vec<(String, Vec<(&str, &str)>)> = bodies
            .iter()
            .map(|(body, code)| {
                let attributes = code.map_or(vec![], |c| vec![("ERROR_CODE", c)]);
                (body.to_string(), attributes)
            })
            .collect();
        sqs_batch(&self.sqs, "failed-events", &messages).await
    }

    /// One invocation, which notify must answer.
    async fn handle(&self, event: Value) -> Value {
        self.functions
            .invoke("notify", &event)
            .await
            .unwrap_or_else(|f| panic!("notify failed: {f}"))
    }

    /// One invocation, which notify must fail: what Lambda reports.
    async fn fail(&self, event: Value) -> Failure {
        match self.functions.invoke("notify", &event).await {
            Ok(answer) => panic!("notify handled it: {answer}"),
            Err(failure) => failure,
        }
    }
}

fn failed_ids(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// The statuses the proxy answered to SNS (every request to `POST /` is a Publish here).
fn publishes(proxy: &FaultProxy) -> Vec<u16> {
    let served = proxy.served();
    served
        .iter()
        .filter(|s| s.request == "POST /")
        .map(|s| s.status)
        .collect()
}

/// Ends the control plane's outage: the rules it had left.
async fn withdraw_mwaa_faults(bed: &Bed) -> Value {
    let url = format!("{}/_bed/faults", bed.mwaa_url);
    let left: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let cleared = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert!(cleared.status().is_success(), "{url}: {}", cleared.status());
    left
}

#[tokio::test]
async fn faults_notify_sends_each_failure_once_through_sns_and_s3_faults() {
    let bed: Session = session_without_airflow().await;
    let proxy = FaultProxy::start(&bed.moto_url).await;
    let alerts = deploy(&bed, &proxy).await;
    let dead = sample("lambda-destination-failure.json", &bed.account);
    let undelivered = sample("s3-object-created.json", &bed.account);

    // 1. SNS answers the first publish 500 twice (within the SDK's attempts), then throttles
    // every publish (an outage beyond notify's deadline): the first message is sent and
    // marked; the second comes back, unmarked, after notify retried it until its deadline.
    // (The throttle takes only the second message's publishes: its alert names the DAG.)
    proxy.inject([
        Fault::sns("Publish", 500, "InternalError", 2),
        Fault {
            body: "sales_load".into(),
            ..Fault::sns("Publish", 400, "Throttling", UNTIL_WITHDRAWN)
        },
    ]);
    let batch = alerts
        .batch(&[(&undelivered, Some("SDK_CLIENT_ERROR")), (&dead, None)])
        .await;
    let answer = alerts.handle(batch.clone()).await;
    let left = proxy.withdraw();
    assert_eq!(
        left.len(),
        1,
        "the outage outlasted the invocation: {left:?}"
    );
    assert_eq!(
        failed_ids(&answer),
        [batch["Records"][1]["messageId"].as_str().unwrap()]
    );
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(emails[0].contains("SDK_CLIENT_ERROR"), "{emails:?}");
    assert_eq!(
        alerts.markers().await,
        1,
        "a failed publish is never marked"
    );
    let statuses = publishes(&proxy);
    let (sent, throttled) = statuses.split_at(3);
    assert_eq!(sent, [500, 500, 200], "{:?}", proxy.served());
    // The SDK's 3 attempts per call, and more than one call: notify's own retries.
    assert!(
        throttled.len() >= 6 && throttled.len() % 3 == 0 && throttled.iter().all(|s| *s == 400),
        "{throttled:?}"
    );

    // 2. SQS delivers the failed message again, and the sent one a second time (at least
    // once: same message ids); S3 slows the marker write down twice (503, within the
    // SDK's attempts).
    proxy.inject([Fault::s3("PUT", SENT_PREFIX, 503, 2)]);
    let answer = alerts.handle(batch.clone()).await;
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    assert_eq!(failed_ids(&answer), Vec::<String>::new());
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 2, "one email per failure: {emails:?}");
    assert!(emails[1].contains("failed after"), "{emails:?}");
    assert_eq!(alerts.markers().await, 2);

    // 3. Both once more, the marker reads failing once (500, absorbed): duplicates, no email.
    proxy.inject([Fault::s3("HEAD", SENT_PREFIX, 500, 1)]);
    let answer = alerts.handle(batch).await;
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    assert_eq!(failed_ids(&answer), Vec::<String>::new());
    assert_eq!(alerts.emails(&bed).await.len(), 2);

    // 4. An EventBridge event (not a batch) whose publish fails until notify's deadline
    // fails the invocation (Lambda retries it), unmarked; its explanation (GetEnvironment)
    // throttled throughout only loses the detail. The retry then sends it once.
    let create_failed = sample("mwaa-status-create-failed.json", &bed.account);
    let environment = create_failed["detail"]["name"].as_str().unwrap().to_owned();
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "name": environment, "kind": "throttle",
                "count": UNTIL_WITHDRAWN}]),
    )
    .await;
    proxy.inject([Fault::sns(
        "Publish",
        503,
        "ServiceUnavailable",
        UNTIL_WITHDRAWN,
    )]);
    let before = publishes(&proxy).len();
    let failure = alerts.fail(create_failed.clone()).await;
    failure.assert_is("Retryable", &["SNS Publish"]);
    assert_eq!(proxy.withdraw().len(), 1, "the SNS outage outlasted it");
    let unavailable = &publishes(&proxy)[before..];
    assert!(
        unavailable.len() >= 6 && unavailable.iter().all(|s| *s == 503),
        "{unavailable:?}"
    );
    let left = withdraw_mwaa_faults(&bed).await;
    let reads = UNTIL_WITHDRAWN as u64 - left[0]["count"].as_u64().unwrap();
    assert!(reads >= 3, "GetEnvironment throttled {reads} times: {left}");
    assert_eq!(alerts.markers().await, 2);
    assert_eq!(alerts.emails(&bed).await.len(), 2);
    let sent = alerts.handle(create_failed.clone()).await;
    assert!(sent.get("sent").is_some(), "{sent}");
    let again = alerts.handle(create_failed).await;
    assert!(again.get("duplicate").is_some(), "{again}");
    assert_eq!(alerts.emails(&bed).await.len(), 3);
    assert_eq!(alerts.markers().await, 3);
}

/// The morning digest's marker (`digests/<date>.json`, PutObject `If-None-Match: *`) answered
/// S3's 409 ConditionalRequestConflict once ("another conditional write is under way": retry):
/// notify retries it, and the digest is sent exactly once.
#[tokio::test]
async fn faults_notify_a_conflicting_digest_marker_write_still_sends_one_digest() {
    let bed: Session = session_without_airflow().await;
    let proxy = FaultProxy::start(&bed.moto_url).await;
    let config = bed.aws_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(BUCKET)
    .send()
    .await
    .unwrap();
    let key_arn = json!(suite_key(&bed).await);
    let digest = Digest::deploy_with(
        &bed,
        &key_arn,
        "dev-",
        Deployment::new().endpoint("AWS_ENDPOINT_URL_S3", &proxy.url),
    )
    .await;
    // The stack's resume (a stand-in of one step), ended for one environment this morning.
    let sfn = aws_sdk_sfn::Client::new(&config);
    let definition =
        json!({"StartAt": "Resumed", "States": {"Resumed": {"Type": "Pass", "End": true}}});
    let input = json!({"environment": "dev-analytics"});
    let ended = ended_execution(&sfn, "mwaa-ops-resume", &definition, &input).await;
    let execution = ended.execution_arn();
    proxy.inject([Fault {
        method: "PUT",
        path: "/digests/".into(),
        body: String::new(),
        status: 409,
        answer: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ConditionalRequestConflict\
                 </Code><Message>A conflicting operation occurred. If using PutObject you can \
                 retry the request. If using multipart upload you should initiate another \
                 CreateMultipartUpload request and re-upload each part.</Message><RequestId>\
                 fault-proxy</RequestId></Error>"
            .into(),
        count: 1,
    }]);
    let answers = digest.deliver_end_of(execution).await;
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    let writes: Vec<u16> = proxy
        .served()
        .iter()
        .filter(|s| s.request.starts_with("PUT ") && s.request.contains("/digests/"))
        .map(|s| s.status)
        .collect();
    assert_eq!(writes, [409, 200], "{:?}", proxy.served());
    assert!(
        answers[0]["morning_digest"]["digest"]
            .as_str()
            .is_some_and(|s| s.starts_with("[mwaa-ops]")),
        "{answers:?}"
    );
    assert_eq!(digest.emails(&bed).await.len(), 1);
    // Delivered again: the marker the retry wrote remembers the date.
    let again = digest.deliver_end_of(execution).await;
    assert_eq!(
        again[0]["morning_digest"]["digest"], "sent already",
        "{again:?}"
    );
    assert_eq!(digest.emails(&bed).await.len(), 1);
}
