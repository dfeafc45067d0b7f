//! What reaches notify, parsed into the failures it reports.
//!
//! Four doors: EventBridge rules (Step Functions executions, MWAA status changes, the suite's
//! own DAG-side failures and rejected routes files), the failed-events queue (Lambda on-failure records and rule
//! dead letters), and the one-time schedule that re-checks a PENDING environment.

use aws_lambda_events::sqs::SqsMessage;
use common::environment::{MWAA_SOURCE, MWAA_STATUS_CHANGE, SUITE_SOURCE};
use common::event::{event_id, nested, parse};
use common::{Error, Status};
use serde::Deserialize;
use serde_json::Value;

/// Source and detail-type of Step Functions' execution status changes.
pub const STATES_SOURCE: &str = "aws.states";
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// Detail types the suite itself puts on the bus for DAG-side failures.
pub const SUITE_FAILURES: [&str; 2] = ["Metadata Export Failed", "Metadata Import Failed"];
/// Detail type trigger-dag puts on the bus when a routes file (or route) is not used.
pub const ROUTES_REJECTED: &str = "Routes Rejected";

/// One invocation's input.
#[derive(Debug)]
pub enum Input {
    /// A batch from the failed-events queue; each message is reported on its own.
    Queue(Vec<SqsMessage>),
    One(Failure),
}

/// A thing that went wrong (or may have: a PENDING environment to re-check later).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A Step Functions execution ended FAILED, TIMED_OUT or ABORTED.
    Execution(ExecutionEnded),
    /// An MWAA environment changed status (failing statuses, or PENDING to watch).
    Environment(EnvironmentStatus),
    /// The export or import DAG failed outside a state machine.
    Suite {
        event_id: String,
        detail_type: String,
        detail: Value,
    },
    /// trigger-dag did not use a routes file, or some routes of it (`detail` names the file,
    /// the route, the field and what is used instead).
    RoutesRejected { event_id: String, detail: Value },
    /// A function gave up on an event after its retries (Lambda on-failure destination).
    Function(FunctionFailed),
    /// An EventBridge rule could not deliver an event to its target (rule dead letter).
    Undelivered(Undelivered),
    /// The schedule set when the environment went PENDING has fired.
    PendingCheck { environment: String, since: String },
    /// Anything else: reported as an unknown kind, never dropped.
    Unknown {
        event_id: String,
        kind: String,
        payload: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEnded {
    #[serde(skip)]
    pub event_id: String,
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: Option<String>,
    pub status: String,
    /// Milliseconds since the epoch.
    pub start_date: Option<i64>,
    pub stop_date: Option<i64>,
    /// The execution input, a JSON document as a string (absent when too large).
    pub input: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// An MWAA status change. AWS documents the event by source and detail-type alone, best
/// effort, with no detail field: the name is `detail.name` if present, else the environment
/// ARN in `resources`; the status is `detail.status` if present, else `None` and notify
/// reads it from GetEnvironment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentStatus {
    pub event_id: String,
    pub time: String,
    pub name: String,
    pub status: Option<Status>,
}

fn environment_status(event: &Value) -> Result<EnvironmentStatus, Error> {
    let change = common::status_change::parse_status_change(event)?;
    Ok(EnvironmentStatus {
        event_id: change.event_id,
        time: change.time.unwrap_or_default(),
        name: change.name.into(),
        status: change.status,
    })
}

/// Lambda's on-failure destination record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionFailed {
    pub timestamp: Option<String>,
    pub request_context: RequestContext,
    #[serde(default)]
    pub request_payload: Value,
    pub response_payload: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: String,
    pub function_arn: String,
    pub condition: Option<String>,
    pub approximate_invoke_count: Option<u32>,
}

/// An event a rule gave up on; EventBridge says why in the message attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    pub message_id: String,
    pub event: Value,
    pub rule_arn: Option<String>,
    pub target_arn: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Reads one invocation's payload.
