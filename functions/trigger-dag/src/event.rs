//! What trigger-dag is given: an S3 arrival (via EventBridge), a schedule firing
//! (EventBridge Scheduler input) or a replay request (from the resume workflow).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::{Map, Value};

use common::event::{event_id, nested, parse};
use common::{EnvironmentName, Error};

use crate::routes::{destination, Destination, Route};

/// `detail` of S3's "Object Created" event on EventBridge (keys are not URL-encoded here).
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectCreated {
    pub bucket: Bucket,
    pub object: Object,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Bucket {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Object {
    pub key: String,
    pub size: Option<u64>,
    // AWS sends `etag`; moto (the bed) sends `eTag`. Reading both costs nothing.
    #[serde(alias = "eTag")]
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

/// One object that arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub event_id: String,
    pub time: Option<String>,
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
}

impl Arrival {
    /// What an arrival's run is derived from, so that a redelivery names the same run: S3 gives
    /// a version id on versioned buckets and a sequencer on every write; a redelivery of the
    /// same event keeps its event id.
    pub fn identity(&self) -> String {
        self.version_id
            .as_deref()
            .or(self.sequencer.as_deref())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("event:{}", self.event_id))
    }

    /// A route's static conf with the arrival's facts on top (the facts win).
    pub fn conf(&self, route: &Route) -> Map<String, Value> {
        let mut conf = route.conf.clone();
        let facts = [
            ("bucket", Value::from(self.bucket.clone())),
            ("key", Value::from(self.key.clone())),
            ("size", self.size.map(Value::from).unwrap_or(Value::Null)),
            ("etag", opt(&self.etag)),
            ("version_id", opt(&self.version_id)),
            ("sequencer", opt(&self.sequencer)),
            ("event_time", opt(&self.time)),
            ("event_id", Value::from(self.event_id.clone())),
        ];
        for (k, v) in facts {
            conf.insert(k.to_owned(), v);
        }
        conf
    }
}

fn opt(value: &Option<String>) -> Value {
    value.clone().map(Value::from).unwrap_or(Value::Null)
}

/// The input of an EventBridge Scheduler schedule, as users write it: a DAG (environment +
/// dag) or an MWAA Serverless workflow (workflow_arn) to run at `time`, which should be
/// `<aws.scheduler.scheduled-time>` so a retried invocation names the same run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiringSpec {
    /// Read by `event_id` already: a schedule's input may carry one (e.g.
    /// `<aws.scheduler.execution-id>`) so that its errors name the firing.
    #[serde(default, rename = "id")]
    _id: Option<String>,
    environment: Option<EnvironmentName>,
    dag: Option<String>,
    workflow_arn: Option<String>,
    time: String,
    #[serde(default)]
    conf: Map<String, Value>,
}

/// A checked schedule firing: what it runs, and when it was scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFiring {
    pub destination: Destination,
    pub time: String,
    pub conf: Map<String, Value>,
}

/// `{"replay": {"environment": "..."}}`: start the runs held for that environment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    pub environment: EnvironmentName,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Arrival(Arrival),
    Schedule(ScheduleFiring),
    Replay(Replay),
}

/// Tells the three inputs apart by their shape; anything else is a clear error.
pub fn parse_input(event: &Value) -> Result<Input, Error> {
    let id = event_id(event);
    if let Some(replay) = event.get("replay") {
        return parse(&id, replay)
            .map(Input::Replay)
            .map_err(|e| nested("replay", e));
    }
    if event.get("detail-type").is_none() {
        return parse_firing(&id, event).map(Input::Schedule);
    }
    let envelope: EventBridgeEvent<Value> = parse(&id, event)?;
    if envelope.source != "aws.s3" || envelope.detail_type != "Object Created" {
        return Err(Error::invalid_event(
            &id,
            "detail-type",
            format!(
                "expected an aws.s3 \"Object Created\" event, got {} {:?}",
                envelope.source, envelope.detail_type
            ),
        ));
    }
    let detail: ObjectCreated = parse(&id, &envelope.detail).map_err(|e| nested("detail", e))?;
    if detail.object.key.is_empty() {
        return Err(Error::invalid_event(&id, "detail.object.key", "empty key"));
    }
    Ok(Input::Arrival(Arrival {
        event_id: id,
        time: envelope.time.map(|t| t.to_rfc3339()),
        bucket: detail.bucket.name,
        key: detail.object.key,
        size: detail.object.size,
        etag: detail.object.etag,
        version_id: detail.object.version_id,
        sequencer: detail.object.sequencer,
    }))
}

