//! The decisions, without I/O: which runs an input asks for, and whether to start or hold.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use common::airflow::{AirflowMajor, DagRun};
use common::Availability;

use crate::event::{Arrival, ScheduleFiring};
use crate::routes::{Destination, Route};
use crate::run_id::{arrival_run_id, schedule_run_id};
use crate::workflows::{schedule_workflow_run, WorkflowRun, SCHEDULE_ROUTE};

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

/// The DAG runs an arrival starts: one per matching DAG route (workflow routes: see
/// workflows.rs; no route at all: logged and ignored).
pub fn arrival_targets(arrival: &Arrival, routes: &[Route]) -> Vec<Target> {
    let run_id = arrival_run_id(&arrival.bucket, &arrival.key, &arrival.identity());
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
                conf: Value::Object(arrival.conf(route)),
            }),
            Destination::Workflow { .. } => None,
        })
        .collect()
}

/// What a schedule firing starts: a DAG run in an environment, or an MWAA Serverless
/// workflow run.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledRun {
    Dag(Target),
    Workflow(WorkflowRun),
}

/// The run a schedule firing starts (the firing was checked when it was read), with the
/// firing's conf plus `scheduled_time`.
pub fn scheduled_run(event_id: &str, firing: &ScheduleFiring) -> ScheduledRun {
    let mut conf: Map<String, Value> = firing.conf.clone();
    conf.insert("scheduled_time".into(), Value::from(firing.time.clone()));
    match &firing.destination {
        Destination::Dag { environment, dag } => ScheduledRun::Dag(Target {
            environment: environment.to_string(),
            route: SCHEDULE_ROUTE.into(),
            event_id: event_id.to_owned(),
            dag_id: dag.clone(),
            run_id: schedule_run_id(environment, dag, &firing.time),
            conf: Value::Object(conf),
        }),
        Destination::Workflow { arn } => {
            ScheduledRun::Workflow(schedule_workflow_run(event_id, arn, &firing.time, conf))
        }
    }
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
    use common::Status;

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

    fn firing(json: serde_json::Value) -> ScheduleFiring {
        match parse_input(&json).unwrap() {
            crate::event::Input::Schedule(firing) => firing,
            other => panic!("not a firing: {other:?}"),
        }
    }

    const WORKFLOW: &str =
        "arn:aws:airflow-serverless:eu-west-1:123456789012:workflow/daily-report-A1b2C3d4E5";

    #[test]
    fn schedules_name_their_run_by_the_scheduled_time() {
        let time = "2026-11-21T06:00:00Z";
        let f = firing(serde_json::json!({"environment": "dev-a", "dag": "daily", "time": time}));
        let ScheduledRun::Dag(t) = scheduled_run("ev", &f) else {
            panic!("a DAG firing starts a DAG run")
        };
        let ScheduledRun::Dag(again) = scheduled_run("other-delivery", &f) else {
            panic!("a DAG firing starts a DAG run")
        };
        assert_eq!(t.run_id, again.run_id);
        assert_eq!(
            (t.environment.as_str(), t.dag_id.as_str(), t.route.as_str()),
            ("dev-a", "daily", "schedule")
        );
        assert_eq!(t.conf["scheduled_time"], time);
        // A bad environment name or DAG id cannot make a firing: parsing refuses it.
        for (bad, field) in [
            (
                serde_json::json!({"environment": "9x", "dag": "daily", "time": time}),
                "`environment`",
            ),
            (
                serde_json::json!({"environment": "dev-a", "dag": "not a dag", "time": time}),
                "`dag`",
            ),
        ] {
            let err = parse_input(&bad).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
        // `..` as a path segment would make `/dags/../dagRuns` reach another resource.
        for dots in [".", ".."] {
            let event = serde_json::json!({"id": "ev-7", "environment": "dev-a", "dag": dots,
                "time": time});
            let err = parse_input(&event).unwrap_err().to_string();
            assert!(
                err.contains("ev-7") && err.contains("`dag`") && err.contains("path segment"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_schedule_naming_a_workflow_starts_one_workflow_run_per_firing() {
        let json = serde_json::json!({"workflow_arn": WORKFLOW, "time": "2026-11-21T06:00:00Z",
            "conf": {"region": "eu", "note": null}});
        let run = |json: &serde_json::Value, event_id: &str| match scheduled_run(
            event_id,
            &firing(json.clone()),
        ) {
            ScheduledRun::Workflow(run) => run,
            other => panic!("a workflow firing started {other:?}"),
        };
        let first = run(&json, "(no id)");
        let redelivered = run(&json, "another-delivery");
        assert_eq!(
            first.client_token, redelivered.client_token,
            "a redelivery is the same run"
        );
        assert_eq!(
            (first.workflow_arn.as_str(), first.route.as_str()),
            (WORKFLOW, "schedule")
        );
        assert!(
            first.client_token.starts_with("schedule-"),
            "{}",
            first.client_token
        );
        assert_eq!(first.client_token.len(), 73);
        assert_eq!(first.parameters["region"], "eu");
        assert_eq!(first.parameters["scheduled_time"], "2026-11-21T06:00:00Z");
        assert!(
            !first.parameters.contains_key("note"),
            "no nulls in OverrideParameters"
        );

        let mut next = json.clone();
        next["time"] = "2026-11-22T06:00:00Z".into();
        assert_ne!(
            run(&next, "x").client_token,
            first.client_token,
            "the next firing is a new run"
        );
        let mut other_conf = json.clone();
        other_conf["conf"]["region"] = "us".into();
        assert_ne!(
            run(&other_conf, "x").client_token,
            first.client_token,
            "two schedules with other conf at the same time are two runs, not a ConflictException"
        );
    }

    #[test]
    fn a_schedule_names_exactly_one_destination_or_is_refused_naming_the_field() {
        let time = "2026-11-21T06:00:00Z";
        let cases = [
            (
                serde_json::json!({"workflow_arn": WORKFLOW, "environment": "dev-a", "dag": "d", "time": time}),
                "field `workflow_arn`: a schedule names either a workflow (workflow_arn) or an environment and a DAG, not both",
            ),
            (
                serde_json::json!({"workflow_arn": WORKFLOW, "dag": "d", "time": time}),
                "field `workflow_arn`: a schedule names either",
            ),
            (
                serde_json::json!({"time": time, "conf": {}}),
                "field `environment`: missing: give environment and dag, or workflow_arn",
            ),
            (
                serde_json::json!({"environment": "dev-a", "time": time}),
                "field `dag`: missing",
            ),
            (
                serde_json::json!({"workflow_arn": "arn:aws:airflow-serverless:eu-west-1:1:workflow/x", "time": time}),
                "field `workflow_arn`: \"arn:aws:airflow-serverless:eu-west-1:1:workflow/x\" is not an MWAA Serverless workflow ARN",
            ),
            (
                serde_json::json!({"workflow_arn": WORKFLOW, "time": " "}),
                "field `time`: empty",
            ),
            (
                serde_json::json!({"workflow": WORKFLOW, "time": time}),
                "field `workflow`: unknown field",
            ),
        ];
        for (json, expected) in cases {
            let err = parse_input(&json).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(expected) && text.contains("(no id)"),
                "{json}\n -> {text}"
            );
            assert_eq!(err.kind(), common::ErrorKind::InvalidInput, "{text}");
        }
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
