//! What must hold for any input a function can be handed, as checks over raw bytes: the
//! fuzz targets (`fuzz/`, run on demand by `scripts/fuzz`) call these, and
//! `tests/tests/properties.rs` runs them in CI over the sample events and their mutations.
//!
//! A check returns whether the input was accepted (false: refused with a clear error, or not
//! JSON) and panics when a property is broken — a panic is what the fuzzer reports.

use serde_json::{json, Value};
use trigger_dag::routes::{is_workflow_arn, Destination};

/// SNS refuses messages over 256 KiB.
const SNS_MAX_MESSAGE: usize = 256 * 1024;
/// A queue every endpoint-policy check adds (its name varies with the input).
const QUEUE_PREFIX: &str = "arn:aws:sqs:us-east-1:123456789012:airflow-celery-";

fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// A refusal names the event it refuses, when the event has an id. Returns false (refused).
fn names_the_event(event: &Value, error: &str) -> bool {
    let id = common::event::event_id(event);
    if id != "(no id)" {
        assert!(
            error.contains(&id),
            "the error does not name event {id:?}: {error}"
        );
    }
    false
}

/// Airflow's run id rules (250 characters, `[A-Za-z0-9_.~:+-]`), and ours: stable.
fn check_run_id(run_id: &str, again: &str) {
    assert!(!run_id.is_empty() && run_id.len() <= 250, "{run_id:?}");
    assert!(
        run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-~:+".contains(c)),
        "{run_id:?} breaks Airflow's run id pattern"
    );
    assert_eq!(run_id, again, "the same input gave two run ids");
}

/// trigger-dag's input: an arrival, a schedule firing or a replay request.
pub fn trigger_dag_input(data: &[u8]) -> bool {
    use trigger_dag::event::{parse_input, Input};
    let Some(event) = json(data) else {
        return false;
    };
    let input = match parse_input(&event) {
        Ok(input) => input,
        Err(e) => return names_the_event(&event, &e.to_string()),
    };
    match input {
        Input::Arrival(arrival) => {
            let identity = arrival.version_id.clone().unwrap_or_default();
            check_run_id(
                &trigger_dag::run_id::arrival_run_id(&arrival.bucket, &arrival.key, &identity),
                &trigger_dag::run_id::arrival_run_id(&arrival.bucket, &arrival.key, &identity),
            );
            let routes = json!([{"bucket": arrival.bucket, "environment": "dev", "dag": "load"}]);
            let Ok(routes) = trigger_dag::routes::parse_routes(&routes.to_string()) else {
                return true;
            };
            let targets = trigger_dag::decide::arrival_targets(&arrival, &routes);
            assert_eq!(targets.len(), 1, "a catch-all route did not match");
            let again = trigger_dag::decide::arrival_targets(&arrival, &routes);
            check_run_id(&targets[0].run_id, &again[0].run_id);
            assert_eq!(targets[0].conf["key"], arrival.key.as_str());
            assert_eq!(targets[0].conf["bucket"], arrival.bucket.as_str());
        }
        Input::Schedule(firing) => {
            use trigger_dag::decide::{scheduled_run, ScheduledRun};
            let id = common::event::event_id(&event);
            match (scheduled_run(&id, &firing), scheduled_run("again", &firing)) {
                (ScheduledRun::Dag(target), ScheduledRun::Dag(again)) => {
                    check_run_id(&target.run_id, &again.run_id)
                }
                (ScheduledRun::Workflow(run), ScheduledRun::Workflow(again)) => {
                    assert_eq!(
                        run.client_token, again.client_token,
                        "a redelivery, another run"
                    );
                    assert!((1..=128).contains(&run.client_token.len()));
                }
                (a, b) => panic!("one firing, two kinds of run: {a:?} / {b:?}"),
            }
        }
        Input::Replay(replay) => assert!(
            common::environment::is_valid_name(&replay.environment),
            "a replay for {:?}",
            replay.environment
        ),
    }
    true
}

/// trigger-dag's routes document (ROUTES / the routes object), read once per cold start.
pub fn routes_document(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    match trigger_dag::routes::parse_routes(&text) {
        Ok(routes) => {
            for route in &routes {
                assert!(!route.name.is_empty(), "a route without a name");
                match &route.destination {
                    Destination::Dag { environment, .. } => {
                        assert!(common::environment::is_valid_name(environment))
                    }
                    Destination::Workflow { arn } => assert!(is_workflow_arn(arn)),
                }
                // Matching never panics, whatever the key (globs, unicode, 2 KiB).
                for key in ["", "/", "a/b/c.csv", &"☃/".repeat(700)] {
                    let _ = route.matches(&route.bucket, key);
                }
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().starts_with("configuration: "), "{e}");
            false
        }
    }
}

