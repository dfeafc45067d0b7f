//! environment-status: `{"environment", "skip_marker"?, "stay_up_marker"?}` ->
//! `{"environment", "status", "airflow_version"?, "last_update_error"?, "skip"?,
//! "stay_up_until"?}`. With `skip_marker`, `skip` says whether the operator left that marker
//! (the pause state machine deletes it when it skips). With `stay_up_marker`,
//! `stay_up_until` is the time an operator asked the environment to stay up until, while
//! that time is still ahead (`null` otherwise; the marker is left: it ends by itself).

use aws_sdk_mwaa::primitives::{DateTime, DateTimeFormat};
use aws_sdk_mwaa::types::Environment;
use std::time::SystemTime;

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
struct Markers {
    skip_marker: Option<String>,
    stay_up_marker: Option<String>,
}

/// A marker to look for, if asked; refused unless it is a plain name (it becomes part of
/// an S3 key).
fn marker(field: &str, value: Option<String>) -> Result<Option<String>, Error> {
    let Some(marker) = value else {
        return Ok(None);
    };
    if marker.is_empty()
        || !marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("field `{field}`: {marker:?} is not a marker name ([A-Za-z0-9-]+)"),
        ));
    }
    Ok(Some(marker))
}

/// The end of a stay-up override (the object's content: an RFC 3339 time in UTC, as
/// `mwaa-ops stay-up` writes it, e.g. `2026-12-01T17:00:00Z`) if it is still ahead of `now`. An unreadable time is an error rather
/// than a pause: the operator asked for the environment to stay up.
pub fn stay_up_until(key: &str, body: &[u8], now: DateTime) -> Result<Option<String>, Error> {
    let text = String::from_utf8_lossy(body);
    let until = DateTime::from_str(text.trim(), DateTimeFormat::DateTime).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{key}: {:?} is not an RFC 3339 time ({e}); the pause did nothing",
                text.trim()
            ),
        )
    })?;
    if until <= now {
        return Ok(None);
    }
    Ok(Some(until.fmt(DateTimeFormat::DateTime).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("{key}: {e}"))
    })?))
}

pub async fn environment_status(
    mwaa: &impl Environments,
    overrides: &impl Objects,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let markers = parse::<Markers>(&event)?;
    let skip = marker("skip_marker", markers.skip_marker)?;
    let stay_up = marker("stay_up_marker", markers.stay_up_marker)?;
    let env = mwaa.get(&name).await?;
    let mut out = json!({"environment": name, "status": Status::of(env.as_ref()).as_str()});
    if let Some(marker) = skip {
        // Only read here: the state machine deletes the marker on its way to "Skipped", so a
        // retried or lost answer of this step cannot use the marker up without skipping.
        let key = override_key(&name, &marker);
        out["skip"] = json!(overrides.get(bucket, &key).await?.is_some());
    }
    if let Some(marker) = stay_up {
        let key = override_key(&name, &marker);
        out["stay_up_until"] = match overrides.get(bucket, &key).await? {
            Some(body) => json!(stay_up_until(&key, &body, SystemTime::now().into())?),
            None => Value::Null,
        };
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

    /// A marker that is not one key under the environment's overrides is refused, naming
    /// its field.
    async fn marker_refused(mwaa: &FakeMwaa, s3: &MemoryObjects, field: &str, marker: &str) {
        let bad = json!({"environment": "up", field: marker});
        let err = environment_status(mwaa, s3, BUCKET, bad).await.unwrap_err();
        common::testing::assert_invalid_input(err, &[field]);
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
        marker_refused(&mwaa, &s3, "skip_marker", "../x").await;
    }

    #[test]
    fn a_stay_up_time_holds_until_it_passes_and_a_bad_one_is_named() {
        let key = "overrides/up/stay-up-until";
        let ten = DateTime::from_secs(1_796_032_800); // 2026-11-30T10:00:00Z
        let eighteen = DateTime::from_secs(1_796_061_600); // 18:00Z
        let body = b"2026-11-30T17:00:00Z\n";
        assert_eq!(
            stay_up_until(key, body, ten).unwrap().as_deref(),
            Some("2026-11-30T17:00:00Z")
        );
        assert_eq!(
            stay_up_until(key, body, eighteen).unwrap(),
            None,
            "17:00Z has passed"
        );
        // mwaa-ops writes UTC; a hand-written offset is refused rather than misread.
        let offset = stay_up_until(key, b"2026-11-30T18:00:00+01:00", ten).unwrap_err();
        assert!(offset.to_string().contains("RFC 3339"), "{offset}");
        let err = stay_up_until(key, b"tomorrow", ten).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains(key) && err.to_string().contains("tomorrow"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_stay_up_override_is_reported_and_left_in_place() {
        let mwaa = FakeMwaa::with(&[environment("up", EnvironmentStatus::Available, "2.10.3")]);
        let s3 = MemoryObjects::default();
        let ask = json!({"environment": "up", "skip_marker": "skip-next-pause",
                         "stay_up_marker": "stay-up-until"});
        let run = || environment_status(&mwaa, &s3, BUCKET, ask.clone());
        let none = run().await.unwrap();
        assert_eq!(
            (none["skip"].clone(), none["stay_up_until"].clone()),
            (json!(false), Value::Null)
        );
        s3.insert(
            BUCKET,
            "overrides/up/stay-up-until",
            b"2099-01-01T00:00:00Z".to_vec(),
        );
        let up = run().await.unwrap();
        assert_eq!(up["stay_up_until"], "2099-01-01T00:00:00Z");
        assert_eq!(
            up["skip"], false,
            "a stay-up is not a skip marker to use up"
        );
        assert!(
            s3.body(BUCKET, "overrides/up/stay-up-until").is_some(),
            "never deleted by the step"
        );
        s3.insert(
            BUCKET,
            "overrides/up/stay-up-until",
            b"2001-01-01T00:00:00Z".to_vec(),
        );
        assert_eq!(
            run().await.unwrap()["stay_up_until"],
            Value::Null,
            "ended: pause as usual"
        );
        marker_refused(&mwaa, &s3, "stay_up_marker", "a/b").await;
    }
}
