//! What provision-endpoints is given: MWAA's `MWAA Environment Status Change` event
//! (source `aws.airflow`). AWS documents only the source and the detail-type, and delivers
//! the event best effort: no detail field is promised. The name comes from `detail.name`,
//! else from the environment ARN in the envelope's `resources`; the status from
//! `detail.status`, else (the handler) from GetEnvironment.

use serde::Deserialize;
use serde_json::Value;

use common::event::{nested, parse};
use common::{EnvironmentName, Error, Status};

/// What provision-endpoints reads of `detail` beyond the name and status (none of it
/// documented, so all of it optional): what GetEnvironment can no longer tell once the
/// environment is DELETED (its queue and subnets). Endpoint services, access mode and security
/// groups come from GetEnvironment, the truth, so the event's copies are not read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetail {
    pub celery_executor_queue: Option<String>,
    pub network_configuration: Option<NetworkDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkDetail {
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

/// One status change, as far as the event tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub event_id: String,
    /// The environment's name (detail `name`, else the last part of the resource ARN).
    pub name: EnvironmentName,
    /// `arn:aws:airflow:REGION:ACCOUNT:environment/NAME` when the event carries it.
    pub arn: Option<String>,
    /// The account the environment lives in: the envelope's `account`, which EventBridge
    /// documents on every event; should one come without it, the account of the ARN.
    pub account: Option<String>,
    /// The status the event claims (`detail.status`); `None` for the sparse event AWS
    /// documents, and then GetEnvironment tells.
    pub status: Option<Status>,
    /// The Celery queue ARN, if the event names it (GetEnvironment no longer can once DELETED).
    pub celery_queue: Option<String>,
    pub subnets: Vec<String>,
}

/// Parses one EventBridge event; anything that is not an MWAA status change of a named
/// environment is an error naming the field and the event id.
pub fn parse_status_change(event: &Value) -> Result<StatusChange, Error> {
    let change = common::status_change::parse_status_change(event)?;
    let detail: StatusDetail =
        parse(&change.event_id, &change.detail).map_err(|e| nested("detail", e))?;
    let account = change
        .account
        .or_else(|| change.arn.as_deref().and_then(account_of));
    Ok(StatusChange {
        event_id: change.event_id,
        name: change.name,
        arn: change.arn,
        account,
        status: change.status,
        celery_queue: detail.celery_executor_queue.filter(|q| !q.is_empty()),
        subnets: detail
            .network_configuration
            .map(|n| n.subnet_ids)
            .unwrap_or_default(),
    })
}

/// The account of `arn:PARTITION:airflow:REGION:ACCOUNT:environment/NAME`.
fn account_of(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// The status change a valid sample event tells.
    fn read(json: &str) -> StatusChange {
        parse_status_change(&sample(json)).unwrap()
    }

    #[test]
    fn a_pending_event_is_read_with_its_facts() {
        let change = read(include_str!("../../../events/mwaa-status-pending.json"));
        assert_eq!(change.event_id, "a2b5c3d4-8f1e-4c6a-9d2b-1e3f5a7b9c0d");
        assert_eq!(change.name, "analytics-shared");
        assert_eq!(change.status, Some(Status::Pending));
        assert_eq!(
            change.arn.as_deref(),
            Some("arn:aws:airflow:us-east-1:210987654321:environment/analytics-shared")
        );
        assert_eq!(change.account.as_deref(), Some("210987654321"));
        assert!(change
            .celery_queue
            .as_deref()
            .unwrap()
            .starts_with("arn:aws:sqs:us-east-1:210987654321:airflow-celery-"));
        assert_eq!(change.subnets.len(), 2);
    }

    #[test]
    fn a_deleted_event_without_optional_fields_is_enough() {
        let change = read(include_str!("../../../events/mwaa-status-deleted.json"));
        assert_eq!(change.status, Some(Status::Deleted));
        assert_eq!(change.name, "analytics-shared");
        assert!(change.celery_queue.is_some());
    }

    #[test]
    fn the_name_falls_back_to_the_resource_arn() {
        let mut event = sample(include_str!("../../../events/mwaa-status-pending.json"));
        event["detail"].as_object_mut().unwrap().remove("name");
        let change = parse_status_change(&event).unwrap();
        assert_eq!(change.name, "analytics-shared");
    }

    #[test]
    fn the_sparse_event_aws_documents_is_enough() {
        let change = read(include_str!("../../../events/mwaa-status-sparse.json"));
        assert_eq!(change.event_id, "b3c6d4e5-9a2f-4d7b-8e3c-2f4a6b8c0d1e");
        assert_eq!(change.name, "analytics-shared");
        assert_eq!(change.status, None, "GetEnvironment tells");
        assert_eq!(change.account.as_deref(), Some("210987654321"));
        assert_eq!(change.celery_queue, None);
        assert!(change.subnets.is_empty());
        // A name without a status is as good: the status is read, not assumed.
        let change = read(include_str!(
            "../../../events/mwaa-status-without-status.json"
        ));
        assert_eq!((change.name.as_str(), change.status), ("dev", None));
    }

    #[test]
    fn bad_events_name_the_field_and_the_event() {
        let mut empty_status = sample(include_str!("../../../events/mwaa-status-pending.json"));
        empty_status["detail"]["status"] = Value::from(" ");
        let err = parse_status_change(&empty_status).unwrap_err().to_string();
        assert!(
            err.contains("detail.status") && err.contains("a2b5c3d4"),
            "{err}"
        );
        let cases = [
            (
                include_str!("../../../events/invalid/mwaa-status-without-name.json"),
                "mwaa-no-name-1",
                "detail.name",
            ),
            (
                include_str!("../../../events/invalid/mwaa-status-arn-without-name.json"),
                "mwaa-arn-without-name-1",
                "resources",
            ),
            (
                include_str!("../../../events/invalid/mwaa-status-wrong-source.json"),
                "mwaa-wrong-source-1",
                "source",
            ),
            (
                include_str!("../../../events/invalid/mwaa-status-subnets-not-a-list.json"),
                "mwaa-bad-subnets-1",
                "detail.networkConfiguration.subnetIds",
            ),
        ];
        for (json, id, field) in cases {
            let err = parse_status_change(&sample(json)).unwrap_err().to_string();
            assert!(err.contains(id) && err.contains(field), "{json}\n -> {err}");
        }
    }
}