/// provision-endpoints' input: an MWAA status change.
pub fn environment_status_event(data: &[u8]) -> bool {
    let Some(event) = json(data) else {
        return false;
    };
    match provision_endpoints::event::parse_status_change(&event) {
        Ok(change) => {
            assert!(
                common::environment::is_valid_name(&change.name),
                "an environment named {:?}",
                change.name
            );
            if let Some(status) = &change.status {
                let _ = provision_endpoints::decide::step(status);
            }
            let _ = provision_endpoints::decide::not_ours(&change, "dev-");
            true
        }
        Err(e) => names_the_event(&event, &e.to_string()),
    }
}

/// Widening an SQS endpoint policy by one queue: an Allow statement lists the queue
/// afterwards, a second widening changes nothing, and narrowing gives back exactly the Allow
/// resources there were. Input: queue-name bytes, a zero byte, the policy.
pub fn endpoint_policy(data: &[u8]) -> bool {
    use provision_endpoints::decide::{allow_queue, disallow_queue, PolicyChange};
    let Some(split) = data.iter().position(|b| *b == 0) else {
        return false;
    };
    let (name, policy) = (&data[..split], &data[split + 1..]);
    let queue = format!("{QUEUE_PREFIX}{}", String::from_utf8_lossy(name));
    if !provision_endpoints::decide::valid_queue_arn(&queue) {
        return false;
    }
    let policy = String::from_utf8_lossy(policy);
    let Ok(PolicyChange::Changed(widened)) = allow_queue(&policy, &queue) else {
        return false;
    };
    let listed = Value::from(queue.as_str());
    let widened_resources = allow_resources(&widened);
    assert!(
        widened_resources.iter().any(|r| r.contains(&listed)),
        "no Allow statement lists the queue: {widened}"
    );
    assert!(
        matches!(
            allow_queue(&widened, &queue),
            Ok(PolicyChange::Unchanged(_))
        ),
        "widening twice changed the policy twice"
    );
    match disallow_queue(&widened, &queue).expect("narrowing a policy we widened") {
        PolicyChange::Changed(narrowed) => assert_eq!(
            allow_resources(&narrowed),
            allow_resources(&policy),
            "narrowing did not give back the Allow resources there were"
        ),
        // A statement whose only resource the queue is keeps it (an empty Resource is
        // invalid): only when widening filled an empty list.
        PolicyChange::Unchanged(_) => assert!(
            widened_resources.contains(&vec![listed]),
            "narrowing left the queue in: {widened}"
        ),
    }
    true
}

/// The Resource of each Allow statement, as a list (a single string is a list of one).
fn allow_resources(policy: &str) -> Vec<Vec<Value>> {
    let policy: Value = serde_json::from_str(policy).expect("a policy we changed is JSON");
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| match &s["Resource"] {
            Value::Array(list) => list.clone(),
            Value::Null => vec![],
            one => vec![one.clone()],
        })
        .collect()
}

/// notify's input, through the decision to the message SNS is given: the subject is one
/// printable ASCII line of at most 100 characters, the body fits SNS, attributes are set.
pub fn notify_input(data: &[u8]) -> bool {
    use notify::decide::{decide, Facts, Plan, Settings};
    use notify::event::{parse_input, parse_message, Input};
    let Some(event) = json(data) else {
        return false;
    };
    let failures = match parse_input(&event) {
        Ok(Input::One(failure)) => vec![failure],
        Ok(Input::Queue(records)) => records.iter().map(parse_message).collect(),
        Err(e) => return names_the_event(&event, &e.to_string()),
    };
    let settings = Settings {
        region: "us-east-1".into(),
        pending_minutes: 30,
        environment_prefix: "dev-".into(),
    };
    for failure in failures {
        let Plan::Send(alert) = decide(&failure, &Facts::default(), &settings) else {
            continue;
        };
        let subject = alert.subject();
        assert!(!subject.is_empty() && subject.len() <= 100, "{subject:?}");
        assert!(
            subject.chars().all(|c| (' '..='~').contains(&c)),
            "{subject:?}"
        );
        let body = alert.body();
        assert!(
            body.len() <= SNS_MAX_MESSAGE,
            "a body of {} bytes",
            body.len()
        );
        for (name, value) in alert.attributes() {
            assert!(!value.is_empty(), "attribute {name} is empty");
        }
    }
    true
}

/// The input of a pause/resume step: `{"environment": ...}` with a name MWAA accepts.
pub fn step_input(data: &[u8]) -> bool {
    let Some(event) = json(data) else {
        return false;
    };
    match pause_resume::parse_environment(&event) {
        Ok(name) => {
            assert!(common::environment::is_valid_name(&name), "{name:?}");
            true
        }
        Err(e) => {
            assert!(e.to_string().contains("field `"), "names no field: {e}");
            false
        }
    }
}

/// A check: raw input in, whether it was accepted out; a broken property panics.
pub type Check = fn(&[u8]) -> bool;

/// Every check, by the name of its fuzz target.
pub const CHECKS: [(&str, Check); 6] = [
    ("trigger_dag_input", trigger_dag_input),
    ("routes_document", routes_document),
    ("environment_status_event", environment_status_event),
    ("endpoint_policy", endpoint_policy),
    ("notify_input", notify_input),
    ("step_input", step_input),
];
