//! save-configuration: `{"environment"}` -> `{"environment", "bucket", "key",
//! "airflow_version", "copy"}`. Only an AVAILABLE environment is saved; the timestamped copy
//! is written first, so `latest.json` always has a copy in the history.

use aws_sdk_mwaa::primitives::DateTime;
use serde_json::{json, Value};

use common::{Error, Status};

use crate::configuration::SavedConfiguration;
use crate::layout::{latest_key, timestamped_key};
use crate::ops::{Environments, Objects};
use crate::parse_environment;

pub async fn save_configuration(
    mwaa: &impl Environments,
    s3: &impl Objects,
    bucket: &str,
    now: DateTime,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let env = mwaa.get(&name).await?;
    let status = Status::of(env.as_ref());
    let Some(env) = env.filter(|_| status.is_available()) else {
        return Err(Error::not_available(
            &name,
            status.as_str(),
            "only an AVAILABLE environment's configuration is saved",
        ));
    };
    let configuration = SavedConfiguration::from_environment(&env)?;
    let body = serde_json::to_vec_pretty(&configuration).expect("a configuration serializes");
    let (latest, copy) = (latest_key(&name), timestamped_key(&name, now)?);
    s3.put_json(bucket, &copy, body.clone()).await?;
    s3.put_json(bucket, &latest, body).await?;
    tracing::info!(environment = %name, bucket, key = %latest, copy = %copy, "configuration saved");
    Ok(
        json!({"environment": name, "bucket": bucket, "key": latest, "copy": copy,
        "airflow_version": configuration.airflow_version}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{environment, input, saveable, FakeMwaa, MemoryObjects, BUCKET};
    use aws_sdk_mwaa::types::EnvironmentStatus;
    use common::ErrorKind;

    #[tokio::test]
    async fn save_writes_latest_and_a_timestamped_copy_of_the_same_configuration() {
        let mwaa = FakeMwaa::with(&[saveable("dev")]);
        let s3 = MemoryObjects::default();
        let now = DateTime::from_secs(1_793_754_123);
        let out = save_configuration(&mwaa, &s3, BUCKET, now, input("dev"))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"environment": "dev", "bucket": BUCKET, "key": "configurations/dev/latest.json",
                "copy": "configurations/dev/20261104T010203Z.json", "airflow_version": "2.10.3"})
        );
        assert_eq!(
            s3.keys(),
            [
                "configurations/dev/20261104T010203Z.json",
                "configurations/dev/latest.json"
            ]
        );
        let latest = s3.body(BUCKET, "configurations/dev/latest.json").unwrap();
        assert_eq!(
            Some(&latest),
            s3.body(BUCKET, "configurations/dev/20261104T010203Z.json")
                .as_ref()
        );
        let saved: SavedConfiguration = serde_json::from_slice(&latest).unwrap();
        assert_eq!(
            saved,
            SavedConfiguration::from_environment(&saveable("dev")).unwrap()
        );
    }

    #[tokio::test]
    async fn save_refuses_an_environment_that_is_not_available() {
        let mwaa = FakeMwaa::with(&[environment("busy", EnvironmentStatus::Updating, "2.10.3")]);
        let s3 = MemoryObjects::default();
        let now = DateTime::from_secs(0);
        for (name, status) in [("busy", "UPDATING"), ("gone", "NOT_FOUND")] {
            let err = save_configuration(&mwaa, &s3, BUCKET, now, input(name))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::EnvironmentNotAvailable);
            assert!(err.to_string().contains(status), "{err}");
        }
        assert!(s3.keys().is_empty());
    }
}
