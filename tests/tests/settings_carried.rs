//! No setting lost in silence, on the bed (the local MWAA control plane answers GetEnvironment
//! with every member of botocore's model, `IdentityCenterConfiguration` and `Teams` included,
//! which aws-sdk-mwaa 1.128 does not model):
//! - every member of botocore's `Environment` (read from the bed venv's model, no bed started)
//!   is carried by the recreate or a fact of the environment, but two;
//! - save-configuration, the pause's first change (its built binary behind the bed's Lambda
//!   service as its role of the template, as are the other steps here), refuses an environment whose settings the
//!   resume could not create again, naming them, and writes nothing; allowed for that
//!   environment (`AllowLosingSettings`), it saves and lists what is dropped;
//! - create-environment, when MWAA refuses the saved Airflow version, fails naming the
//!   version and the versions MWAA offers, and the configuration and snapshot stay.

use std::time::Duration;

use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::{Deployment, Failure, Functions};
use mwaa_ops_tests::steps::start_steps;
use mwaa_ops_tests::{model_sample, session_without_airflow, Bed};
use pause_resume::configuration::not_carried;
use pause_resume::layout::{latest_key, snapshot_key};
use pause_resume::{ErrorKind, Step};
use serde_json::{json, Value};

const BUCKET: &str = "mwaa-ops-suite";
/// The environments the steps' roles are scoped to here (`EnvironmentNamePrefix`).
const PREFIX: &str = "dev-";

async fn clients(bed: &Bed) -> (aws_sdk_mwaa::Client, aws_sdk_s3::Client) {
    (bed.mwaa().await, bed.s3_with_bucket(BUCKET).await)
}

/// CreateEnvironment as a client that models Teams sends it (boto3 does; the Rust SDK
/// cannot): the same REST call, members the Rust SDK lacks included.
async fn create_with_teams(bed: &Bed, name: &str) {
    let body = json!({
        "AirflowVersion": "3.0.6",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-exec",
        "SourceBucketArn": "arn:aws:s3:::mwaa-ops-dags",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-0a1", "subnet-0b2"],
                                 "SecurityGroupIds": ["sg-0c3"]},
        "IdentityCenterConfiguration": {"StartUrl": "https://d-1234567890.awsapps.com/start",
                                        "IdentityStoreId": "d-1234567890"},
        "Teams": {"sales": {"SourceBucketArn": "arn:aws:s3:::mwaa-ops-sales",
                            "DagS3Path": "dags"}}
    });
    let url = format!("{}/environments/{name}", bed.mwaa_url);
    let response = reqwest::Client::new()
        .put(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "CreateEnvironment {name}: {status} {answer}"
    );
}

/// `step` invoked with `{"environment": name}`, as the state machines' task invokes it.
async fn invoke(steps: &Functions, step: Step, name: &str) -> Result<Value, Failure> {
    steps
        .invoke(step.name(), &json!({"environment": name}))
        .await
}

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// A member AWS adds to `Environment` reaches this test with the bed's botocore: unless the
/// tables of `configuration/members.rs` say it is carried or a fact of the environment, it is
/// listed here and the test fails.
#[test]
fn every_member_of_the_model_is_carried_or_a_fact_of_the_environment_but_two() {
    let environment = model_sample("mwaa", "Environment");
    let members = environment.as_object().expect("Environment is a structure");
    for nested in [
        "NetworkConfiguration",
        "LoggingConfiguration",
        "IdentityCenterConfiguration",
    ] {
        assert!(
            members.contains_key(nested),
            "botocore's Environment has {nested}"
        );
    }
    let lost = not_carried(members);
    assert_eq!(lost, ["IdentityCenterConfiguration", "Teams"]);
}

