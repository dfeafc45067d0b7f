//! The decisions, without I/O: which runs an input asks for, and whether to start or hold.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use common::airflow::{AirflowMajor, DagRun};
use common::{Availability, Error};

use crate::event::{Arrival, ScheduleFiring};
use crate::routes::{Destination, Route};
use crate::run_id::{arrival_run_id, schedule_run_id};

/// One run to start in one environment, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub environment: String,
    pub route: String,
    pub event_id: String,
    pub dag_id: String,
    pub run_id: String,
    pub conf: Value,
}

impl Target {
    pub fn dag_run(&self) -> DagRun {
        DagRun {
            dag_id: self.dag_id.clone(),
            run_id: self.run_id.clone(),
            conf: self.conf.clone(),
        }
    }
}

/// What an arrival's run is derived from, so that a redelivery names the same run: S3 gives
/// a version id on versioned buckets and a sequencer on every write; a redelivery of the
/// same event keeps its event id.
pub fn arrival_identity(arrival: &Arrival) -> String {
    arrival
        .version_id
        .as_deref()
        .or(arrival.sequencer.as_deref())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("event:{}", arrival.event_id))
}

/// A route's static conf with the arrival's facts on top (the facts win).
pub fn arrival_conf(route: &Route, arrival: &Arrival) -> Map<String, Value> {
    let mut conf = route.conf.clone();
    let facts = [
        ("bucket", Value::from(arrival.bucket.clone())),
        ("key", Value::from(arrival.key.clone())),
        ("size", arrival.size.map(Value::from).unwrap_or(Value::Null)),
        ("etag", opt(&arrival.etag)),
        ("version_id", opt(&arrival.version_id)),
        ("sequencer", opt(&arrival.sequencer)),
        ("event_time", opt(&arrival.time)),
        ("event_id", Value::from(arrival.event_id.clone())),
    ];
    for (k, v) in facts {
        conf.insert(k.to_owned(), v);
    }
    conf
}

/// The DAG runs an arrival starts: one per matching DAG route (workflow routes: see
/// workflows.rs; no route at all: logged and ignored).
pub fn arrival_targets(arrival: &Arrival, routes: &[Route]) -> Vec<Target> {
    let run_id = arrival_run_id(&arrival.bucket, &arrival.key, &arrival_identity(arrival));
    routes
        .iter()
        .filter(|r| r.matches(&arrival.bucket, &arrival.key))
        .filter_map(|route| match &route.destination {
            Destination::Dag { environment, dag } => Some(Target {
                environment: environment.to_string(),
                route: route.name.clone(),
                event_id: arrival.event_id.clone(),
                dag_id: dag.clone(),
                run_id: run_id.clone(),
                conf: Value::Object(arrival_conf(route, arrival)),
            }),
            Destination::Workflow { .. } => None,
        })
        .collect()
}

fn opt(value: &Option<String>) -> Value {
    value.clone().map(Value::from).unwrap_or(Value::Null)
}

