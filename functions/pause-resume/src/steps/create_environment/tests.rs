//! create-environment against MWAA and S3 in memory: what it creates, once, and what it
//! refuses to resume over.

use super::*;
use crate::fakes::{
    creatable, environment, failed, input, saveable, FakeMwaa, MemoryObjects, BUCKET,
};
use crate::ops::Objects;
use crate::steps::save_configuration::save_configuration;
use aws_sdk_mwaa::primitives::DateTime;
use aws_sdk_mwaa::types::EnvironmentStatus;

#[test]
fn create_decisions_follow_the_status() {
    use EnvironmentStatus as S;
    assert_eq!(decide_create(None), CreateDecision::Create);
    let decide = |s: S| decide_create(Some(&environment("e", s, "2.10.3")));
    assert_eq!(decide(S::Deleted), CreateDecision::Create);
    assert_eq!(decide(S::Deleting), CreateDecision::Deleting);
    for s in [
        S::Available,
        S::Creating,
        S::Updating,
        S::Pending,
        S::Maintenance,
    ] {
        assert_eq!(
            decide(s.clone()),
            CreateDecision::Exists(Status::parse(s.as_str()))
        );
    }
    for s in [S::CreateFailed, S::UpdateFailed, S::Unavailable] {
        assert!(matches!(decide(s), CreateDecision::Failed { .. }));
    }
    let CreateDecision::Failed { status, error } = decide_create(Some(&failed(S::CreateFailed)))
    else {
        panic!("not failed")
    };
    assert_eq!(status, Status::CreateFailed);
    assert_eq!(error, "INCORRECT_CONFIGURATION: subnets have no NAT");
}

/// Saves `dev` as it is, then deletes it from the fake.
async fn paused() -> (FakeMwaa, MemoryObjects) {
    let mwaa = FakeMwaa::with(&[saveable("dev")]);
    let s3 = MemoryObjects::default();
    save_configuration(
        &mwaa,
        &s3,
        BUCKET,
        &[],
        DateTime::from_secs(0),
        input("dev"),
    )
    .await
    .unwrap();
    mwaa.environments.lock().unwrap().clear();
    for name in ["dev", "other", "copy"] {
        let snapshot = SNAPSHOT.replace("\"dev\"", &format!("\"{name}\""));
        s3.insert(BUCKET, &snapshot_key(name), snapshot.into_bytes());
    }
    (mwaa, s3)
}

/// No pausing mark anywhere (stale_pause.rs tests what a mark changes).
struct NoMarks;

impl PauseMarks for NoMarks {
    async fn mark(&self, _: &str, _: &str) -> Result<Option<stale_pause::Mark>, Error> {
        Ok(None)
    }
    async fn end_mark(&self, _: &str, _: &str, _: Option<&str>) -> Result<(), Error> {
        unreachable!("no mark to end")
    }
    async fn execution_status(&self, _: &str) -> Result<Option<String>, Error> {
        unreachable!("no mark names an execution")
    }
    async fn anything_under(&self, _: &str, _: &str) -> Result<bool, Error> {
        Ok(false)
    }
}

/// create-environment for `name`, as the resume invokes it.
async fn resume(mwaa: &FakeMwaa, s3: &MemoryObjects, name: &str) -> Result<Value, Error> {
    create_environment(mwaa, s3, &NoMarks, BUCKET, input(name)).await
}

/// What create-environment refuses `name` with; it must have created nothing.
async fn refused(mwaa: &FakeMwaa, s3: &MemoryObjects, name: &str) -> Error {
    let err = resume(mwaa, s3, name).await.unwrap_err();
    assert!(
        mwaa.created.lock().unwrap().is_empty(),
        "created, then refused: {err}"
    );
    err
}

/// `dev`, AVAILABLE, created at `secs` since the epoch.
fn available_since(secs: i64) -> Environment {
    creatable("dev")
        .status(EnvironmentStatus::Available)
        .created_at(DateTime::from_secs(secs))
        .build()
}

