//! The MWAA status change as AWS documents it: no detail. The name comes from the resource
//! ARN, the status (and why it failed) from GetEnvironment.
use super::*;

fn sparse() -> Value {
    sample(include_str!("../../../../events/mwaa-status-sparse.json"))
}

/// notify where MWAA says `analytics-shared` is `status` (absent: MWAA does not know it).
fn notify_with(status: Option<Status>, last_error: Option<&str>) -> Notify<Fake> {
    let n = notify(Duration::from_secs(3600));
    if let Some(status) = status {
        n.ops.environments.lock().unwrap().insert(
            "analytics-shared".into(),
            EnvironmentNow {
                status,
                last_error: last_error.map(str::to_owned),
            },
        );
    }
    n
}

#[tokio::test]
async fn a_failing_status_read_from_get_environment_is_one_alert_with_its_error() {
    let n = notify_with(
        Some(Status::CreateFailed),
        Some("INCORRECT_CONFIGURATION: the subnets have no route to the internet"),
    );
    let answer = n.run(sparse()).await.unwrap();
    assert_eq!(
        answer,
        json!({"sent": "[mwaa-ops] MWAA environment analytics-shared is CREATE_FAILED"})
    );
    let sent = n.ops.published.lock().unwrap().clone();
    let body = sent[0].body();
    assert!(body.contains("Status:      CREATE_FAILED"), "{body}");
    assert!(
        body.contains("Last error:  INCORRECT_CONFIGURATION"),
        "{body}"
    );
    assert!(body.contains("Since:       2026-11-21T07:14:05Z"), "{body}");
    // One read told both the status and the error.
    assert_eq!(*n.ops.environment_reads.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_pending_status_read_from_get_environment_is_watched() {
    let n = notify_with(Some(Status::Pending), None);
    let answer = n.run(sparse()).await.unwrap();
    assert_eq!(answer, json!({"watching": "analytics-shared"}));
    assert_watched_back_to_this_function(&n);
}

#[tokio::test]
async fn statuses_that_are_not_failures_are_ignored_without_an_alert() {
    for status in [
        Some(Status::Available),
        Some(Status::Creating),
        Some(Status::Deleting),
        None,
    ] {
        let n = notify_with(status.clone(), None);
        let answer = n.run(sparse()).await.unwrap();
        let reason = answer["ignored"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        let said = status.as_ref().map_or("NOT_FOUND", Status::as_str);
        assert!(reason.contains(said), "{status:?}: {reason}");
        assert!(subjects(&n).is_empty(), "{status:?}");
    }
}

#[tokio::test]
async fn a_failing_read_fails_the_invocation_so_lambda_retries_it() {
    let n = notify_with(Some(Status::CreateFailed), None);
    *n.ops.mwaa_throttled.lock().unwrap() = true;
    let err = n.run(sparse()).await.unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable"
    );
    assert!(subjects(&n).is_empty());
}

#[tokio::test]
async fn environments_outside_the_prefix_are_ignored_before_any_read() {
    let mut n = notify_with(Some(Status::CreateFailed), None);
    n.settings.environment_prefix = "dev-".into();
    let rich = sample(include_str!("../../../../events/mwaa-status-pending.json"));
    for event in [sparse(), rich] {
        let answer = n.run(event).await.unwrap();
        let reason = answer["ignored"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(
            reason.contains("analytics-shared") && reason.contains("\"dev-\""),
            "{reason}"
        );
    }
    assert_eq!(*n.ops.environment_reads.lock().unwrap(), 0);
    assert!(subjects(&n).is_empty());
    assert!(n.ops.watches.lock().unwrap().is_empty());
    // Failures of the deployment's own environments still alert.
    let own = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    assert!(n.run(own).await.unwrap().get("sent").is_some());
}

#[tokio::test]
async fn a_sparse_event_without_an_environment_arn_names_the_field_and_the_event() {
    let mut event = sparse();
    event["resources"] = json!(["arn:aws:airflow:us-east-1:210987654321:environment/"]);
    let n = notify_with(Some(Status::CreateFailed), None);
    let err = n.run(event).await.unwrap_err();
    common::testing::assert_invalid_input(
        err,
        &[
            "detail.name",
            "resources",
            "b3c6d4e5-9a2f-4d7b-8e3c-2f4a6b8c0d1e",
        ],
    );
    assert_eq!(*n.ops.environment_reads.lock().unwrap(), 0);
}
