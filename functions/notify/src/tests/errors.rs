//! What Lambda is told when notify fails: the `errorType` is the error's kind, so a caller's
//! retry policy can tell "SNS is throttling, try again" from "this event will never do".

use lambda_runtime::Diagnostic;

use super::*;

#[tokio::test]
async fn a_publish_throttled_past_the_deadline_ends_the_invocation_as_retryable() {
    let n = notify(Duration::from_secs(3600));
    *n.ops.sns_throttled.lock().unwrap() = true;
    let event = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    let err = n.run(event).await.unwrap_err();
    assert!(
        *n.ops.publish_attempts.lock().unwrap() > 1,
        "retried while the deadline allowed"
    );
    assert!(n.ops.sent.lock().unwrap().is_empty());
    let diagnostic = Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "Retryable");
    assert!(
        diagnostic
            .error_message
            .contains("SNS Publish failed: Throttling: Rate exceeded"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn in_a_queue_batch_a_throttled_publish_keeps_the_message_instead_of_failing() {
    let n = notify(Duration::from_secs(3600));
    *n.ops.sns_throttled.lock().unwrap() = true;
    let batch = sample(include_str!("../../../../events/sqs-failed-events.json"));
    let answer = n
        .run(batch)
        .await
        .expect("a batch answers with the messages SQS keeps");
    assert_eq!(
        failed_ids(&answer),
        [
            "0a1b2c3d-0000-4000-8000-000000000001",
            "0a1b2c3d-0000-4000-8000-000000000002",
            "0a1b2c3d-0000-4000-8000-000000000003"
        ]
    );
    assert!(n.ops.published.lock().unwrap().is_empty());
    assert!(n.ops.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_batch_reached_after_the_deadline_stays_in_the_queue_untried() {
    let n = notify(Duration::from_secs(3600));
    let batch = sample(include_str!("../../../../events/sqs-failed-events.json"));
    let answer = n
        .handle(batch, OWN_ARN, common::Deadline::after(Duration::ZERO))
        .await
        .expect("a batch answers with the messages SQS keeps");
    assert_eq!(failed_ids(&answer).len(), 3, "{answer}");
    assert_eq!(
        *n.ops.publish_attempts.lock().unwrap(),
        0,
        "no alert started after the deadline"
    );
    assert_eq!(*n.ops.environment_reads.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_malformed_event_is_invalid_input_and_an_unknown_kind_is_an_alert() {
    let n = notify(Duration::from_secs(3600));
    for event in [
        sample(include_str!(
            "../../../../events/invalid/sfn-execution-without-arn.json"
        )),
        sample(include_str!(
            "../../../../events/invalid/mwaa-status-without-name.json"
        )),
        json!("text"),
        json!({"Records": "not a list"}),
        json!({"check_pending": {"environment": "dev"}}),
    ] {
        let err = n.run(event.clone()).await.unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "InvalidInput", "{event}");
    }
    assert_eq!(*n.ops.publish_attempts.lock().unwrap(), 0);

    // Not a failure notify knows, but nothing may be dropped: it is reported as it is.
    let s3 = sample(include_str!("../../../../events/s3-object-created.json"));
    let answer = n.run(s3).await.unwrap();
    assert_eq!(
        answer,
        json!({"sent": "[mwaa-ops] Unknown event kind: aws.s3 / Object Created"})
    );
}
