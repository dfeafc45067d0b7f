//! The fault matrix of the steps that need no Airflow (environment-status, save-configuration,
//! create-environment, delete-environment) and of notify: throttling, 5xx, 5xx after the work
//! was done (the answer lost) and slow answers, injected through the local MWAA control plane
//! (`/_bed/faults`) and, for SNS and S3, a fault proxy in front of moto. Every test checks
//! that each fault it injected was served (a fault never served proves nothing) and that the
//! work was done exactly once. The run-dag, enable-dags and whole-state-machine cases are in
//! tests/pause_resume (they need Airflow).
//!
//! The SDK makes 3 attempts per call: 2 faults in a row are its to absorb, 3 reach the step,
//! whose error must then be `Retryable` (what the state machines retry).

use std::time::Duration;

use aws_smithy_types::DateTime;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::fault_proxy::{Fault, FaultProxy};
use mwaa_ops_tests::{session_without_airflow, Bed, Session};
use pause_resume::environment::{
    create_environment, delete_environment, environment_status, save_configuration, snapshot_key,
};
use pause_resume::ErrorKind;
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
/// The attempt timeout of the clients here: short, so a slow answer costs little time.
const ATTEMPT: Duration = Duration::from_millis(1000);
/// A slow answer: beyond `ATTEMPT`, so the SDK gives up on it and tries again.
const SLOW_MS: u64 = 1500;

struct Steps {
    mwaa: aws_sdk_mwaa::Client,
    s3: aws_sdk_s3::Client,
}

async fn steps(bed: &Bed) -> Steps {
    let config = bed.aws_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let config = config.into_builder().endpoint_url(&bed.mwaa_url).build();
    Steps {
        mwaa: common::aws::mwaa_client_with_timeout(&config, ATTEMPT),
        s3,
    }
}

async fn faults(bed: &Bed, rules: Value) {
    bed.control("faults", rules).await;
}