pub fn parse_input(event: &Value) -> Result<Input, Error> {
    if event.get("Records").is_some() {
        let batch: aws_lambda_events::sqs::SqsEvent = parse(&event_id(event), event)?;
        return Ok(Input::Queue(batch.records));
    }
    parse_failure(event).map(Input::One)
}

/// Reads one failure from an EventBridge event or a direct invocation. Kinds notify does
/// not know become [`Failure::Unknown`]; known kinds with wrong fields are errors.
pub fn parse_failure(event: &Value) -> Result<Failure, Error> {
    let id = event_id(event);
    if !event.is_object() {
        return Err(Error::invalid_event(
            &id,
            "(event)",
            format!("expected a JSON object, got {}", kind_of(event)),
        ));
    }
    if let Some(check) = event.get("check_pending") {
        #[derive(Deserialize)]
        struct Check {
            environment: String,
            since: String,
        }
        let check: Check = parse(&id, check).map_err(|e| nested("check_pending", e))?;
        return Ok(Failure::PendingCheck {
            environment: check.environment,
            since: check.since,
        });
    }
    if event.get("requestContext").is_some() && event.get("requestPayload").is_some() {
        return Ok(Failure::Function(parse(&id, event)?));
    }
    let source = event.get("source").and_then(Value::as_str).unwrap_or("");
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let detail = || {
        event
            .get("detail")
            .ok_or_else(|| Error::invalid_event(&event_id(event), "detail", "missing"))
    };
    match (source, detail_type) {
        (STATES_SOURCE, EXECUTION_STATUS_CHANGE) => {
            let mut ended: ExecutionEnded =
                parse(&id, detail()?).map_err(|e| nested("detail", e))?;
            ended.event_id = id;
            Ok(Failure::Execution(ended))
        }
        (MWAA_SOURCE, MWAA_STATUS_CHANGE) => environment_status(event).map(Failure::Environment),
        (SUITE_SOURCE, ROUTES_REJECTED) => Ok(Failure::RoutesRejected {
            event_id: id,
            detail: detail()?.clone(),
        }),
        (SUITE_SOURCE, t) if SUITE_FAILURES.contains(&t) => Ok(Failure::Suite {
            event_id: id,
            detail_type: t.to_owned(),
            detail: detail()?.clone(),
        }),
        _ => Ok(Failure::Unknown {
            event_id: id,
            kind: if source.is_empty() && detail_type.is_empty() {
                "(no source or detail-type)".into()
            } else {
                format!("{source} / {detail_type}")
            },
            payload: event.clone(),
        }),
    }
}

