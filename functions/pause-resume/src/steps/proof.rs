//! What ties each step of a pause or resume to its own execution and its own export, so that
//! no step acts on evidence another night left behind:
//!
//! - verify-export accepts only a manifest that names the environment being paused and was
//!   written after the pause's execution started (an older valid export sent back through
//!   `SendTaskSuccess` is refused);
//! - delete-environment deletes only when the snapshot record (`snapshots/<env>/latest.json`)
//!   was written by the calling execution, for this environment, from an export verify-export
//!   passed in that execution;
//! - a resume restores a snapshot once: the resume records the export it restored
//!   (`snapshots/<env>/restored.json`), and a later resume of the same snapshot (its pause
//!   was skipped or failed) imports nothing and switches no DAG on.

use aws_sdk_mwaa::primitives::{DateTime, DateTimeFormat};
use serde_json::Value;

use common::{Error, ErrorKind};

/// A time as Step Functions (`$$.Execution.StartTime`, `$$.State.EnteredTime`) and the export
/// DAG (`created_at`, Python's `isoformat()`) write it: RFC 3339 with an offset.
pub fn parse_time(what: &str, value: &str) -> Result<DateTime, String> {
    DateTime::from_str(value, DateTimeFormat::DateTimeWithOffset)
        .map_err(|e| format!("{what} {value:?} is not a time: {e}"))
}

/// verify-export: what is wrong with where a manifest comes from (none when it names
/// `environment` and was written at or after `execution_started`).
pub fn origin_problems(
    manifest_environment: Option<&str>,
    manifest_created_at: Option<&str>,
    environment: &str,
    execution_started: &str,
) -> Result<Vec<String>, Error> {
    let started =
        parse_time("field `execution_started`", execution_started).map_err(Error::invalid_input)?;
    let mut problems = vec![];
    match manifest_environment {
        Some(named) if named == environment => {}
        Some(named) => problems.push(format!(
            "the manifest is an export of environment {named:?}, not {environment:?}"
        )),
        None => problems.push("the manifest names no environment".into()),
    }
    match manifest_created_at.map(|at| parse_time("its `created_at`", at)) {
        None => problems.push("the manifest has no `created_at`".into()),
        Some(Err(why)) => problems.push(format!("the manifest's {why}")),
        Some(Ok(at)) if at < started => problems.push(format!(
            "the manifest was written at {}, before this pause started ({execution_started}): \
             an older export, not this pause's",
            manifest_created_at.unwrap_or_default()
        )),
        Some(Ok(_)) => {}
    }
    Ok(problems)
}

/// delete-environment: the snapshot record at `location` proves that `execution` verified an
/// export of `environment`; anything else is `SnapshotNotFound` and nothing is deleted.
pub fn check_deletion_proof(
    record: Option<&[u8]>,
    location: &str,
    environment: &str,
    execution: &str,
) -> Result<(), Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::SnapshotNotFound,
            format!(
                "refusing to delete {environment}: {why} (a pause deletes only after recording \
                 the export it verified, in the same execution)"
            ),
        )
    };
    let Some(bytes) = record else {
        return Err(refuse(format!("there is no snapshot record at {location}")));
    };
    let record: Value = serde_json::from_slice(bytes)
        .map_err(|e| refuse(format!("{location} is not a snapshot record: {e}")))?;
    let verified = &record["verified"];
    let mismatches: Vec<String> = [
        ("environment", &record["environment"], environment),
        ("execution", &record["execution"], execution),
        (
            "verified.environment",
            &verified["environment"],
            environment,
        ),
        ("verified.execution", &verified["execution"], execution),
    ]
    .into_iter()
    .filter(|(_, found, wanted)| found.as_str() != Some(*wanted))
    .map(|(field, found, wanted)| format!("`{field}` is {found}, not {wanted:?}"))
    .collect();
    if !mismatches.is_empty() {
        return Err(refuse(format!(
            "{location} was not written by this execution for this environment: {}",
            mismatches.join(", ")
        )));
    }
    if verified["verified"] != true || record["manifest"] != verified["manifest"] {
        return Err(refuse(format!(
            "{location} does not record a verified export (manifest {}, verified {})",
            record["manifest"], verified["manifest"]
        )));
    }
    Ok(())
}

/// What a resume records once it has restored a snapshot: the pause's manifest and
/// execution. Equal ones mean the snapshot was restored already.
pub fn same_pause(snapshot: &Value, restored: &Value) -> bool {
    ["manifest", "execution"]
        .iter()
        .all(|field| snapshot[field] == restored[field])
}

