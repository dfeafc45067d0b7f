//! delete-environment on the bed, its built binary behind the bed's Lambda service as its role
//! of the template, invoked directly as any caller with `lambda:InvokeFunction` could: it
//! deletes only with the pause's proof, the snapshot record of an export the
//! calling execution verified (`snapshots/<env>/latest.json`). The state machine cases (an
//! older export sent to the export's task token, a fresh one verified and deleted) are in
//! tests/pause_resume/test_pause_proof.py.

use std::time::Duration;

use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::steps::start_steps;
use mwaa_ops_tests::{session_without_airflow, Session};
use pause_resume::layout::snapshot_key;
use pause_resume::{ErrorKind, Step};
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
const TONIGHT: &str = "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:tonight";
const LAST_NIGHT: &str =
    "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:last-night";

/// The snapshot record a pause in `execution` writes once verify-export passed its export.
fn record(name: &str, execution: &str) -> Value {
    json!({"environment": name, "execution": execution, "manifest": "s3://b/m.json",
        "manifest_sha256": "ab12", "manifest_version_id": "v1", "export_id": "e-1",
        "active_dags": [], "paused_at": "2026-11-30T01:00:00+00:00",
        "verified": {"verified": true, "environment": name, "execution": execution,
                     "manifest": "s3://b/m.json"}})
}

/// delete-environment invoked as the pause's task invokes it: its output, or Lambda's error.
async fn delete_environment(steps: &Functions, event: Value) -> Result<Value, Failure> {
    steps.invoke(Step::DeleteEnvironment.name(), &event).await
}

#[tokio::test]
async fn delete_environment_refuses_without_this_executions_verified_snapshot() {
    let bed: Session = session_without_airflow().await;
    let s3 = bed.s3_with_bucket(BUCKET).await;
    let mwaa = bed.mwaa().await;
    let steps = start_steps(&bed, BUCKET, "dev-", Deployment::new()).await;
    let name = "dev-proof";
    NewEnvironment::new(name, "2.10.3").create(&mwaa).await;
    wait_for_status(&mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
    let delete = |execution: &str| {
        let event = json!({"environment": name, "execution": execution});
        delete_environment(&steps, event)
    };
    let put_record = |body: Value| {
        s3.put_object()
            .bucket(BUCKET)
            .key(snapshot_key(name))
            .body(body.to_string().into_bytes().into())
            .send()
    };
    let deletes = || async {
        bed.calls()
            .await
            .into_iter()
            .filter(|c| c["operation"] == "DeleteEnvironment" && c["name"] == name)
            .count()
    };

    // No record at all; then last night's, verified by last night's execution; then one
    // whose verification another execution did.
    let mut refusals = vec![delete(TONIGHT).await.unwrap_err()];
    put_record(record(name, LAST_NIGHT)).await.unwrap();
    refusals.push(delete(TONIGHT).await.unwrap_err());
    let mut forged = record(name, TONIGHT);
    forged["verified"]["execution"] = json!(LAST_NIGHT);
    put_record(forged).await.unwrap();
    refusals.push(delete(TONIGHT).await.unwrap_err());
    for failure in &refusals {
        failure.assert_is(
            ErrorKind::SnapshotNotFound.as_str(),
            &["refusing to delete dev-proof"],
        );
    }
    refusals[1].assert_is(ErrorKind::SnapshotNotFound.as_str(), &["last-night"]);
    assert_eq!(deletes().await, 0, "nothing deleted without proof");
    let status = mwaa.get_environment().name(name).send().await.unwrap();
    assert_eq!(
        status.environment().unwrap().status().unwrap().as_str(),
        "AVAILABLE"
    );

    // Tonight's own record: deleted, once, however often the step is retried.
    put_record(record(name, TONIGHT)).await.unwrap();
    let out = delete(TONIGHT).await.unwrap();
    assert_eq!(
        (out["deleted"].clone(), out["status"].clone()),
        (json!(true), json!("DELETING"))
    );
    let again = delete(TONIGHT).await.unwrap();
    assert_eq!(again["deleted"], false, "{again}");
    assert_eq!(deletes().await, 1);
}