/// Calls of `operation` to `name`, as `(fault kind or "", after, status)`.
async fn calls(bed: &Bed, operation: &str, name: &str) -> Vec<(String, bool, u64)> {
    bed.calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == operation && c["name"] == name)
        .map(|c| {
            (
                c["fault"].as_str().unwrap_or_default().to_owned(),
                c["after"].as_bool().unwrap_or(false),
                c["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Calls that did the work: answered 200, or faulted after the work and the work succeeded.
async fn done(bed: &Bed, operation: &str, name: &str) -> usize {
    bed.calls()
        .await
        .into_iter()
        .filter(|c| c["operation"] == operation && c["name"] == name)
        .filter(|c| c["status"] == 200 || (c["after"] == true && c.get("work_error").is_none()))
        .count()
}

/// Every injected rule was used up.
async fn all_served(bed: &Bed) {
    let url = format!("{}/_bed/faults", bed.mwaa_url);
    let left: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(left, json!([]), "faults never served");
}

fn input(name: &str) -> Value {
    json!({"environment": name})
}

#[tokio::test]
async fn faults_status_save_and_delete_retry_and_delete_once() {
    let bed: Session = session_without_airflow().await;
    let s = steps(&bed).await;
    let name = "dev-faults";
    NewEnvironment::new(name, "2.10.3").create(&s.mwaa).await;
    wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;

    // environment-status: a throttle, a 500 and a slow answer are the SDK's to absorb.
    faults(
        &bed,
        json!([
            {"operation": "GetEnvironment", "name": name, "kind": "throttle"},
            {"operation": "GetEnvironment", "name": name, "kind": "server_error", "status": 500},
        ]),
    )
    .await;
    let out = environment_status(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap();
    assert_eq!(out["status"], "AVAILABLE");
    let before_slow = calls(&bed, "GetEnvironment", name).await.len();
    faults(
        &bed,
        json!([{"operation": "GetEnvironment", "name": name, "kind": "latency", "latency_ms": SLOW_MS}]),
    )
    .await;
    let out = environment_status(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap();
    assert_eq!(out["status"], "AVAILABLE");
    all_served(&bed).await;
    // The slow answer was given up on (attempt timeout) and asked again. Without the timeout
    // the slow call would answer and be the only one. (A slow call is recorded when its
    // sleep ends, after the retry: wait for both.)
    let mut slow = vec![];
    for _ in 0..50 {
        slow = calls(&bed, "GetEnvironment", name)
            .await
            .split_off(before_slow);
        if slow.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut kinds: Vec<&str> = slow.iter().map(|c| c.0.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["", "latency"],
        "one retry after the attempt timeout: {slow:?}"
    );
    let gets = calls(&bed, "GetEnvironment", name).await;
    let served: Vec<&str> = gets
        .iter()
        .map(|c| c.0.as_str())
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(served, ["throttle", "server_error", "latency"], "{gets:?}");

    // Three in a row outlast the SDK: the step fails Retryable, for the state machine to retry.
    faults(
        &bed,
        json!([{"operation": "GetEnvironment", "name": name, "kind": "server_error",
                "status": 503, "count": 3}]),
    )
    .await;
    let err = environment_status(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    faults(
        &bed,
        json!([{"operation": "GetEnvironment", "name": name, "kind": "throttle", "count": 3}]),
    )
    .await;
    let err = save_configuration(&s.mwaa, &s.s3, BUCKET, DateTime::from_secs(0), input(name))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    all_served(&bed).await;
    assert!(
        s.s3.list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap()
            .contents()
            .is_empty(),
        "nothing saved by a failed save"
    );

    // delete-environment: the delete is done, but its answer is lost (500 after the work);
    // the SDK asks again, MWAA refuses (DELETING), the step reads DELETING: done, once.
    faults(
        &bed,
        json!([{"operation": "DeleteEnvironment", "name": name, "kind": "server_error",
                "after": true}]),
    )
    .await;
    let out = delete_environment(&s.mwaa, input(name)).await.unwrap();
    assert_eq!(out["status"], "DELETING", "{out}");
    all_served(&bed).await;
    assert_eq!(done(&bed, "DeleteEnvironment", name).await, 1);
    // The state machine's retry of the step (its answer lost too) changes nothing.
    let again = delete_environment(&s.mwaa, input(name)).await.unwrap();
    assert_eq!(again["deleted"], false);
    assert_eq!(done(&bed, "DeleteEnvironment", name).await, 1);
    let deletes = calls(&bed, "DeleteEnvironment", name).await;
    assert_eq!(
        deletes[0],
        ("server_error".into(), true, 500),
        "{deletes:?}"
    );
}

#[tokio::test]
async fn faults_create_environment_creates_once_when_answers_are_lost_or_slow() {
    let bed: Session = session_without_airflow().await;
    let s = steps(&bed).await;
    for name in ["dev-lost", "dev-slow"] {
        NewEnvironment::new(name, "2.10.3").create(&s.mwaa).await;
        wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
        save_configuration(&s.mwaa, &s.s3, BUCKET, DateTime::from_secs(0), input(name))
            .await
            .unwrap();
        let snapshot = json!({"environment": name, "manifest": "s3://b/m.json",
            "active_dags": [], "paused_at": "2026-01-01T00:00:00+00:00"});
        s.s3.put_object()
            .bucket(BUCKET)
            .key(snapshot_key(name))
            .body(snapshot.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
        delete_environment(&s.mwaa, input(name)).await.unwrap();
    }
    for name in ["dev-lost", "dev-slow"] {
        while s.mwaa.get_environment().name(name).send().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Created, but every answer of the SDK's three attempts is lost (500 after the work): the
    // step fails Retryable; the state machine's retry finds it and creates nothing more.
    let name = "dev-lost";
    faults(
        &bed,
        json!([{"operation": "CreateEnvironment", "name": name, "kind": "server_error",
                "after": true, "count": 3}]),
    )
    .await;
    let err = create_environment(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    all_served(&bed).await;
    let retried = create_environment(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap();
    assert_eq!(
        (retried["created"].clone(), retried["resume_needed"].clone()),
        (json!(false), json!(true)),
        "{retried}"
    );
    assert_eq!(
        done(&bed, "CreateEnvironment", name).await,
        2,
        "one before the pause, one now"
    );
    let creates = calls(&bed, "CreateEnvironment", name).await;
    // Creates before the pause (NewEnvironment) are not faulted: only the three here are.
    assert_eq!(
        creates.iter().filter(|c| c.1).count(),
        3,
        "three answers lost: {creates:?}"
    );

    // Slow: the SDK gives up on the first attempt and tries again; whichever lands first
    // creates, the other finds it there. One environment, the step succeeds.
    let name = "dev-slow";
    faults(
        &bed,
        json!([
            {"operation": "CreateEnvironment", "name": name, "kind": "latency", "latency_ms": SLOW_MS},
            {"operation": "GetEnvironment", "name": name, "kind": "throttle"},
        ]),
    )
    .await;
    let out = create_environment(&s.mwaa, &s.s3, BUCKET, input(name))
        .await
        .unwrap();
    assert_eq!(out["resume_needed"], true, "{out}");
    all_served(&bed).await;
    // The slow attempt's work ends after the test's answer: wait for its call to be recorded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while calls(&bed, "CreateEnvironment", name).await.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow create never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        done(&bed, "CreateEnvironment", name).await,
        2,
        "one before the pause, one now"
    );
    wait_for_status(&s.mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
}

// ----------------------------------------------------------------------------------- notify

mod notify_faults {
    use super::*;
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
            },
            window: Duration::from_secs(3600),
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
            let data: Value = reqwest::get(format!("{}/moto-api/data.json", bed.moto_url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
            let topic = topics
                .iter()
                .find(|t| t["arn"] == self.topic_arn.as_str())
                .expect("the alert topic");
            topic["sent_notifications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n[2].as_str().unwrap_or_default().to_owned())
                .collect()
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
        faults(
            &bed,
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
        all_served(&bed).await;
        assert_eq!(alerts.markers().await, 2);
        assert_eq!(alerts.emails(&bed).await.len(), 2);
        let sent = alerts.handle(create_failed.clone()).await;
        assert!(sent.get("sent").is_some(), "{sent}");
        let again = alerts.handle(create_failed).await;
        assert!(again.get("duplicate").is_some(), "{again}");
        assert_eq!(alerts.emails(&bed).await.len(), 3);
        assert_eq!(alerts.markers().await, 3);
    }
}