/// The run a schedule firing starts (its environment and DAG were checked when the firing
/// was parsed, the DAG like a route's).
pub fn schedule_target(event_id: &str, firing: &ScheduleFiring) -> Result<Target, Error> {
    if firing.time.trim().is_empty() {
        return Err(Error::InvalidEvent {
            event_id: event_id.to_owned(),
            field: "time".into(),
            reason: "empty: use <aws.scheduler.scheduled-time>".into(),
        });
    }
    let mut conf: Map<String, Value> = firing.conf.clone();
    conf.insert("scheduled_time".into(), Value::from(firing.time.clone()));
    Ok(Target {
        environment: firing.environment.to_string(),
        route: "schedule".into(),
        event_id: event_id.to_owned(),
        dag_id: firing.dag.clone(),
        run_id: schedule_run_id(&firing.environment, &firing.dag, &firing.time),
        conf: Value::Object(conf),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start(AirflowMajor),
    Hold { reason: String },
}

/// Start when the environment runs; otherwise hold the arrival for the replay after resume.
pub fn decide(availability: &Availability) -> Action {
    match availability {
        Availability::Available(major) => Action::Start(*major),
        Availability::NotAvailable(status) => Action::Hold {
            reason: format!("environment is {status}"),
        },
        Availability::Missing => Action::Hold {
            reason: "environment does not exist (paused?)".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_input;
    use crate::routes::parse_routes;
    use common::{EnvironmentName, Status};

    fn arrival(key: &str, version: Option<&str>, sequencer: Option<&str>) -> Arrival {
        Arrival {
            event_id: "ev-1".into(),
            time: Some("2026-11-21T06:00:00+00:00".into()),
            bucket: "landing".into(),
            key: key.into(),
            size: Some(42),
            etag: Some("e1".into()),
            version_id: version.map(Into::into),
            sequencer: sequencer.map(Into::into),
        }
    }

    fn routes() -> Vec<Route> {
        parse_routes(
            r#"[{"name":"orders","bucket":"landing","prefix":"orders/","environment":"dev-a","dag":"ingest","conf":{"team":"sales","key":"static"}},
                {"bucket":"landing","suffix":".csv","environment":"dev-b","dag":"audit"},
                {"bucket":"other","environment":"dev-a","dag":"ingest"}]"#,
        )
        .unwrap()
    }

    #[test]
    fn an_arrival_starts_one_run_per_matching_route_with_its_facts_in_conf() {
        let targets = arrival_targets(&arrival("orders/x.csv", None, Some("0A1")), &routes());
        assert_eq!(targets.len(), 2);
        let t = &targets[0];
        assert_eq!(
            (t.environment.as_str(), t.dag_id.as_str(), t.route.as_str()),
            ("dev-a", "ingest", "orders")
        );
        assert_eq!(t.conf["team"], "sales");
        assert_eq!(
            t.conf["key"], "orders/x.csv",
            "the arrival's facts win over static conf"
        );
        assert_eq!(t.conf["size"], 42);
        assert_eq!(t.conf["sequencer"], "0A1");
        assert_eq!(t.conf["version_id"], Value::Null);
        assert_eq!(t.conf["event_id"], "ev-1");
        assert_eq!(targets[1].environment, "dev-b");
    }

    #[test]
    fn no_matching_route_means_no_run() {
        assert!(arrival_targets(&arrival("logs/x.json", None, Some("1")), &routes()).is_empty());
    }

    #[test]
    fn the_version_id_decides_the_run_id_over_the_sequencer() {
        let a = arrival_targets(&arrival("orders/x.csv", Some("v1"), Some("s1")), &routes());
        let b = arrival_targets(&arrival("orders/x.csv", Some("v1"), Some("s2")), &routes());
        let c = arrival_targets(&arrival("orders/x.csv", Some("v2"), Some("s1")), &routes());
        assert_eq!(a[0].run_id, b[0].run_id);
        assert_ne!(a[0].run_id, c[0].run_id);
    }

    #[test]
    fn schedules_name_their_run_by_the_scheduled_time() {
        let firing = ScheduleFiring {
            environment: EnvironmentName::new("dev-a").unwrap(),
            dag: "daily".into(),
            time: "2026-11-21T06:00:00Z".into(),
            conf: Map::new(),
        };
        let t = schedule_target("ev", &firing).unwrap();
        assert_eq!(
            t.run_id,
            schedule_target("other-delivery", &firing).unwrap().run_id
        );
        assert_eq!(t.conf["scheduled_time"], "2026-11-21T06:00:00Z");
        let bad = serde_json::json!({"id": "ev-9", "environment": "dev-a", "dag": "not a dag",
            "time": firing.time});
        let err = parse_input(&bad).unwrap_err().to_string();
        assert!(err.contains("ev-9") && err.contains("`dag`"), "{err}");
        // `..` as a path segment would make `/dags/../dagRuns` reach another resource.
        for dots in [".", ".."] {
            let event = serde_json::json!({"id": "ev-7", "environment": "dev-a", "dag": dots,
                "time": firing.time});
            let err = parse_input(&event).unwrap_err().to_string();
            assert!(
                err.contains("ev-7") && err.contains("`dag`") && err.contains("path segment"),
                "{err}"
            );
        }
        // A bad environment name cannot make a firing: parsing refuses it, naming the field.
        let bad = serde_json::json!({"environment": "9x", "dag": "daily", "time": firing.time});
        let err = parse_input(&bad).unwrap_err();
        assert!(err.to_string().contains("`environment`"), "{err}");
    }

    #[test]
    fn only_an_available_environment_runs_anything() {
        assert_eq!(
            decide(&Availability::Available(AirflowMajor::V3)),
            Action::Start(AirflowMajor::V3)
        );
        assert!(matches!(
            decide(&Availability::NotAvailable(Status::Updating)),
            Action::Hold { .. }
        ));
        assert!(matches!(
            decide(&Availability::Missing),
            Action::Hold { .. }
        ));
    }
}