const SNAPSHOT: &str = r#"{"environment": "dev", "manifest": "s3://suite/metadata/dev/m.json",
    "manifest_sha256": "ab12", "manifest_version_id": "v1", "export_id": "e-1",
    "active_dags": ["etl"], "paused_at": "2026-11-21T19:37:41.511001+00:00"}"#;

fn created(created: bool, status: &str) -> Value {
    let snapshot: Value = serde_json::from_str(SNAPSHOT).unwrap();
    json!({"environment": "dev", "created": created, "status": status,
           "resume_needed": true, "snapshot": snapshot})
}

#[tokio::test]
async fn an_environment_older_than_the_pause_is_not_resumed_over() {
    let (mwaa, s3) = paused().await;
    // The pause was skipped or failed before deleting: the environment predates it.
    mwaa.put(available_since(1_795_280_000));
    let out = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(
        (out["created"].clone(), out["resume_needed"].clone()),
        (json!(false), json!(false))
    );
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("did not delete it"),
        "{out}"
    );
    // One the resume created after the pause (a re-run of the resume): go on.
    mwaa.put(available_since(1_795_300_000));
    let out = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(out["resume_needed"], true);
    assert!(mwaa.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_snapshot_restored_already_is_not_restored_again() {
    let (mwaa, s3) = paused().await;
    // The resume that created this environment restored the snapshot and recorded it; the
    // pause since was skipped: the snapshot is the same one.
    mwaa.put(available_since(1_795_300_000));
    let record = json!({"environment": "dev", "manifest": "s3://suite/metadata/dev/m.json",
        "execution": null, "resume_execution": "arn:resume:1", "restored_at": "2026-11-22T06:00:00Z"});
    s3.insert(
        BUCKET,
        &restored_key("dev"),
        record.to_string().into_bytes(),
    );
    let out = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(out["resume_needed"], false, "{out}");
    // Not resumed, no mark, nothing held: nothing to replay.
    assert_eq!(out["pausing"], json!({"mark": "none", "replay": false}));
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("restored already by \"arn:resume:1\""),
        "{reason}"
    );
    // Gone meanwhile (deleted by hand): the snapshot is all there is, so it is created again.
    mwaa.environments.lock().unwrap().clear();
    let out = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(
        (out["created"].clone(), out["resume_needed"].clone()),
        (json!(true), json!(true))
    );
    s3.insert(BUCKET, &restored_key("dev"), b"not json".to_vec());
    let err = resume(&mwaa, &s3, "dev").await.unwrap_err();
    common::testing::assert_fails_as(err, ErrorKind::ConfigurationInvalid, &["restored.json"]);
}

#[tokio::test]
async fn a_snapshot_for_another_environment_or_without_its_fields_is_refused() {
    let (mwaa, s3) = paused().await;
    for bad in [
        r#"{"environment": "other", "manifest": "m", "active_dags": [], "paused_at": "2026-11-21T19:37:41Z"}"#,
        r#"{"environment": "dev", "active_dags": [], "paused_at": "2026-11-21T19:37:41Z"}"#,
        r#"{"environment": "dev", "manifest": "m", "active_dags": [], "paused_at": "yesterday"}"#,
    ] {
        s3.insert(BUCKET, &snapshot_key("dev"), bad.as_bytes().to_vec());
        mwaa.put(
            creatable("dev")
                .status(EnvironmentStatus::Available)
                .build(),
        );
        let err = resume(&mwaa, &s3, "dev").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{bad}: {err}");
    }
}

#[tokio::test]
async fn a_snapshot_recorded_before_exports_were_bound_is_refused_naming_the_field() {
    let (mwaa, s3) = paused().await;
    let full: Value = serde_json::from_str(SNAPSHOT).unwrap();
    for field in ["manifest_sha256", "manifest_version_id", "export_id"] {
        let mut old = full.clone();
        old.as_object_mut().unwrap().remove(field);
        s3.insert(BUCKET, &snapshot_key("dev"), old.to_string().into_bytes());
        let err = resume(&mwaa, &s3, "dev").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{field}: {err}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        assert_eq!(mwaa.status("dev"), None, "nothing created without {field}");
    }
}