/// Reads a message of the failed-events queue. Whatever it holds is reported: a body that
/// is not even JSON becomes an unknown kind carrying the text, since the queue is the
/// last stop and nothing may fall off it.
pub fn parse_message(message: &SqsMessage) -> Failure {
    let message_id = message.message_id.clone().unwrap_or_default();
    let body = message.body.as_deref().unwrap_or("");
    let attribute = |name: &str| {
        message
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.clone())
    };
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Failure::Unknown {
            event_id: message_id,
            kind: "failed-events message that is not JSON".into(),
            payload: Value::String(body.to_owned()),
        };
    };
    // EventBridge marks its dead letters with these attributes; the body is the event.
    if attribute("RULE_ARN").is_some() || attribute("ERROR_CODE").is_some() {
        return Failure::Undelivered(Undelivered {
            message_id,
            event: value,
            rule_arn: attribute("RULE_ARN"),
            target_arn: attribute("TARGET_ARN"),
            error_code: attribute("ERROR_CODE"),
            error_message: attribute("ERROR_MESSAGE"),
        });
    }
    parse_failure(&value).unwrap_or_else(|err| Failure::Unknown {
        event_id: message_id,
        kind: format!("unreadable event ({err})"),
        payload: value,
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).expect("sample event is JSON")
    }

    #[test]
    fn each_sample_event_is_read_as_its_kind() {
        let execution = sample(include_str!("../../../events/sfn-execution-failed.json"));
        let Failure::Execution(ended) = parse_failure(&execution).unwrap() else {
            panic!("not an execution")
        };
        assert_eq!(ended.status, "FAILED");
        assert_eq!(ended.event_id, "c3e9a6b1-2f4d-4e8a-9b1c-5d7f9a1b3c5e");
        let status = sample(include_str!(
            "../../../events/mwaa-status-create-failed.json"
        ));
        assert!(matches!(parse_failure(&status).unwrap(),
            Failure::Environment(s) if s.status == Some(Status::CreateFailed) && s.name == "dev-analytics"));
        let sparse = sample(include_str!("../../../events/mwaa-status-sparse.json"));
        assert_eq!(
            parse_failure(&sparse).unwrap(),
            Failure::Environment(EnvironmentStatus {
                event_id: "b3c6d4e5-9a2f-4d7b-8e3c-2f4a6b8c0d1e".into(),
                time: "2026-11-21T07:14:05Z".into(),
                name: "analytics-shared".into(),
                status: None,
            }),
            "the name from the resource ARN, the status left to GetEnvironment"
        );
        let record = sample(include_str!(
            "../../../events/lambda-destination-failure.json"
        ));
        assert!(matches!(parse_failure(&record).unwrap(),
            Failure::Function(f) if f.request_context.function_arn.contains("trigger-dag")));
        let dag = sample(include_str!("../../../events/metadata-export-failed.json"));
        assert!(matches!(
            parse_failure(&dag).unwrap(),
            Failure::Suite { .. }
        ));
        let routes = sample(include_str!("../../../events/routes-rejected.json"));
        assert!(matches!(parse_failure(&routes).unwrap(),
            Failure::RoutesRejected { detail, .. } if detail["key"] == "routes/sales.json"));
        let check = sample(include_str!("../../../events/pending-check.json"));
        assert!(matches!(parse_failure(&check).unwrap(),
            Failure::PendingCheck { environment, .. } if environment == "analytics-shared"));
    }

    #[test]
    fn an_event_of_another_kind_is_unknown_not_an_error() {
        let s3 = sample(include_str!("../../../events/s3-object-created.json"));
        let Failure::Unknown { kind, .. } = parse_failure(&s3).unwrap() else {
            panic!("should be unknown")
        };
        assert_eq!(kind, "aws.s3 / Object Created");
    }

    #[test]
    fn a_known_kind_with_a_wrong_field_names_the_field_and_the_event() {
        let bad = sample(include_str!(
            "../../../events/invalid/sfn-execution-without-arn.json"
        ));
        let err = parse_failure(&bad).unwrap_err().to_string();
        assert!(err.contains("detail"), "{err}");
        assert!(err.contains("executionArn"), "{err}");
        assert!(
            err.contains("5b1d7f3a-0c2e-4a6b-8d0f-2a4c6e8a0b2d"),
            "{err}"
        );
        let err = parse_failure(&json!([1, 2])).unwrap_err().to_string();
        assert!(err.contains("an array"), "{err}");
        let err = parse_failure(&json!({"check_pending": {"environment": 3}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("check_pending.environment"), "{err}");
    }

    #[test]
    fn queue_messages_are_dead_letters_destination_records_or_unknown() {
        let batch = sample(include_str!("../../../events/sqs-failed-events.json"));
        let Input::Queue(messages) = parse_input(&batch).unwrap() else {
            panic!("not a batch")
        };
        let failures: Vec<Failure> = messages.iter().map(parse_message).collect();
        assert!(matches!(&failures[0], Failure::Function(_)));
        assert!(matches!(&failures[1],
            Failure::Undelivered(u) if u.error_code.as_deref() == Some("SDK_CLIENT_ERROR")));
        assert!(
            matches!(&failures[2], Failure::Unknown { payload: Value::String(s), .. } if s.starts_with("{\"trunc"))
        );
    }
}
