//! The status-change event as AWS documents it: no detail at all. The name comes from the
//! resource ARN, the status from GetEnvironment.
use super::*;

fn status_of(fake: Fake, status: Option<Status>) -> Fake {
    let mut fake = fake;
    match status {
        Some(status) => fake.env.as_mut().unwrap().status = status,
        None => fake.env = None,
    }
    fake
}

#[tokio::test]
async fn a_sparse_event_of_a_pending_environment_provisions_after_one_read() {
    let function = pending("PRIVATE_ONLY");
    for delivery in 0..2 {
        let report = function.run(event("sparse")).await.unwrap();
        assert_eq!(report["action"], "provisioned", "{report}");
        assert_eq!(report["status"], "PENDING", "{report}");
        assert_eq!(report["status_from"], "GetEnvironment", "{report}");
        assert_eq!(report["environment"], "analytics-shared", "{report}");
        let created = report["created"].as_array().unwrap().len();
        assert_eq!(created, if delivery == 0 { 2 } else { 0 }, "{report}");
    }
    // The read that told the status is the one provisioning uses.
    assert_eq!(*function.ops.reads.lock().unwrap(), 2);
    assert_eq!(queue_count(&function.ops), 1);
}

#[tokio::test]
async fn a_sparse_event_of_a_gone_environment_cleans_up_by_the_tags() {
    let provisioned = pending("PRIVATE_ONLY");
    provisioned.run(event("pending")).await.unwrap();
    let gone = with_fake(Fake {
        endpoints: Mutex::new(provisioned.ops.endpoints.lock().unwrap().clone()),
        ..status_of(Fake::pending("PRIVATE_ONLY"), None)
    });
    let report = gone.run(event("sparse")).await.unwrap();
    assert_eq!(report["action"], "cleaned_up", "{report}");
    assert_eq!(report["status"], "NOT_FOUND", "{report}");
    assert_eq!(report["deleted"].as_array().unwrap().len(), 2, "{report}");
    // Neither queue nor subnets in the event: our endpoints' tags name them.
    assert_eq!(report["queue"], QUEUE, "{report}");
    assert_eq!(report["vpcs"], json!(["vpc-1"]), "{report}");
    assert_eq!(queue_count(&gone.ops), 0);
    assert!(gone.ops.live("").iter().all(|e| e.is_sqs()));
}

#[tokio::test]
async fn a_sparse_event_of_a_status_not_acted_on_is_ignored_without_a_change() {
    for status in [
        Status::Available,
        Status::Creating,
        Status::Deleting,
        Status::UpdateFailed,
    ] {
        let function = with_fake(status_of(
            Fake::pending("PUBLIC_ONLY"),
            Some(status.clone()),
        ));
        let report = function.run(event("sparse")).await.unwrap();
        assert_eq!(report["action"], "ignored", "{report}");
        assert_eq!(report["status"], status.as_str(), "{report}");
        assert!(function.ops.mutations().is_empty(), "{status}");
    }
}

#[tokio::test]
async fn a_failing_read_fails_the_sparse_event_as_retryable() {
    let function = with_fake(Fake {
        throttled: Some("GetEnvironment"),
        ..Fake::pending("PUBLIC_ONLY")
    });
    let err = function.run(event("sparse")).await.unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable"
    );
    assert!(function.ops.mutations().is_empty());
}

#[tokio::test]
async fn environments_outside_the_prefix_are_ignored_before_any_call() {
    for name in ["event", "sparse"] {
        let function = ProvisionEndpoints {
            ops: Fake {
                // Any call would fail loudly: none may be made.
                throttled: Some("GetEnvironment"),
                ..Fake::pending("PUBLIC_ONLY")
            },
            environment_prefix: "prod-".into(),
        };
        let report = function
            .run(event(if name == "event" { "pending" } else { name }))
            .await
            .unwrap();
        assert_eq!(report["action"], "ignored", "{report}");
        assert!(
            report["reason"].as_str().unwrap().contains("\"prod-\""),
            "{report}"
        );
        assert_eq!(*function.ops.attempts.lock().unwrap(), 0);
        assert!(function.ops.mutations().is_empty());
    }
}

#[tokio::test]
async fn a_sparse_event_without_an_environment_arn_names_the_field_and_the_event() {
    let mut event = event("sparse");
    event["resources"] = json!([]);
    let err = with_fake(Fake::pending("PUBLIC_ONLY"))
        .run(event)
        .await
        .unwrap_err();
    common::testing::assert_invalid_input(
        err,
        &[
            "detail.name",
            "resources",
            "b3c6d4e5-9a2f-4d7b-8e3c-2f4a6b8c0d1e",
        ],
    );
}