/// Why a resume leaves an existing environment alone, or `None` to go on. `restored` is the
/// record of the last completed resume, if any.
pub fn nothing_to_resume(
    environment: &str,
    created_at: Option<DateTime>,
    snapshot: &Value,
    restored: Option<&Value>,
) -> Result<Option<String>, Error> {
    let paused_text = snapshot["paused_at"].as_str().unwrap_or_default();
    let paused_at = parse_time("snapshot field `paused_at`", paused_text)
        .map_err(|why| Error::new(ErrorKind::SnapshotNotFound, why))?;
    let manifest = snapshot["manifest"].as_str().unwrap_or("(no manifest)");
    if let Some(restored) = restored.filter(|r| same_pause(snapshot, r)) {
        return Ok(Some(format!(
            "the last verified pause of {environment} (export {manifest}, paused at \
             {paused_text}) was restored already by {} at {}: no pause since deleted it \
             (skipped or failed), so nothing is imported and no DAG is switched on",
            restored["resume_execution"], restored["restored_at"]
        )));
    }
    match created_at {
        Some(created) if created <= paused_at => Ok(Some(format!(
            "{environment} exists since {}, before its last verified pause ({paused_text}): \
             that pause did not delete it (it failed before or during the deletion), so \
             nothing is imported and no DAG is switched on",
            created
                .fmt(DateTimeFormat::DateTime)
                .unwrap_or_else(|_| created.secs().to_string())
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STARTED: &str = "2026-11-30T01:00:00.000Z";

    #[test]
    fn a_manifest_must_name_this_environment_and_be_written_after_the_start() {
        // What a manifest of `environment` written `at` lacks for dev's pause started STARTED.
        let problems = |environment: Option<&str>, at: Option<&str>| {
            origin_problems(environment, at, "dev", STARTED).unwrap()
        };
        let ok = problems(Some("dev"), Some("2026-11-30T01:05:00.5+00:00"));
        assert_eq!(ok, Vec::<String>::new());
        let other = problems(Some("prod"), Some("2026-11-30T01:05:00+00:00")).join("; ");
        assert!(other.contains("\"prod\", not \"dev\""), "{other}");
        // Last night's export, valid in every other way, sent back to tonight's token.
        let old = problems(Some("dev"), Some("2026-11-29T01:05:00+00:00")).join("; ");
        assert!(old.contains("before this pause started"), "{old}");
        let bare = problems(None, None);
        assert_eq!(bare.len(), 2, "{bare:?}");
        let bad = problems(Some("dev"), Some("yesterday"));
        assert!(bad[0].contains("\"yesterday\" is not a time"), "{bad:?}");
        let err = origin_problems(Some("dev"), None, "dev", "now").unwrap_err();
        common::testing::assert_invalid_input(err, &["execution_started"]);
    }

    fn record(execution: &str, verified_by: &str) -> Vec<u8> {
        json!({"environment": "dev", "execution": execution, "manifest": "s3://b/m.json",
            "verified": {"verified": true, "environment": "dev", "execution": verified_by,
                         "manifest": "s3://b/m.json"}})
        .to_string()
        .into_bytes()
    }

    fn refusal(record: Option<&[u8]>, execution: &str) -> String {
        let err = check_deletion_proof(
            record,
            "s3://suite/snapshots/dev/latest.json",
            "dev",
            execution,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound, "{err}");
        assert!(err.to_string().contains("refusing to delete dev"), "{err}");
        err.to_string()
    }

    #[test]
    fn deletion_needs_a_record_of_this_executions_verified_export() {
        let location = "s3://suite/snapshots/dev/latest.json";
        check_deletion_proof(
            Some(&record("arn:x:1", "arn:x:1")),
            location,
            "dev",
            "arn:x:1",
        )
        .unwrap();
        assert!(refusal(None, "arn:x:1").contains("no snapshot record"));
        let older = refusal(Some(&record("arn:x:0", "arn:x:0")), "arn:x:1");
        assert!(older.contains("`execution` is \"arn:x:0\""), "{older}");
        let half = refusal(Some(&record("arn:x:1", "arn:x:0")), "arn:x:1");
        assert!(half.contains("verified.execution"), "{half}");
        let unverified =
            json!({"environment": "dev", "execution": "arn:x:1", "manifest": "s3://b/m.json"});
        let message = refusal(Some(unverified.to_string().as_bytes()), "arn:x:1");
        assert!(message.contains("verified.environment"), "{message}");
        let mut swapped: Value = serde_json::from_slice(&record("arn:x:1", "arn:x:1")).unwrap();
        swapped["manifest"] = json!("s3://b/other.json");
        let message = refusal(Some(swapped.to_string().as_bytes()), "arn:x:1");
        assert!(
            message.contains("does not record a verified export"),
            "{message}"
        );
        assert!(refusal(Some(b"not json"), "arn:x:1").contains("not a snapshot record"));
    }

    #[test]
    fn a_snapshot_is_restored_once_and_never_over_an_environment_it_did_not_delete() {
        let snapshot = json!({"environment": "dev", "manifest": "s3://b/m2.json",
            "execution": "arn:pause:2", "paused_at": "2026-11-30T01:00:00+00:00"});
        let after = Some(DateTime::from_secs(1_796_100_000)); // 2026-12-01
        let before = Some(DateTime::from_secs(1_795_000_000)); // 2026-11-19
        assert_eq!(
            nothing_to_resume("dev", after, &snapshot, None).unwrap(),
            None
        );
        assert_eq!(
            nothing_to_resume("dev", None, &snapshot, None).unwrap(),
            None
        );
        let older = nothing_to_resume("dev", before, &snapshot, None)
            .unwrap()
            .unwrap();
        assert!(older.contains("did not delete it"), "{older}");
        let restored = json!({"manifest": "s3://b/m2.json", "execution": "arn:pause:2",
            "resume_execution": "arn:resume:7", "restored_at": "2026-12-01T07:00:00Z"});
        let again = nothing_to_resume("dev", after, &snapshot, Some(&restored))
            .unwrap()
            .unwrap();
        assert!(
            again.contains("restored already by \"arn:resume:7\""),
            "{again}"
        );
        let earlier = json!({"manifest": "s3://b/m1.json", "execution": "arn:pause:1"});
        assert_eq!(
            nothing_to_resume("dev", after, &snapshot, Some(&earlier)).unwrap(),
            None
        );
        let bad = json!({"paused_at": "yesterday"});
        let err = nothing_to_resume("dev", after, &bad, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SnapshotNotFound);
    }
}
