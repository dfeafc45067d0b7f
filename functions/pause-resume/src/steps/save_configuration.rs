//! save-configuration: `{"environment"}` -> `{"environment", "bucket", "key",
//! "airflow_version", "copy", "not_carried"}`. Only an AVAILABLE environment is saved; the
//! timestamped copy is written first, so `latest.json` always has a copy in the history.
//! Every member of GetEnvironment's raw answer is compared with what the saved configuration
//! carries: one it cannot carry stops the pause here, before anything is changed, unless
//! losing settings is allowed for that environment (`ALLOW_LOSING_SETTINGS`).

use aws_sdk_mwaa::primitives::DateTime;
use serde_json::{json, Value};

use common::{Error, ErrorKind, Status};

use crate::configuration::{not_carried, SavedConfiguration};
use crate::layout::{latest_key, timestamped_key};
use crate::ops::{Environments, Objects};
use crate::parse_environment;

/// The environments whose pause may drop settings the resume cannot create again (the
/// template's `AllowLosingSettings`, passed as `ALLOW_LOSING_SETTINGS`, comma-separated).
pub fn allowed_losses(setting: &str) -> Vec<String> {
    setting
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn save_configuration(
    mwaa: &impl Environments,
    s3: &impl Objects,
    bucket: &str,
    may_lose_settings: &[String],
    now: DateTime,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let described = mwaa.describe(&name).await?;
    let status = Status::of(described.as_ref().map(|d| &d.environment));
    let Some(described) = described.filter(|_| status.is_available()) else {
        return Err(Error::not_available(
            &name,
            status.as_str(),
            "only an AVAILABLE environment's configuration is saved",
        ));
    };
    let lost = not_carried(&described.members);
    if !lost.is_empty() {
        if !may_lose_settings.iter().any(|allowed| *allowed == *name) {
            return Err(Error::new(
                ErrorKind::SettingsNotCarried,
                format!(
                    "environment {name} has settings the resume could not create again: {}. \
                     Nothing was changed: the pause stopped before the export. To pause it \
                     anyway, and have the resume create it without them, add {name} to the \
                     stack parameter AllowLosingSettings.",
                    lost.join(", ")
                ),
            ));
        }
        tracing::warn!(environment = %name, not_carried = ?lost,
            "settings the resume cannot create again are dropped (allowed for this environment)");
    }
    let configuration = SavedConfiguration::from_environment(&described.environment)?;
    let body = serde_json::to_vec_pretty(&configuration).expect("a configuration serializes");
    let (latest, copy) = (latest_key(&name), timestamped_key(&name, now)?);
    s3.put_json(bucket, &copy, body.clone()).await?;
    s3.put_json(bucket, &latest, body).await?;
    tracing::info!(environment = %name, bucket, key = %latest, copy = %copy, "configuration saved");
    Ok(
        json!({"environment": name, "bucket": bucket, "key": latest, "copy": copy,
        "airflow_version": configuration.airflow_version, "not_carried": lost}),
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
        let out = save_configuration(&mwaa, &s3, BUCKET, &[], now, input("dev"))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"environment": "dev", "bucket": BUCKET, "key": "configurations/dev/latest.json",
                "copy": "configurations/dev/20261104T010203Z.json", "airflow_version": "2.10.3",
                "not_carried": []})
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
            let err = save_configuration(&mwaa, &s3, BUCKET, &[], now, input(name))
                .await
                .unwrap_err();
            common::testing::assert_fails_as(err, ErrorKind::EnvironmentNotAvailable, &[status]);
        }
        assert!(s3.keys().is_empty());
    }

    #[tokio::test]
    async fn settings_the_resume_cannot_carry_stop_the_pause_unless_allowed() {
        let mwaa = FakeMwaa::with(&[saveable("dev")]);
        mwaa.raw_members.lock().unwrap().insert(
            "dev".into(),
            json!({"IdentityCenterConfiguration": {"StartUrl": "https://x.awsapps.com/start"},
                   "Teams": {"sales": {"DagS3Path": "dags/sales"}}})
            .as_object()
            .unwrap()
            .clone(),
        );
        let s3 = MemoryObjects::default();
        let now = DateTime::from_secs(1_793_754_123);
        let others = allowed_losses("prod, other");
        let err = save_configuration(&mwaa, &s3, BUCKET, &others, now, input("dev"))
            .await
            .unwrap_err();
        common::testing::assert_fails_as(
            err,
            ErrorKind::SettingsNotCarried,
            &[
                "dev",
                "IdentityCenterConfiguration, Teams",
                "AllowLosingSettings",
            ],
        );
        assert!(s3.keys().is_empty(), "nothing written");

        let allowed = allowed_losses("prod,dev");
        let out = save_configuration(&mwaa, &s3, BUCKET, &allowed, now, input("dev"))
            .await
            .unwrap();
        assert_eq!(
            out["not_carried"],
            json!(["IdentityCenterConfiguration", "Teams"])
        );
        assert_eq!(s3.keys().len(), 2);
    }
}