#[tokio::test]
async fn settings_the_resume_cannot_create_again_stop_the_pause_before_anything_changes() {
    let bed = session_without_airflow().await;
    let (mwaa, s3) = clients(&bed).await;
    create_with_teams(&bed, "dev-teams").await;
    NewEnvironment::new("dev-plain", "3.0.6")
        .create(&mwaa)
        .await;
    for name in ["dev-teams", "dev-plain"] {
        wait_for_status(&mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
    }
    let steps = start_steps(&bed, BUCKET, PREFIX, Deployment::new()).await;
    let save = Step::SaveConfiguration;

    let failure = invoke(&steps, save, "dev-teams").await.unwrap_err();
    failure.assert_is(
        ErrorKind::SettingsNotCarried.as_str(),
        &[
            "dev-teams",
            "IdentityCenterConfiguration, Teams",
            "AllowLosingSettings",
        ],
    );
    assert!(
        keys(&s3, "configurations/").await.is_empty(),
        "nothing written"
    );

    // Every member of the bed's full GetEnvironment answer of a plain environment is carried
    // or a fact of that environment: nothing to refuse.
    let plain = invoke(&steps, save, "dev-plain").await.unwrap();
    assert_eq!(plain["not_carried"], json!([]));

    // Deployed again with the template's AllowLosingSettings naming it.
    drop(steps);
    let allowing = Deployment::new().parameter("AllowLosingSettings", "dev-teams");
    let steps = start_steps(&bed, BUCKET, PREFIX, allowing).await;
    let out = invoke(&steps, save, "dev-teams").await.unwrap();
    assert_eq!(
        out["not_carried"],
        json!(["IdentityCenterConfiguration", "Teams"])
    );
    assert!(keys(&s3, "configurations/dev-teams/")
        .await
        .contains(&latest_key("dev-teams")));
}

#[tokio::test]
async fn a_resume_whose_airflow_version_mwaa_refuses_names_it_and_the_choices_and_keeps_all() {
    let bed = session_without_airflow().await;
    let (mwaa, s3) = clients(&bed).await;
    let name = "dev-retired";
    NewEnvironment::new(name, "2.10.3").create(&mwaa).await;
    wait_for_status(&mwaa, name, "AVAILABLE", Duration::from_secs(30)).await;
    let steps = start_steps(&bed, BUCKET, PREFIX, Deployment::new()).await;
    invoke(&steps, Step::SaveConfiguration, name).await.unwrap();
    // The pause deleted it; meanwhile MWAA retired the version (the saved file says 2.6.3).
    mwaa.delete_environment().name(name).send().await.unwrap();
    for _ in 0..300 {
        if mwaa.get_environment().name(name).send().await.is_err() {
            break; // gone: ResourceNotFound
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latest = latest_key(name);
    let saved = s3
        .get_object()
        .bucket(BUCKET)
        .key(&latest)
        .send()
        .await
        .unwrap();
    let mut configuration: Value =
        serde_json::from_slice(&saved.body.collect().await.unwrap().into_bytes()).unwrap();
    configuration["AirflowVersion"] = json!("2.6.3");
    for (key, body) in [
        (latest.clone(), configuration.to_string()),
        (
            snapshot_key(name),
            json!({"environment": name, "manifest": "s3://mwaa-ops-suite/metadata/x/manifest.json",
                   "active_dags": [], "export_id": "x", "paused_at": "2026-11-30T00:00:00Z",
                   "manifest_sha256": "ab12", "manifest_version_id": "v1"})
            .to_string(),
        ),
    ] {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let before = keys(&s3, "").await;

    // The environment is gone: the pausing mark is not looked at (no Step Functions call).
    let failure = invoke(&steps, Step::CreateEnvironment, name)
        .await
        .unwrap_err();
    failure.assert_is(
        ErrorKind::AirflowVersionRefused.as_str(),
        &[
            name,
            "Airflow 2.6.3",
            "Versions MWAA offers:",
            "2.10.3",
            "3.0.6",
        ],
    );
    assert_eq!(
        keys(&s3, "").await,
        before,
        "configuration and snapshot stay"
    );
}