#[tokio::test]
async fn without_a_verified_pause_nothing_is_created() {
    let (mwaa, s3) = paused().await;
    s3.delete(BUCKET, &snapshot_key("dev")).await.unwrap();
    let err = refused(&mwaa, &s3, "dev").await;
    common::testing::assert_fails_as(
        err,
        ErrorKind::SnapshotNotFound,
        &["snapshots/dev/latest.json"],
    );
    s3.insert(BUCKET, &snapshot_key("dev"), b"not json".to_vec());
    let err = refused(&mwaa, &s3, "dev").await;
    assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
}

#[tokio::test]
async fn create_uses_the_saved_configuration_once() {
    let (mwaa, s3) = paused().await;
    let first = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(first, created(true, "CREATING"));
    let again = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(again, created(false, "CREATING"));
    let created = mwaa.created.lock().unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0],
        SavedConfiguration::from_environment(&saveable("dev")).unwrap()
    );
}

#[tokio::test]
async fn losing_a_create_race_counts_as_not_created() {
    let (mut mwaa, s3) = paused().await;
    mwaa.create_races = true;
    let out = resume(&mwaa, &s3, "dev").await.unwrap();
    assert_eq!(out["created"], false);
    assert_eq!(out["status"], "CREATING");
}

#[tokio::test]
async fn create_stops_at_failed_deleting_or_unsaved_environments() {
    let (mwaa, s3) = paused().await;
    mwaa.put(failed(EnvironmentStatus::CreateFailed));
    let err = refused(&mwaa, &s3, "dev").await;
    common::testing::assert_fails_as(
        err,
        ErrorKind::EnvironmentFailed,
        &["CREATE_FAILED", "subnets have no NAT"],
    );

    mwaa.put(environment("dev", EnvironmentStatus::Deleting, "2.10.3"));
    let err = refused(&mwaa, &s3, "dev").await;
    assert_eq!(err.kind(), ErrorKind::EnvironmentDeleting);

    let err = refused(&mwaa, &s3, "other").await;
    assert_eq!(err.kind(), ErrorKind::ConfigurationNotFound);
    assert!(
        err.to_string()
            .contains("s3://suite/configurations/other/latest.json"),
        "{err}"
    );
}

#[tokio::test]
async fn a_configuration_saved_for_another_name_or_unreadable_is_refused() {
    let (mwaa, s3) = paused().await;
    let body = s3.body(BUCKET, &latest_key("dev")).unwrap();
    s3.insert(BUCKET, &latest_key("copy"), body);
    let err = refused(&mwaa, &s3, "copy").await;
    common::testing::assert_fails_as(err, ErrorKind::ConfigurationInvalid, &["\"dev\""]);
    s3.insert(BUCKET, &latest_key("dev"), b"{\"Name\": \"dev\"}".to_vec());
    let err = refused(&mwaa, &s3, "dev").await;
    assert_eq!(err.kind(), ErrorKind::ConfigurationInvalid);
}

#[tokio::test]
async fn an_airflow_version_mwaa_refuses_is_named_with_the_choices_and_nothing_is_lost() {
    let (mut mwaa, s3) = paused().await;
    mwaa.create_refusal =
        Some("Invalid AirflowVersion: 2.10.3. Valid values: 2.11.0, 3.0.6".into());
    let kept = s3.keys();
    let err = refused(&mwaa, &s3, "dev").await;
    common::testing::assert_fails_as(
        err,
        ErrorKind::AirflowVersionRefused,
        &[
            "dev",
            "Airflow 2.10.3",
            "Versions MWAA offers: 2.11.0, 3.0.6",
            "stay",
        ],
    );
    assert_eq!(s3.keys(), kept, "configuration and snapshot stay");

    mwaa.create_refusal = Some("Invalid EnvironmentClass: mw1.huge".into());
    let err = refused(&mwaa, &s3, "dev").await;
    assert_eq!(
        err.kind(),
        ErrorKind::OperationFailed,
        "other refusals stay what they were"
    );
}
