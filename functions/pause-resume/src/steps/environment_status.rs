//! environment-status: `{"environment", "skip_marker"?}` -> `{"environment", "status",
//! "airflow_version"?, "last_update_error"?, "skip"?}`. With `skip_marker`, `skip` says
//! whether the operator left that marker (the pause state machine deletes it when it skips).

use aws_sdk_mwaa::types::Environment;
use serde::Deserialize;
use serde_json::{json, Value};

use common::{Error, ErrorKind, Status};

use crate::layout::override_key;
use crate::ops::{Environments, Objects};
use crate::{parse, parse_environment};

/// The last update's error as `{"code", "message"}`, when MWAA reports one.
pub fn last_update_error(env: &Environment) -> Option<Value> {
    let error = env.last_update()?.error()?;
    Some(json!({"code": error.error_code(), "message": error.error_message()}))
}

#[derive(Deserialize)]
struct Marker {
    skip_marker: Option<String>,
}

/// The marker to look for, if asked; refused unless it is a plain name (it becomes part of
/// an S3 key).
fn skip_marker(event: &Value) -> Result<Option<String>, Error> {
    let Some(marker) = parse::<Marker>(event)?.skip_marker else {
        return Ok(None);
    };
    if marker.is_empty()
        || !marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("field `skip_marker`: {marker:?} is not a marker name ([A-Za-z0-9-]+)"),
        ));
    }
    Ok(Some(marker))
}

pub async fn environment_status(
    mwaa: &impl Environments,
    overrides: &impl Objects,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let env = mwaa.get(&name).await?;
    let mut out = json!({"environment": name, "status": Status::of(env.as_ref()).as_str()});
    if let Some(marker) = skip_marker(&event)? {
        // Only read here: the state machine deletes the marker on its way to "Skipped", so a
        // retried or lost answer of this step cannot use the marker up without skipping.
        let key = override_key(&name, &marker);
        out["skip"] = json!(overrides.get(bucket, &key).await?.is_some());
    }
    if let Some(env) = &env {
        if let Some(version) = env.airflow_version() {
            out["airflow_version"] = json!(version);
        }
        if let Some(error) = last_update_error(env) {
            out["last_update_error"] = error;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{environment, failed, input, FakeMwaa, MemoryObjects, BUCKET};
    use aws_sdk_mwaa::types::EnvironmentStatus;

    #[tokio::test]
    async fn status_reports_mwaa_status_or_not_found_and_the_last_error() {
        let mwaa = FakeMwaa::with(&[
            environment("up", EnvironmentStatus::Available, "2.10.3"),
            failed(EnvironmentStatus::CreateFailed),
        ]);
        let s3 = MemoryObjects::default();
        let up = environment_status(&mwaa, &s3, BUCKET, input("up"))
            .await
            .unwrap();
        assert_eq!(
            up,
            json!({"environment": "up", "status": "AVAILABLE", "airflow_version": "2.10.3"})
        );
        let gone = environment_status(&mwaa, &s3, BUCKET, input("gone"))
            .await
            .unwrap();
        assert_eq!(gone["status"], "NOT_FOUND");
        let dev = environment_status(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
        assert_eq!(dev["status"], "CREATE_FAILED");
        assert_eq!(
            dev["last_update_error"],
            json!({"code": "INCORRECT_CONFIGURATION", "message": "subnets have no NAT"})
        );
        let bad = environment_status(&mwaa, &s3, BUCKET, json!({"env": "x"}))
            .await
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_skip_marker_is_reported_and_left_for_the_state_machine() {
        let mwaa = FakeMwaa::with(&[environment("up", EnvironmentStatus::Available, "2.10.3")]);
        let s3 = MemoryObjects::default();
        let ask = json!({"environment": "up", "skip_marker": "skip-next-pause"});
        let run = || environment_status(&mwaa, &s3, BUCKET, ask.clone());
        assert_eq!(run().await.unwrap()["skip"], false);
        s3.insert(BUCKET, "overrides/up/skip-next-pause", b"".to_vec());
        let skipped = run().await.unwrap();
        assert_eq!(
            (skipped["skip"].clone(), skipped["status"].clone()),
            (json!(true), json!("AVAILABLE"))
        );
        assert_eq!(
            run().await.unwrap()["skip"],
            true,
            "a retried read still skips: the state machine deletes the marker"
        );
        let bad = json!({"environment": "up", "skip_marker": "../x"});
        let err = environment_status(&mwaa, &s3, BUCKET, bad)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("skip_marker"), "{err}");
    }
}
