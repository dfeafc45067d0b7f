//! The fault matrix of notify: SNS and S3 faults through a fault proxy in front of moto,
//! MWAA faults through the local control plane (`/_bed/faults`). Every test checks that each
//! fault it injected was served (a fault never served proves nothing) and that each failure
//! is sent exactly once. The pause-resume steps' faults are in faults_pause_resume.rs.
//!
//! The SDK makes 3 attempts per call: 2 faults in a row are its to absorb, 3 reach notify.

use std::time::Duration;

use mwaa_ops_tests::fault_proxy::{Fault, FaultProxy};
use mwaa_ops_tests::{session_without_airflow, Bed, Session};
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
use mwaa_ops_tests::rules::sqs_batch;
use notify::decide::Settings;
use notify::ops::{AwsOps, SENT_PREFIX};
use notify::Notify;

const OWN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:mwaa-ops-notify";

fn sample(name: &str, account: &str) -> Value {
    let path = mwaa_ops_tests::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace("210987654321", account)).unwrap()
}

struct Alerts {
    function: Notify<AwsOps>,
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
    let faulty = config
        .clone()
        .into_builder()
        .endpoint_url(&proxy.url)
        .build();
    let sns = aws_sdk_sns::Client::new(&faulty);
    let topic_arn = aws_sdk_sns::Client::new(&config)
        .create_topic()
        .name("mwaa-ops-alerts")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let function = Notify {
        ops: AwsOps {
            sns,
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&faulty)
                    .force_path_style(true)
                    .build(),
            ),
            sfn: aws_sdk_sfn::Client::new(&config),
            mwaa: bed.mwaa().await,
            scheduler: aws_sdk_scheduler::Client::new(&config),
            topic_arn: topic_arn.clone(),
            bucket: BUCKET.into(),
            scheduler_role_arn: "arn:aws:iam::123456789012:role/mwaa-ops-scheduler".into(),
            dead_letter_arn: None,
        },
        settings: Settings {
            region: bed.region.clone(),
            pending_minutes: 30,
            environment_prefix: "dev-".into(),
        },
        window: Duration::from_secs(3600),
        digest: None,
    };
    Alerts {
        function,
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

    /// One invocation; no retry budget of notify's own, so only the SDK's 3 attempts.
    async fn handle(&self, event: Value) -> Value {
        self.function
            .handle(event, OWN_ARN, common::Deadline::after(Duration::ZERO))
            .await
            .expect("notify answers the batch")
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

#[tokio::test]
async fn faults_notify_sends_each_failure_once_through_sns_and_s3_faults() {
    let bed: Session = session_without_airflow().await;
    let proxy = FaultProxy::start(&bed.moto_url).await;
    let alerts = deploy(&bed, &proxy).await;
    let dead = sample("lambda-destination-failure.json", &bed.account);
    let undelivered = sample("s3-object-created.json", &bed.account);

    // 1. SNS throttles the first publish 3 times (beyond the SDK's attempts), answers the
    // second 500 twice (within them): the first message comes back, unmarked; the second
    // is sent and marked.
    proxy.inject([
        Fault::sns("Publish", 400, "Throttling", 3),
        Fault::sns("Publish", 500, "InternalError", 2),
    ]);
    let batch = alerts
        .batch(&[(&dead, None), (&undelivered, Some("SDK_CLIENT_ERROR"))])
        .await;
    let answer = alerts.handle(batch.clone()).await;
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    assert_eq!(
        failed_ids(&answer),
        [batch["Records"][0]["messageId"].as_str().unwrap()]
    );
    let emails = alerts.emails(&bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert!(emails[0].contains("SDK_CLIENT_ERROR"), "{emails:?}");
    assert_eq!(
        alerts.markers().await,
        1,
        "a failed publish is never marked"
    );
    let publishes = proxy
        .served()
        .iter()
        .filter(|s| s.request == "POST /")
        .map(|s| s.status)
        .collect::<Vec<_>>();
    assert_eq!(
        publishes,
        [400, 400, 400, 500, 500, 200],
        "{:?}",
        proxy.served()
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

    // 4. An EventBridge event (not a batch) whose publish fails for good fails the
    // invocation (Lambda retries it), unmarked; its explanation (GetEnvironment) throttled
    // beyond the SDK's attempts only loses the detail. The retry then sends it once.
    let create_failed = sample("mwaa-status-create-failed.json", &bed.account);
    let environment = create_failed["detail"]["name"].as_str().unwrap().to_owned();
    bed.inject_faults(
        json!([{"operation": "GetEnvironment", "name": environment, "kind": "throttle",
                "count": 3}]),
    )
    .await;
    proxy.inject([Fault::sns("Publish", 503, "ServiceUnavailable", 3)]);
    let err = alerts
        .function
        .handle(
            create_failed.clone(),
            OWN_ARN,
            common::Deadline::after(Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SNS Publish"), "{err}");
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    bed.assert_faults_served().await;
    assert_eq!(alerts.markers().await, 2);
    assert_eq!(alerts.emails(&bed).await.len(), 2);
    let sent = alerts.handle(create_failed.clone()).await;
    assert!(sent.get("sent").is_some(), "{sent}");
    let again = alerts.handle(create_failed).await;
    assert!(again.get("duplicate").is_some(), "{again}");
    assert_eq!(alerts.emails(&bed).await.len(), 3);
    assert_eq!(alerts.markers().await, 3);
}
