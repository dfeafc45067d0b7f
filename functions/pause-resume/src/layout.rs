//! Where the steps keep things in the suite's bucket (`SUITE_BUCKET`). Every key a step reads
//! or writes is made here, so the layout can be read in one place. The state machines write
//! and delete four of them themselves (`RecordSnapshot`, `ConsumeSkipMarker`, `RecordRestore`, and
//! the pausing mark: `MarkPausing`, `EndPausing`; trigger-dag reads it, see its `ops::pausing_key`).
//!
//! ```text
//! configurations/<environment>/latest.json               what create-environment reads
//! configurations/<environment>/<YYYYMMDDTHHMMSSZ>.json   the history of saved copies
//! snapshots/<environment>/latest.json                    the last verified pause
//! snapshots/<environment>/restored.json                  the pause the last resume restored
//! overrides/<environment>/skip-next-pause                "skip tonight" (used up by the pause)
//! overrides/<environment>/stay-up-until                  "no pause until" an RFC 3339 time
//! pausing/<environment>                                  the pause's mark (trigger-dag holds arrivals)
//! ```

use aws_sdk_mwaa::primitives::{DateTime, DateTimeFormat};

use common::{Error, ErrorKind};

/// `configurations/<environment>/latest.json`: what create-environment reads.
pub fn latest_key(environment: &str) -> String {
    format!("configurations/{environment}/latest.json")
}

/// `configurations/<environment>/<YYYYMMDDTHHMMSSZ>.json`: the history of saved copies.
pub fn timestamped_key(environment: &str, now: DateTime) -> Result<String, Error> {
    let stamp = DateTime::from_secs(now.secs())
        .fmt(DateTimeFormat::DateTime)
        .map_err(|e| {
            Error::new(
                ErrorKind::OperationFailed,
                format!("cannot format the time {now:?}: {e}"),
            )
        })?
        .replace(['-', ':'], "");
    Ok(format!("configurations/{environment}/{stamp}.json"))
}

/// What the pause state machine records once an export is verified (its `RecordSnapshot`
/// state writes it): the saved configuration, the manifest, the DAGs that were active.
pub fn snapshot_key(environment: &str) -> String {
    format!("snapshots/{environment}/latest.json")
}

/// The marker that skips the next pause (the pause deletes it as it skips).
pub const SKIP_NEXT_PAUSE: &str = "skip-next-pause";

/// The marker that keeps an environment up until the time it holds (never deleted by the
/// pause: it ends by itself).
pub const STAY_UP_UNTIL: &str = "stay-up-until";

/// What a resume records once it has restored a snapshot (its `RecordRestore` state writes
/// it): the pause's manifest and execution, so that no later resume restores it again.
pub fn restored_key(environment: &str) -> String {
    format!("snapshots/{environment}/restored.json")
}

/// Where an operator leaves a one-time override for an environment (e.g. "skip tonight":
/// `overrides/<environment>/skip-next-pause`).
pub fn override_key(environment: &str, marker: &str) -> String {
    format!("overrides/{environment}/{marker}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamped_keys_are_compact_utc() {
        let now = DateTime::from_secs_and_nanos(1_793_754_123, 999_000_000);
        assert_eq!(
            timestamped_key("dev", now).unwrap(),
            "configurations/dev/20261104T010203Z.json"
        );
        assert_eq!(latest_key("dev"), "configurations/dev/latest.json");
    }

    #[test]
    fn snapshots_and_overrides_are_per_environment() {
        assert_eq!(snapshot_key("dev"), "snapshots/dev/latest.json");
        assert_eq!(restored_key("dev"), "snapshots/dev/restored.json");
        assert_eq!(
            override_key("dev", "skip-next-pause"),
            "overrides/dev/skip-next-pause"
        );
    }
}
