//! The steps on the environment itself: environment-status, save-configuration,
//! create-environment, delete-environment.

use aws_sdk_mwaa::types::{Environment, EnvironmentStatus};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde_json::{json, Value};

use crate::configuration::SavedConfiguration;
use crate::ops::{Created, Deleted, Environments, Objects};
use crate::parse_environment;
use common::{Error, ErrorKind};

/// The status the steps report when MWAA does not know the environment.
pub const NOT_FOUND: &str = "NOT_FOUND";

/// MWAA's status string, or `NOT_FOUND`.
pub fn status_of(env: Option<&Environment>) -> String {
    match env {
        None => NOT_FOUND.to_owned(),
        Some(env) => env
            .status()
            .map_or("UNKNOWN", EnvironmentStatus::as_str)
            .to_owned(),
    }
}

/// The last update's error as `{"code", "message"}`, when MWAA reports one.
pub fn last_update_error(env: &Environment) -> Option<Value> {
    let error = env.last_update()?.error()?;
    Some(json!({"code": error.error_code(), "message": error.error_message()}))
}

fn describe_last_error(env: &Environment) -> String {
    env.last_update()
        .and_then(|u| u.error())
        .map(|e| {
            format!(
                "{}: {}",
                e.error_code().unwrap_or("(no code)"),
                e.error_message().unwrap_or("(no message)")
            )
        })
        .unwrap_or_else(|| "MWAA reports no error details".to_owned())
}

/// Where an operator leaves a one-time override for an environment (e.g. "skip tonight":
/// `overrides/<environment>/skip-next-pause`).
pub fn override_key(environment: &str, marker: &str) -> String {
    format!("overrides/{environment}/{marker}")
}

