use serde_json::{json, Value};

use super::*;
use crate::event::parse_failure;
use crate::fixtures::{alert, sample, settings};

#[test]
fn pending_is_watched_and_alerts_only_if_still_pending() {
    let pending = sample(include_str!("../../../../events/mwaa-status-pending.json"));
    assert_eq!(
        decide(&pending, &Facts::default(), &settings()),
        Plan::WatchPending {
            environment: "analytics-shared".into(),
            since: "2026-11-21T07:14:05Z".into()
        }
    );
    let off = Settings {
        pending_minutes: 0,
        ..settings()
    };
    assert!(matches!(
        decide(&pending, &Facts::default(), &off),
        Plan::Ignore(_)
    ));
    let check = sample(include_str!("../../../../events/pending-check.json"));
    let still = Facts {
        status_now: Some(Status::Pending),
        ..Facts::default()
    };
    let alert = alert(&check, &still);
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] analytics-shared still PENDING after 30 min: no VPC endpoints"
    );
    let available = Facts {
        status_now: Some(Status::Available),
        ..Facts::default()
    };
    assert!(
        matches!(decide(&check, &available, &settings()), Plan::Ignore(r) if r.contains("AVAILABLE"))
    );
}

#[test]
fn other_statuses_are_not_failures() {
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ))
    .unwrap();
    event["detail"]["status"] = json!("AVAILABLE");
    let failure = parse_failure(&event).unwrap();
    assert!(matches!(
        decide(&failure, &Facts::default(), &settings()),
        Plan::Ignore(_)
    ));
}

#[test]
fn notify_reports_the_failure_it_could_not_send_not_itself() {
    let record = json!({
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:mwaa-ops-notify-X"},
        "requestPayload": {"detail-type": "MWAA Environment Status Change", "source": "aws.airflow",
                           "detail": {"name": "dev", "status": "UNAVAILABLE"}},
        "responsePayload": {"errorMessage": "SNS Publish failed"}
    });
    let failure = parse_failure(&record).unwrap();
    let payload = own_failure_payload(&failure).expect("notify's own record");
    assert_eq!(payload["detail"]["name"], "dev");
    let other = sample(include_str!(
        "../../../../events/lambda-destination-failure.json"
    ));
    assert!(own_failure_payload(&other).is_none());
}

#[test]
fn a_status_change_without_a_status_is_decided_on_the_status_read() {
    let sparse = sample(include_str!("../../../../events/mwaa-status-sparse.json"));
    let read = |status| Facts {
        status_now: Some(status),
        last_error: Some("INCORRECT_CONFIGURATION: no route".into()),
        ..Facts::default()
    };
    let failed = alert(&sparse, &read(Status::UpdateFailed));
    assert_eq!(
        failed.subject(),
        "[mwaa-ops] MWAA environment analytics-shared is UPDATE_FAILED"
    );
    assert!(failed.body().contains("INCORRECT_CONFIGURATION"));
    assert!(matches!(
        decide(&sparse, &read(Status::Pending), &settings()),
        Plan::WatchPending { environment, .. } if environment == "analytics-shared"
    ));
    for quiet in [Status::Available, Status::NotFound, Status::Maintenance] {
        let plan = decide(&sparse, &read(quiet.clone()), &settings());
        assert!(
            matches!(&plan, Plan::Ignore(r) if r.contains(quiet.as_str())),
            "{plan:?}"
        );
    }
    assert!(matches!(
        decide(&sparse, &Facts::default(), &settings()),
        Plan::Ignore(r) if r.contains("unknown")
    ));
    // The event's own status, when it says one, is what is decided on.
    let rich = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    assert_eq!(
        alert(&rich, &read(Status::Available)).subject(),
        "[mwaa-ops] MWAA environment dev-analytics is CREATE_FAILED"
    );
}

#[test]
fn only_status_changes_of_the_deployments_environments_are_its_business() {
    let dev = Settings {
        environment_prefix: "dev-".into(),
        ..settings()
    };
    let own = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    assert_eq!(not_ours(&own, &dev), None);
    let other = sample(include_str!("../../../../events/mwaa-status-sparse.json"));
    let why = not_ours(&other, &dev).unwrap();
    assert!(
        why.contains("analytics-shared") && why.contains("\"dev-\""),
        "{why}"
    );
    // Other kinds of failure are never filtered by name.
    let execution = sample(include_str!("../../../../events/sfn-execution-failed.json"));
    assert_eq!(not_ours(&execution, &dev), None);
}
