//! MWAA's status-change event as every function reads it. AWS documents only the source and
//! the detail-type, delivered best effort: no detail field is promised. The environment is
//! `detail.name`, else the environment ARN in `resources`; the status is `detail.status`, else
//! unknown, and the caller reads it from GetEnvironment.

use serde::Deserialize;
use serde_json::Value;

use crate::environment::{EnvironmentName, Status, MWAA_SOURCE, MWAA_STATUS_CHANGE};
use crate::event::{event_id, nested, parse};
use crate::Error;

/// One status change, as far as the event tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub event_id: String,
    /// The event's `time`, as sent.
    pub time: Option<String>,
    /// The account the environment lives in (the envelope's `account`).
    pub account: Option<String>,
    pub name: EnvironmentName,
    /// `arn:aws:airflow:REGION:ACCOUNT:environment/NAME` when `resources` carries it.
    pub arn: Option<String>,
    /// `detail.status`; `None` for the sparse event AWS documents.
    pub status: Option<Status>,
    /// The whole `detail` (`{}` when absent), for the undocumented fields one function reads.
    pub detail: Value,
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    account: Option<String>,
    time: Option<String>,
    resources: Option<Vec<String>>,
    detail: Option<Value>,
}

/// The two detail fields every reader wants; both optional.
#[derive(Deserialize)]
struct NameAndStatus {
    name: Option<String>,
    status: Option<String>,
}

/// Reads an MWAA status change; anything else, or one that names no environment, is an error
/// naming the field and the event id.
pub fn parse_status_change(event: &Value) -> Result<StatusChange, Error> {
    let id = event_id(event);
    let bad = |field: &str, reason: String| Error::invalid_event(&id, field, reason);
    let envelope: Envelope = parse(&id, event)?;
    if envelope.source != MWAA_SOURCE {
        let got = envelope.source;
        return Err(bad(
            "source",
            format!("expected {MWAA_SOURCE:?}, got {got:?}"),
        ));
    }
    if envelope.detail_type != MWAA_STATUS_CHANGE {
        let got = envelope.detail_type;
        let expected = MWAA_STATUS_CHANGE;
        return Err(bad(
            "detail-type",
            format!("expected {expected:?}, got {got:?}"),
        ));
    }
    let detail = envelope
        .detail
        .unwrap_or_else(|| Value::Object(Default::default()));
    let fields: NameAndStatus = parse(&id, &detail).map_err(|e| nested("detail", e))?;
    let arn = envelope
        .resources
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.starts_with("arn:") && r.contains(":environment/") && !r.ends_with('/'));
    // The name is checked once, here, naming the field it came from.
    let name = match (fields.name.as_deref().filter(|n| !n.is_empty()), &arn) {
        (Some(name), _) => EnvironmentName::parse(&id, "detail.name", name)?,
        (None, Some(arn)) => {
            let name = arn.rsplit_once(":environment/").map_or("", |(_, n)| n);
            EnvironmentName::parse(&id, "resources", name)?
        }
        (None, None) => {
            let reason = "missing field `name`, and no environment ARN in `resources` either";
            return Err(bad("detail.name", reason.into()));
        }
    };
    // Any status string is read (MWAA adds statuses); an empty one is a broken event.
    let status = match fields.status.as_deref().map(str::trim) {
        None => None,
        Some("") => return Err(bad("detail.status", "empty".into())),
        Some(status) => Some(Status::parse(status)),
    };
    Ok(StatusChange {
        event_id: id,
        time: envelope.time,
        account: envelope.account,
        name,
        arn,
        status,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sparse() -> Value {
        json!({"id": "ev-1", "source": "aws.airflow",
               "detail-type": "MWAA Environment Status Change",
               "resources": ["arn:aws:airflow:us-east-1:111122223333:environment/dev_1"]})
    }

    #[test]
    fn the_sparse_event_names_the_environment_by_its_arn() {
        let change = parse_status_change(&sparse()).unwrap();
        assert_eq!(change.name, "dev_1");
        assert_eq!(change.status, None);
        assert_eq!(change.detail, json!({}));
    }

    #[test]
    fn detail_fields_win_and_an_unknown_status_is_kept() {
        let mut event = sparse();
        event["detail"] = json!({"name": "other", "status": "HIBERNATING"});
        let change = parse_status_change(&event).unwrap();
        assert_eq!(change.name, "other");
        assert_eq!(change.status, Some(Status::parse("HIBERNATING")));
    }

    #[test]
    fn broken_events_name_the_field_and_the_event() {
        let cases = [
            (json!({"resources": []}), "detail.name"),
            (
                json!({"resources": ["arn:aws:airflow:r:1:environment/"]}),
                "resources",
            ),
            (json!({"detail": {"name": "9x"}}), "detail.name"),
            (
                json!({"detail": {"name": "dev", "status": " "}}),
                "detail.status",
            ),
            (json!({"detail": {"name": 7}}), "detail.name"),
            (json!({"source": "aws.s3"}), "source"),
            (json!({"detail-type": "Other"}), "detail-type"),
        ];
        for (change, field) in cases {
            let mut event = sparse();
            for (k, v) in change.as_object().unwrap() {
                event[k] = v.clone();
            }
            let err = parse_status_change(&event).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("ev-1"),
                "{field}: {err}"
            );
        }
    }
}