/// environment-status: `{"environment", "skip_marker"?}` -> `{"environment", "status",
/// "airflow_version"?, "last_update_error"?, "skip"?}`. With `skip_marker`, `skip` says
/// whether the operator left that marker (the pause state machine deletes it when it skips).
pub async fn environment_status(
    mwaa: &impl Environments,
    overrides: &impl Objects,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let env = mwaa.get(&name).await?;
    let mut out = json!({"environment": name, "status": status_of(env.as_ref())});
    #[derive(serde::Deserialize)]
    struct Marker {
        skip_marker: Option<String>,
    }
    if let Some(marker) = crate::parse::<Marker>(&event)?.skip_marker {
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

/// `configurations/<environment>/latest.json`: what create-environment reads.
pub fn latest_key(environment: &str) -> String {
    format!("configurations/{environment}/latest.json")
}

/// `configurations/<environment>/<YYYYMMDDTHHMMSSZ>.json`: the history of saved copies.
pub fn timestamped_key(environment: &str, now: DateTime) -> Result<String, Error> {
    let stamp = DateTime::from_secs(now.secs())
        .fmt(Format::DateTime)
        .map_err(|e| {
            Error::new(
                ErrorKind::OperationFailed,
                format!("cannot format the time {now:?}: {e}"),
            )
        })?
        .replace(['-', ':'], "");
    Ok(format!("configurations/{environment}/{stamp}.json"))
}

/// save-configuration: `{"environment"}` -> `{"environment", "bucket", "key",
/// "airflow_version", "copy"}`. Only an AVAILABLE environment is saved; the timestamped copy
/// is written first, so `latest.json` always has a copy in the history.
pub async fn save_configuration(
    mwaa: &impl Environments,
    s3: &impl Objects,
    bucket: &str,
    now: DateTime,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let env = mwaa.get(&name).await?;
    let status = status_of(env.as_ref());
    let Some(env) = env.filter(|_| status == "AVAILABLE") else {
        return Err(Error::not_available(
            &name,
            &status,
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

/// What create-environment does, given what GetEnvironment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateDecision {
    /// Not there: create it from the saved configuration.
    Create,
    /// There already (being created, updated, waiting for endpoints, or available).
    Exists(String),
    /// Still being deleted: creating now would fail.
    Deleting,
    /// In a failed state: a person must look.
    Failed { status: String, error: String },
}

pub fn decide_create(env: Option<&Environment>) -> CreateDecision {
    let Some(env) = env else {
        return CreateDecision::Create;
    };
    let status = status_of(Some(env));
    match env.status() {
        Some(EnvironmentStatus::Deleted) => CreateDecision::Create,
        Some(EnvironmentStatus::Deleting) => CreateDecision::Deleting,
        Some(
            EnvironmentStatus::Available
            | EnvironmentStatus::Creating
            | EnvironmentStatus::Updating
            | EnvironmentStatus::Pending
            | EnvironmentStatus::CreatingSnapshot
            | EnvironmentStatus::Maintenance
            | EnvironmentStatus::RollingBack,
        ) => CreateDecision::Exists(status),
        _ => CreateDecision::Failed {
            status,
            error: describe_last_error(env),
        },
    }
}

/// Reads and checks `latest.json`.
pub async fn load_configuration(
    s3: &impl Objects,
    bucket: &str,
    environment: &str,
) -> Result<SavedConfiguration, Error> {
    let key = latest_key(environment);
    let location = format!("s3://{bucket}/{key}");
    let Some(bytes) = s3.get(bucket, &key).await? else {
        return Err(Error::new(
            ErrorKind::ConfigurationNotFound,
            format!("no saved configuration for {environment} at {location} (save-configuration writes it)"),
        ));
    };
    let configuration: SavedConfiguration = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::ConfigurationInvalid,
            format!("{location} is not a saved configuration: {e}"),
        )
    })?;
    if configuration.name != environment {
        return Err(Error::new(
            ErrorKind::ConfigurationInvalid,
            format!(
                "{location} names environment {:?}, not {environment:?}",
                configuration.name
            ),
        ));
    }
    Ok(configuration)
}

/// What the pause state machine records once an export is verified (its `RecordSnapshot`
/// state writes it): the saved configuration, the manifest, the DAGs that were active.
pub fn snapshot_key(environment: &str) -> String {
    format!("snapshots/{environment}/latest.json")
}

/// The snapshot of the last verified pause; refuses to go on without one.
async fn load_snapshot(s3: &impl Objects, bucket: &str, name: &str) -> Result<Value, Error> {
    let key = snapshot_key(name);
    let bytes = s3.get(bucket, &key).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::SnapshotNotFound,
            format!("no verified pause of {name} (s3://{bucket}/{key}): nothing to resume from"),
        )
    })?;
    let invalid = |why: String| {
        Error::new(
            ErrorKind::SnapshotNotFound,
            format!("s3://{bucket}/{key} is not a usable snapshot record: {why}"),
        )
    };
    let snapshot: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if snapshot["environment"] != name {
        return Err(invalid(format!(
            "it names environment {}",
            snapshot["environment"]
        )));
    }
    for field in ["manifest", "paused_at"] {
        if !snapshot[field].is_string() {
            return Err(invalid(format!("field `{field}` is missing")));
        }
    }
    if !snapshot["active_dags"].is_array() {
        return Err(invalid("field `active_dags` is missing".into()));
    }
    Ok(snapshot)
}

/// Whether an environment that exists is the one a resume made after the pause (import and
/// re-enable DAGs then) or one that was never paused — a pause that was skipped, or that
/// failed before deleting: importing last night's snapshot over it would overwrite live
/// state, so the resume stops.
pub fn resume_needed(env: &Environment, snapshot: &Value) -> Result<bool, Error> {
    let paused_at = snapshot["paused_at"].as_str().unwrap_or_default();
    let paused_at = DateTime::from_str(paused_at, Format::DateTimeWithOffset).map_err(|e| {
        Error::new(
            ErrorKind::SnapshotNotFound,
            format!("snapshot field `paused_at` {paused_at:?} is not a time: {e}"),
        )
    })?;
    Ok(env.created_at().is_none_or(|created| *created > paused_at))
}

