//! delete-environment: `{"environment"}` -> `{"environment", "deleted", "status"}`. An
//! environment that is gone or going already is success: the step is retried.

use aws_sdk_mwaa::types::Environment;
use serde_json::{json, Value};

use common::{Error, Status};

use crate::ops::{Deleted, Environments};
use crate::parse_environment;

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

pub async fn delete_environment(mwaa: &impl Environments, event: Value) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
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
    use crate::fakes::{environment, input, FakeMwaa};
    use aws_sdk_mwaa::types::EnvironmentStatus;
    use common::ErrorKind;

    #[tokio::test]
    async fn delete_is_done_once_and_a_missing_environment_is_success() {
        let mwaa = FakeMwaa::with(&[environment("dev", EnvironmentStatus::Available, "2.10.3")]);
        let first = delete_environment(&mwaa, input("dev")).await.unwrap();
        assert_eq!(
            first,
            json!({"environment": "dev", "deleted": true, "status": "DELETING"})
        );
        let again = delete_environment(&mwaa, input("dev")).await.unwrap();
        assert_eq!(
            again,
            json!({"environment": "dev", "deleted": false, "status": "DELETING"})
        );
        assert_eq!(mwaa.deleted.lock().unwrap().len(), 1);
        let gone = delete_environment(&mwaa, input("gone")).await.unwrap();
        assert_eq!(
            gone,
            json!({"environment": "gone", "deleted": false, "status": "NOT_FOUND"})
        );
    }

    #[tokio::test]
    async fn a_refused_delete_is_an_error_naming_the_status_unless_it_is_going_anyway() {
        let mut mwaa = FakeMwaa::with(&[environment("dev", EnvironmentStatus::Updating, "2.10.3")]);
        mwaa.delete_refusal = Some("Environment is updating".into());
        let err = delete_environment(&mwaa, input("dev")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentNotAvailable);
        assert!(err.to_string().contains("UPDATING"), "{err}");
        assert!(err.to_string().contains("Environment is updating"), "{err}");
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
