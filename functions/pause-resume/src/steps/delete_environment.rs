//! delete-environment: `{"environment", "execution"}` -> `{"environment", "deleted",
//! "status"}`. Deletes only with proof: the snapshot record of an export verified by the
//! calling execution (see [`crate::steps::proof`]). An environment that is gone or going
//! already is success: the step is retried.

use aws_sdk_mwaa::types::Environment;
use serde::Deserialize;
use serde_json::{json, Value};

use common::{EnvironmentName, Error, Status};

use crate::layout::snapshot_key;
use crate::ops::{Deleted, Environments, Objects};
use crate::steps::proof::check_deletion_proof;

/// The pause's environment and its execution (`$$.Execution.Id`).
#[derive(Debug, Deserialize)]
pub struct Input {
    pub environment: EnvironmentName,
    pub execution: String,
}

/// What delete-environment does, given what GetEnvironment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteDecision {
    Delete,
    /// Gone or going: nothing to do (status reported).
    Nothing(Status),
}

pub fn decide_delete(env: Option<&Environment>) -> DeleteDecision {
    let status = Status::of(env);
    if status.is_gone() {
        DeleteDecision::Nothing(status)
    } else {
        DeleteDecision::Delete
    }
}

pub async fn delete_environment(
    mwaa: &impl Environments,
    s3: &impl Objects,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let Input {
        environment: name,
        execution,
    } = crate::parse(&event)?;
    let key = snapshot_key(&name);
    let record = s3.get(bucket, &key).await?;
    let location = format!("s3://{bucket}/{key}");
    check_deletion_proof(record.as_deref(), &location, &name, &execution)?;
    let report = |deleted: bool, status: &Status| {
        let status = status.as_str();
        tracing::info!(environment = %name, deleted, status, "delete-environment");
        Ok(json!({"environment": name, "deleted": deleted, "status": status}))
    };
    let env = mwaa.get(&name).await?;
    if let DeleteDecision::Nothing(status) = decide_delete(env.as_ref()) {
        return report(false, &status);
    }
    match mwaa.delete(&name).await? {
        Deleted::Deleted => report(true, &Status::Deleting),
        Deleted::NotFound => report(false, &Status::NotFound),
        Deleted::Refused(message) => {
            // Refused because a delete is under way already, or because of the state it is in.
            let env = mwaa.get(&name).await?;
            match decide_delete(env.as_ref()) {
                DeleteDecision::Nothing(status) => report(false, &status),
                DeleteDecision::Delete => Err(Error::not_available(
                    &name,
                    Status::of(env.as_ref()).as_str(),
                    &format!("MWAA refused to delete it: {message}"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{environment, FakeMwaa, MemoryObjects, BUCKET};
    use aws_sdk_mwaa::types::EnvironmentStatus;
    use common::ErrorKind;

    const EXECUTION: &str = "arn:aws:states:us-east-1:1:execution:mwaa-ops-pause:tonight";

    /// S3 with the snapshot record a pause of `names` wrote in `EXECUTION`.
    fn proven(names: &[&str]) -> MemoryObjects {
        let s3 = MemoryObjects::default();
        for name in names {
            let record = json!({"environment": name, "execution": EXECUTION, "manifest": "s3://b/m.json",
                "verified": {"verified": true, "environment": name, "execution": EXECUTION,
                             "manifest": "s3://b/m.json"}});
            s3.insert(BUCKET, &snapshot_key(name), record.to_string().into_bytes());
        }
        s3
    }

    async fn delete(mwaa: &FakeMwaa, s3: &MemoryObjects, name: &str) -> Result<Value, Error> {
        let event = json!({"environment": name, "execution": EXECUTION});
        delete_environment(mwaa, s3, BUCKET, event).await
    }

    #[tokio::test]
    async fn without_this_executions_verified_snapshot_nothing_is_deleted() {
        let mwaa = FakeMwaa::with(&[environment("dev", EnvironmentStatus::Available, "2.10.3")]);
        let err = delete(&mwaa, &MemoryObjects::default(), "dev")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{err}");
        assert!(
            err.to_string()
                .contains("s3://suite/snapshots/dev/latest.json"),
            "{err}"
        );
        let last_night = proven(&["dev"]);
        let event = json!({"environment": "dev", "execution": "arn:another"});
        let err = delete_environment(&mwaa, &last_night, BUCKET, event)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{err}");
        let err = delete_environment(&mwaa, &last_night, BUCKET, json!({"environment": "dev"}))
            .await
            .unwrap_err();
        common::testing::assert_invalid_input(err, &["execution"]);
        assert!(mwaa.deleted.lock().unwrap().is_empty());
        assert_eq!(mwaa.status("dev").as_deref(), Some("AVAILABLE"));
    }

    #[tokio::test]
    async fn delete_is_done_once_and_a_missing_environment_is_success() {
        let mwaa = FakeMwaa::with(&[environment("dev", EnvironmentStatus::Available, "2.10.3")]);
        let s3 = proven(&["dev", "gone"]);
        let first = delete(&mwaa, &s3, "dev").await.unwrap();
        assert_eq!(
            first,
            json!({"environment": "dev", "deleted": true, "status": "DELETING"})
        );
        let again = delete(&mwaa, &s3, "dev").await.unwrap();
        assert_eq!(
            again,
            json!({"environment": "dev", "deleted": false, "status": "DELETING"})
        );
        assert_eq!(mwaa.deleted.lock().unwrap().len(), 1);
        let gone = delete(&mwaa, &s3, "gone").await.unwrap();
        assert_eq!(
            gone,
            json!({"environment": "gone", "deleted": false, "status": "NOT_FOUND"})
        );
    }

    #[tokio::test]
    async fn a_refused_delete_is_an_error_naming_the_status_unless_it_is_going_anyway() {
        let mut mwaa = FakeMwaa::with(&[environment("dev", EnvironmentStatus::Updating, "2.10.3")]);
        mwaa.delete_refusal = Some("Environment is updating".into());
        let err = delete(&mwaa, &proven(&["dev"]), "dev").await.unwrap_err();
        common::testing::assert_fails_as(
            err,
            ErrorKind::EnvironmentNotAvailable,
            &["UPDATING", "Environment is updating"],
        );
        assert_eq!(mwaa.status("dev").as_deref(), Some("UPDATING"));
        assert_eq!(
            decide_delete(Some(&environment(
                "dev",
                EnvironmentStatus::Deleted,
                "2.10.3"
            ))),
            DeleteDecision::Nothing(Status::Deleted)
        );
    }
}