/// create-environment: `{"environment"}` -> `{"environment", "created", "status",
/// "resume_needed", "snapshot"}`, where `snapshot` is the last verified pause's record
/// (manifest, active DAGs) the rest of the resume works from. Without one nothing is
/// created; `resume_needed` is false for an environment older than the pause.
pub async fn create_environment(
    mwaa: &impl Environments,
    s3: &impl Objects,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let snapshot = load_snapshot(s3, bucket, &name).await?;
    let env = mwaa.get(&name).await?;
    let report = |created: bool, status: &str, resume_needed: bool| {
        tracing::info!(environment = %name, created, status, resume_needed, "create-environment");
        Ok(
            json!({"environment": name, "created": created, "status": status,
                  "resume_needed": resume_needed, "snapshot": snapshot}),
        )
    };
    match decide_create(env.as_ref()) {
        CreateDecision::Exists(status) => {
            let needed = resume_needed(env.as_ref().expect("exists"), &snapshot)?;
            report(false, &status, needed)
        }
        CreateDecision::Deleting => Err(Error::new(
            ErrorKind::EnvironmentDeleting,
            format!("environment {name} is still DELETING; it can be created once it is gone"),
        )),
        CreateDecision::Failed { status, error } => Err(Error::new(
            ErrorKind::EnvironmentFailed,
            format!("environment {name} is {status}: {error}"),
        )),
        CreateDecision::Create => {
            let configuration = load_configuration(s3, bucket, &name).await?;
            match mwaa.create(&configuration).await? {
                Created::Created => report(true, "CREATING", true),
                Created::AlreadyExists => match mwaa.get(&name).await? {
                    Some(env) => report(false, &status_of(Some(&env)), true),
                    None => Err(Error::new(
                        ErrorKind::Retryable,
                        format!("MWAA says {name} exists, but GetEnvironment does not find it yet"),
                    )),
                },
            }
        }
    }
}

/// What delete-environment does, given what GetEnvironment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteDecision {
    Delete,
    /// Gone or going: nothing to do (status reported).
    Nothing(String),
}

pub fn decide_delete(env: Option<&Environment>) -> DeleteDecision {
    let Some(env) = env else {
        return DeleteDecision::Nothing(NOT_FOUND.to_owned());
    };
    match env.status() {
        Some(EnvironmentStatus::Deleting | EnvironmentStatus::Deleted) => {
            DeleteDecision::Nothing(status_of(Some(env)))
        }
        _ => DeleteDecision::Delete,
    }
}

