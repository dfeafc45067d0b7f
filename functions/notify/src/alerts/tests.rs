//! The text of each alert, reached through the decision that picks it.

use serde_json::{json, Value};

use crate::decide::Facts;
use crate::event::{parse_failure, Failure};
use crate::fixtures::{alert, assert_says, sample};
use crate::ops::FailedStep;

#[test]
fn a_failed_pause_names_environment_step_error_cause_start_and_console() {
    let failure = sample(include_str!("../../../../events/sfn-execution-failed.json"));
    let facts = Facts {
        failed_step: Some(FailedStep {
            state: "RunExport".into(),
            error: None,
            cause: None,
        }),
        ..Facts::default()
    };
    let alert = alert(&failure, &facts);
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] Pause of dev-analytics FAILED at RunExport"
    );
    let body = alert.body();
    assert_says(
        &body,
        &[
            "Environment: dev-analytics",
            "Step:        RunExport",
            "Error:       MwaaOps.ExportFailed",
            "Cause:       export of dev-analytics timed out",
            "Started:     2026-11-21T22:00:00Z",
            "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:us-east-1:210987654321:execution:mwaa-ops-pause:nightly-dev-analytics-20261121",
        ],
    );
    assert!(!body.contains("hunter2"), "{body}");
    assert_eq!(alert.environment.as_deref(), Some("dev-analytics"));
}

#[test]
fn without_history_the_step_is_unknown_and_the_status_still_shows() {
    let Failure::Execution(mut ended) =
        sample(include_str!("../../../../events/sfn-execution-failed.json"))
    else {
        unreachable!()
    };
    ended.status = "TIMED_OUT".into();
    ended.error = None;
    ended.state_machine_arn = "arn:aws:states:us-east-1:1:stateMachine:mwaa-ops-resume".into();
    let alert = alert(&Failure::Execution(ended), &Facts::default());
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] Resume of dev-analytics TIMED OUT"
    );
    assert_says(
        &alert.body(),
        &["Step:        unknown", "Error:       TIMED_OUT"],
    );
}

#[test]
fn failing_environment_statuses_alert_with_the_last_error() {
    let failure = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    let facts = Facts {
        last_error: Some("INCORRECT_CONFIGURATION: subnet-1 has no route".into()),
        ..Facts::default()
    };
    let alert = alert(&failure, &facts);
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] MWAA environment dev-analytics is CREATE_FAILED"
    );
    assert_says(
        &alert.body(),
        &[
            "Last error:  INCORRECT_CONFIGURATION: subnet-1 has no route",
            "Since:       2026-11-21T06:12:40Z",
            "mwaa/home?region=eu-west-1#environments/dev-analytics",
        ],
    );
}

#[test]
fn dag_side_failures_name_the_run_the_error_and_the_dags_re_enabled() {
    let failure = sample(include_str!(
        "../../../../events/metadata-export-failed.json"
    ));
    let alert = alert(&failure, &Facts::default());
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] Metadata Export Failed of dev-analytics"
    );
    assert_says(
        &alert.body(),
        &[
            "DAG run:         mwaa_ops_export / manual__2026-11-21T13:15:00+00:00",
            "DAGs re-enabled: etl, daily_report",
        ],
    );
}

#[test]
fn a_rejected_routes_file_names_the_file_the_route_the_field_and_what_is_used() {
    let failure = sample(include_str!("../../../../events/routes-rejected.json"));
    let alert = alert(&failure, &Facts::default());
    assert_eq!(alert.kind, "routes-rejected");
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] Routes file routes/sales.json rejected: routes[1] (\"orders\"): field `environment`"
    );
    let body = alert.body();
    for expected in [
        "File:           s3://mwaa-ops-suitebucket-1x2y3z/routes/sales.json",
        "Route:          routes[1] (\"orders\")",
        "Field:          environment",
        "\"1bad\" is not an MWAA environment name",
        "routes[3]: field `prefx`",
        "Used meanwhile: 4 routes of this file are used",
        "aws s3 cp sales.json s3://mwaa-ops-suitebucket-1x2y3z/routes/sales.json",
    ] {
        assert!(body.contains(expected), "{expected}\n{body}");
    }
    // Every instance that read this version reports it: one alert.
    let mut again: Value =
        serde_json::from_str(include_str!("../../../../events/routes-rejected.json")).unwrap();
    again["id"] = json!("another-instance");
    let other = self::alert(&parse_failure(&again).unwrap(), &Facts::default());
    assert_eq!(other.fingerprint, alert.fingerprint);
    // A bare detail still makes a readable alert.
    let bare =
        json!({"source": "mwaa-ops", "detail-type": "Routes Rejected", "id": "e", "detail": {}});
    let bare = self::alert(&parse_failure(&bare).unwrap(), &Facts::default());
    assert!(
        bare.subject().contains("(file not named)"),
        "{}",
        bare.subject()
    );
}

#[test]
fn a_function_that_gave_up_shows_its_error_and_the_event_without_secrets() {
    let mut record: Value = serde_json::from_str(include_str!(
        "../../../../events/lambda-destination-failure.json"
    ))
    .unwrap();
    record["requestPayload"]["detail"]["conf"] = json!({"password": "hunter2"});
    let alert = alert(&parse_failure(&record).unwrap(), &Facts::default());
    let subject = alert.subject();
    assert!(subject.starts_with("[mwaa-ops] mwaa-ops-trigger-dag failed after 3 attempts: Airflow in dev-analytics answered 404"), "{subject}");
    assert_eq!(subject.len(), 100);
    let body = alert.body();
    assert_says(&body, &["\"key\": \"sales/2026-11-21.csv\"", "Request id:"]);
    assert!(!body.contains("hunter2"), "{body}");
    assert_eq!(
        alert.fingerprint,
        "function|7d1f3a5c-2b4e-4c6a-8e0b-9a1c3e5f7b9d"
    );
}

#[test]
fn unknown_kinds_are_reported_with_the_event() {
    let failure = sample(include_str!("../../../../events/s3-object-created.json"));
    let alert = alert(&failure, &Facts::default());
    assert_eq!(
        alert.subject(),
        "[mwaa-ops] Unknown event kind: aws.s3 / Object Created"
    );
    assert_says(&alert.body(), &["landing-zone"]);
}

#[test]
fn the_same_failure_has_the_same_fingerprint_and_others_differ() {
    let a = sample(include_str!("../../../../events/sfn-execution-failed.json"));
    let b = sample(include_str!(
        "../../../../events/mwaa-status-create-failed.json"
    ));
    let fa = alert(&a, &Facts::default()).fingerprint_hash();
    assert_eq!(fa, alert(&a, &Facts::default()).fingerprint_hash());
    assert_ne!(fa, alert(&b, &Facts::default()).fingerprint_hash());
}
