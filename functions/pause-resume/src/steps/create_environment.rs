//! create-environment: `{"environment"}` -> `{"environment", "created", "status",
//! "resume_needed", "reason"?, "snapshot"}`, where `snapshot` is the last verified pause's
//! record (manifest, active DAGs) the rest of the resume works from. Without one nothing is
//! created. `resume_needed` is false, with the `reason`, for an environment that exists and
//! that pause did not delete: older than the pause, or restored from that snapshot already
//! (the pause since was skipped or failed). Then `pausing` says what became of a pausing mark
//! left by a pause that ended without removing it ([`stale_pause`]).

use aws_sdk_mwaa::types::Environment;
use serde_json::{json, Value};

use common::{Error, ErrorKind, Status};

use crate::configuration::SavedConfiguration;
use crate::layout::{latest_key, restored_key, snapshot_key};
use crate::ops::{Created, Environments, Objects};
use crate::parse_environment;
use crate::steps::proof::nothing_to_resume;
use crate::steps::stale_pause::{self, PauseMarks};

/// What create-environment does, given what GetEnvironment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateDecision {
    /// Not there: create it from the saved configuration.
    Create,
    /// There already (being created, updated, waiting for endpoints, or available).
    Exists(Status),
    /// Still being deleted: creating now would fail.
    Deleting,
    /// In a failed state (or one this build does not know): a person must look.
    Failed { status: Status, error: String },
}

pub fn decide_create(env: Option<&Environment>) -> CreateDecision {
    let Some(env) = env else {
        return CreateDecision::Create;
    };
    match Status::of(Some(env)) {
        Status::Deleted | Status::NotFound => CreateDecision::Create,
        Status::Deleting => CreateDecision::Deleting,
        status @ (Status::Available
        | Status::Creating
        | Status::Updating
        | Status::Pending
        | Status::CreatingSnapshot
        | Status::Maintenance
        | Status::RollingBack) => CreateDecision::Exists(status),
        status @ (Status::CreateFailed
        | Status::UpdateFailed
        | Status::Unavailable
        | Status::Other(_)) => CreateDecision::Failed {
            status,
            error: describe_last_error(env),
        },
    }
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
    // The import reads exactly the verified manifest: a record without them (written before
    // exports were bound to their pause) is refused before anything is created.
    for field in ["manifest_sha256", "manifest_version_id", "export_id"] {
        if snapshot[field].as_str().is_none_or(|v| v.is_empty()) {
            return Err(invalid(format!(
                "field `{field}` is missing: a pause recorded before exports were bound to \
                 their pause cannot be imported by this suite's import DAG; import it by hand \
                 with the DAG files that exported it"
            )));
        }
    }
    Ok(snapshot)
}

/// The record of the last completed resume, if any (an unreadable one stops the resume: it
/// could be the record that says "done").
async fn load_restored(
    s3: &impl Objects,
    bucket: &str,
    name: &str,
) -> Result<Option<Value>, Error> {
    let key = restored_key(name);
    let Some(bytes) = s3.get(bucket, &key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::ConfigurationInvalid,
            format!("s3://{bucket}/{key} is not a restore record: {e}"),
        )
    })
}

pub async fn create_environment(
    mwaa: &impl Environments,
    s3: &impl Objects,
    marks: &impl PauseMarks,
    bucket: &str,
    event: Value,
) -> Result<Value, Error> {
    let name = parse_environment(&event)?;
    let snapshot = load_snapshot(s3, bucket, &name).await?;
    let restored = load_restored(s3, bucket, &name).await?;
    let env = mwaa.get(&name).await?;
    let report = |created: bool, status: &Status, reason: Option<String>| {
        let status = status.as_str();
        let resume_needed = reason.is_none();
        tracing::info!(environment = %name, created, status, resume_needed, reason, "create-environment");
        let mut out = json!({"environment": name, "created": created, "status": status,
                  "resume_needed": resume_needed, "snapshot": snapshot});
        if let Some(reason) = reason {
            out["reason"] = json!(reason);
        }
        Ok(out)
    };
    match decide_create(env.as_ref()) {
        CreateDecision::Exists(status) => {
            let created_at = env.as_ref().and_then(|e| e.created_at()).copied();
            let reason = nothing_to_resume(&name, created_at, &snapshot, restored.as_ref())?;
            let not_resumed = reason.is_some();
            let mut out = report(false, &status, reason)?;
            if not_resumed {
                out["pausing"] = stale_pause::settle_mark(marks, bucket, &name, &status).await?;
            }
            Ok(out)
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
                Created::Created => report(true, &Status::Creating, None),
                Created::AlreadyExists => match mwaa.get(&name).await? {
                    Some(env) => report(false, &Status::of(Some(&env)), None),
                    None => Err(Error::new(
                        ErrorKind::Retryable,
                        format!("MWAA says {name} exists, but GetEnvironment does not find it yet"),
                    )),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