/// delete-environment: `{"environment"}` -> `{"environment", "deleted", "status"}`.
pub async fn delete_environment(mwaa: &impl Environments, event: Value) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let report = |deleted: bool, status: &str| {
        tracing::info!(environment = %name, deleted, status, "delete-environment");
        Ok(json!({"environment": name, "deleted": deleted, "status": status}))
    };
    let env = mwaa.get(&name).await?;
    if let DeleteDecision::Nothing(status) = decide_delete(env.as_ref()) {
        return report(false, &status);
    }
    match mwaa.delete(&name).await? {
        Deleted::Deleted => report(true, "DELETING"),
        Deleted::NotFound => report(false, NOT_FOUND),
        Deleted::Refused(message) => {
            // Refused because a delete is under way already, or because of the state it is in.
            let env = mwaa.get(&name).await?;
            match decide_delete(env.as_ref()) {
                DeleteDecision::Nothing(status) => report(false, &status),
                DeleteDecision::Delete => Err(Error::not_available(
                    &name,
                    &status_of(env.as_ref()),
                    &format!("MWAA refused to delete it: {message}"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{creatable, environment, FakeMwaa, MemoryObjects};
    use aws_sdk_mwaa::types::{LastUpdate, UpdateError};

    const BUCKET: &str = "suite";

    fn saveable(name: &str) -> Environment {
        creatable(name)
            .status(EnvironmentStatus::Available)
            .airflow_version("2.10.3")
            .tags("team", "data")
            .build()
    }

    fn failed(status: EnvironmentStatus) -> Environment {
        Environment::builder()
            .name("dev")
            .status(status)
            .last_update(
                LastUpdate::builder()
                    .error(
                        UpdateError::builder()
                            .error_code("INCORRECT_CONFIGURATION")
                            .error_message("subnets have no NAT")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn input(name: &str) -> Value {
        json!({"environment": name})
    }

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

    #[test]
    fn timestamped_keys_are_compact_utc() {
        let now = DateTime::from_secs_and_nanos(1_793_754_123, 999_000_000);
        assert_eq!(
            timestamped_key("dev", now).unwrap(),
            "configurations/dev/20261104T010203Z.json"
        );
        assert_eq!(latest_key("dev"), "configurations/dev/latest.json");
    }

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
                CreateDecision::Exists(s.as_str().to_owned())
            );
        }
        for s in [S::CreateFailed, S::UpdateFailed, S::Unavailable] {
            assert!(matches!(decide(s), CreateDecision::Failed { .. }));
        }
        let CreateDecision::Failed { status, error } =
            decide_create(Some(&failed(S::CreateFailed)))
        else {
            panic!("not failed")
        };
        assert_eq!(status, "CREATE_FAILED");
        assert_eq!(error, "INCORRECT_CONFIGURATION: subnets have no NAT");
    }

    /// Saves `dev` as it is, then deletes it from the fake.
    async fn paused() -> (FakeMwaa, MemoryObjects) {
        let mwaa = FakeMwaa::with(&[saveable("dev")]);
        let s3 = MemoryObjects::default();
        save_configuration(&mwaa, &s3, BUCKET, DateTime::from_secs(0), input("dev"))
            .await
            .unwrap();
        mwaa.environments.lock().unwrap().clear();
        for name in ["dev", "other", "copy"] {
            let snapshot = SNAPSHOT.replace("\"dev\"", &format!("\"{name}\""));
            s3.insert(BUCKET, &snapshot_key(name), snapshot.into_bytes());
        }
        (mwaa, s3)
    }

    const SNAPSHOT: &str = r#"{"environment": "dev", "manifest": "s3://suite/metadata/dev/m.json",
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
        let before_pause = creatable("dev")
            .status(EnvironmentStatus::Available)
            .created_at(DateTime::from_secs(1_795_280_000))
            .build();
        mwaa.put(before_pause);
        let out = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
        assert_eq!(
            (out["created"].clone(), out["resume_needed"].clone()),
            (json!(false), json!(false))
        );
        // One the resume created after the pause (a re-run of the resume): go on.
        let after_pause = creatable("dev")
            .status(EnvironmentStatus::Available)
            .created_at(DateTime::from_secs(1_795_300_000))
            .build();
        mwaa.put(after_pause);
        let out = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
        assert_eq!(out["resume_needed"], true);
        assert!(mwaa.created.lock().unwrap().is_empty());
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
            let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn without_a_verified_pause_nothing_is_created() {
        let (mwaa, s3) = paused().await;
        s3.delete(BUCKET, &snapshot_key("dev")).await.unwrap();
        let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
        assert!(
            err.to_string().contains("snapshots/dev/latest.json"),
            "{err}"
        );
        s3.insert(BUCKET, &snapshot_key("dev"), b"not json".to_vec());
        let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
        assert!(mwaa.created.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn create_uses_the_saved_configuration_once() {
        let (mwaa, s3) = paused().await;
        let first = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
        assert_eq!(first, created(true, "CREATING"));
        let again = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
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
        let out = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap();
        assert_eq!(out["created"], false);
        assert_eq!(out["status"], "CREATING");
    }

    #[tokio::test]
    async fn create_stops_at_failed_deleting_or_unsaved_environments() {
        let (mwaa, s3) = paused().await;
        mwaa.put(failed(EnvironmentStatus::CreateFailed));
        let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentFailed);
        assert!(err.to_string().contains("CREATE_FAILED"), "{err}");
        assert!(err.to_string().contains("subnets have no NAT"), "{err}");

        mwaa.put(environment("dev", EnvironmentStatus::Deleting, "2.10.3"));
        let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::EnvironmentDeleting);

        let err = create_environment(&mwaa, &s3, BUCKET, input("other"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigurationNotFound);
        assert!(
            err.to_string()
                .contains("s3://suite/configurations/other/latest.json"),
            "{err}"
        );
        assert!(mwaa.created.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_configuration_saved_for_another_name_or_unreadable_is_refused() {
        let (mwaa, s3) = paused().await;
        let body = s3.body(BUCKET, &latest_key("dev")).unwrap();
        s3.insert(BUCKET, &latest_key("copy"), body);
        let err = create_environment(&mwaa, &s3, BUCKET, input("copy"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigurationInvalid);
        assert!(err.to_string().contains("\"dev\""), "{err}");
        s3.insert(BUCKET, &latest_key("dev"), b"{\"Name\": \"dev\"}".to_vec());
        let err = create_environment(&mwaa, &s3, BUCKET, input("dev"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigurationInvalid);
        assert!(mwaa.created.lock().unwrap().is_empty());
    }

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
            DeleteDecision::Nothing("DELETED".into())
        );
    }
}