/// A firing names exactly one destination, as a route does, and a scheduled time; checked
/// once here so a bad schedule is refused naming the field before anything is started.
fn parse_firing(id: &str, event: &Value) -> Result<ScheduleFiring, Error> {
    let spec: FiringSpec = parse(id, event)?;
    let bad = |field: &str, reason: String| Error::invalid_event(id, field, reason);
    let destination = destination(
        "a schedule",
        spec.environment.as_ref(),
        spec.dag.as_deref(),
        spec.workflow_arn.as_deref(),
    )
    .map_err(|(field, reason)| bad(field, reason))?;
    if spec.time.trim().is_empty() {
        return Err(bad(
            "time",
            "empty: use <aws.scheduler.scheduled-time>".into(),
        ));
    }
    Ok(ScheduleFiring {
        destination,
        time: spec.time,
        conf: spec.conf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_s3_arrival_is_read_with_every_fact() {
        let event = sample(include_str!("../../../events/s3-object-created.json"));
        let Input::Arrival(a) = parse_input(&event).unwrap() else {
            panic!("not an arrival")
        };
        assert_eq!(a.event_id, "17793124-05d4-b198-2fde-7ededc63b103");
        assert_eq!(a.bucket, "landing-zone");
        assert_eq!(
            a.key, "orders/2026-11-21/orders eu+1%.csv",
            "keys are not URL-decoded twice"
        );
        assert_eq!(a.size, Some(5242880));
        assert_eq!(
            a.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(a.sequencer.as_deref(), Some("00617F08299329D189"));
        assert_eq!(a.time.as_deref(), Some("2026-11-21T06:02:11+00:00"));
    }

    #[test]
    fn schedule_firings_and_replays_are_told_apart() {
        let firing = parse_input(&sample(include_str!(
            "../../../events/schedule-firing.json"
        )))
        .unwrap();
        assert!(
            matches!(firing, Input::Schedule(ref f) if f.destination == Destination::Dag {
                environment: EnvironmentName::new("dev-analytics").unwrap(),
                dag: "daily_report".into()
            } && f.conf["region"] == "eu")
        );
        let workflow = parse_input(&sample(include_str!(
            "../../../events/schedule-firing-workflow.json"
        )))
        .unwrap();
        assert!(
            matches!(workflow, Input::Schedule(ref f) if matches!(f.destination, Destination::Workflow { ref arn } if arn.ends_with("dev-daily-report-A1b2C3d4E5")))
        );
        let replay = parse_input(&sample(include_str!(
            "../../../events/replay-held-arrivals.json"
        )))
        .unwrap();
        assert_eq!(
            replay,
            Input::Replay(Replay {
                environment: EnvironmentName::new("dev-analytics").unwrap()
            })
        );
    }

    #[test]
    fn bad_events_name_the_field_and_the_event() {
        let cases = [
            (
                include_str!("../../../events/invalid/s3-size-not-a-number.json"),
                "bad-size-1",
                "detail.object.size",
            ),
            (
                include_str!("../../../events/invalid/s3-missing-key.json"),
                "no-key-1",
                "detail.object",
            ),
            (
                include_str!("../../../events/invalid/wrong-detail-type.json"),
                "wrong-type-1",
                "detail-type",
            ),
            (
                include_str!("../../../events/invalid/schedule-without-time.json"),
                "(no id)",
                "missing field `time`",
            ),
            (
                include_str!("../../../events/invalid/schedule-workflow-and-dag.json"),
                "(no id)",
                "field `workflow_arn`",
            ),
            (
                include_str!("../../../events/invalid/replay-without-environment.json"),
                "(no id)",
                "replay",
            ),
        ];
        for (json, id, field) in cases {
            let err = parse_input(&sample(json)).unwrap_err().to_string();
            assert!(err.contains(id) && err.contains(field), "{json}\n -> {err}");
        }
    }

    #[test]
    fn a_bad_environment_name_is_refused_once_naming_the_field() {
        let cases = [
            (
                r#"{"id": "ev-3", "replay": {"environment": "dev/x"}}"#,
                "field `replay.environment`",
            ),
            (
                r#"{"id": "ev-4", "environment": "9x", "dag": "d", "time": "t"}"#,
                "field `environment`",
            ),
        ];
        for (json, field) in cases {
            let err = parse_input(&sample(json)).unwrap_err().to_string();
            assert!(
                err.contains(field) && err.contains("is not an MWAA environment name"),
                "{json}\n -> {err}"
            );
        }
    }
}
