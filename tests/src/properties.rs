//! What must hold for any input a function can be handed, as checks over raw bytes: the
//! fuzz targets (`fuzz/`, run on demand by `scripts/fuzz`) call these, and
//! `tests/tests/properties.rs` runs them in CI over the sample events and their mutations.
//!
//! A check returns whether the input was accepted (false: refused with a clear error, or not
//! JSON) and panics when a property is broken — a panic is what the fuzzer reports.

use serde_json::{json, Value};

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
            let id = common::event::event_id(&event);
            if let Ok(target) = trigger_dag::decide::schedule_target(&id, &firing) {
                let again = trigger_dag::decide::schedule_target(&id, &firing).unwrap();
                check_run_id(&target.run_id, &again.run_id);
            }
        }
        Input::Replay(replay) => assert!(
            common::airflow::valid_environment_name(&replay.environment),
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
                assert!(common::airflow::valid_environment_name(&route.environment));
                let other = format!("{}-other", route.bucket);
                assert!(
                    !route.matches(&other, "any/key"),
                    "a route matched another bucket"
                );
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
                common::airflow::valid_environment_name(&change.name),
                "an environment named {:?}",
                change.name
            );
            let _ = provision_endpoints::decide::step(&change);
            true
        }
        Err(e) => names_the_event(&event, &e.to_string()),
    }
}

/// Widening an SQS endpoint policy by one queue: the queue is allowed afterwards, a second
/// widening changes nothing, and narrowing it again works. Input: queue-name bytes, a zero
/// byte, the policy.
pub fn endpoint_policy(data: &[u8]) -> bool {
    use provision_endpoints::decide::{allow_queue, disallow_queue, PolicyChange};
    let split = data.iter().position(|b| *b == 0).unwrap_or(0);
    let (name, policy) = (&data[..split], &data[(split + 1).min(data.len())..]);
    let queue = format!("{QUEUE_PREFIX}{}", String::from_utf8_lossy(name));
    if !provision_endpoints::decide::valid_queue_arn(&queue) {
        return false;
    }
    let policy = String::from_utf8_lossy(policy);
    let Ok(PolicyChange::Changed(widened)) = allow_queue(&policy, &queue) else {
        return false;
    };
    assert!(
        widened.contains(&queue),
        "the widened policy lacks the queue"
    );
    assert!(
        matches!(
            allow_queue(&widened, &queue),
            Ok(PolicyChange::Unchanged(_))
        ),
        "widening twice changed the policy twice"
    );
    let narrowed = disallow_queue(&widened, &queue).expect("narrowing a policy we widened");
    if let PolicyChange::Changed(narrowed) = narrowed {
        let before: Value = serde_json::from_str(&policy).unwrap();
        let after: Value = serde_json::from_str(&narrowed).unwrap();
        assert_eq!(
            statement_count(&before),
            statement_count(&after),
            "narrowing dropped a statement"
        );
    }
    true
}

fn statement_count(policy: &Value) -> usize {
    match &policy["Statement"] {
        Value::Array(list) => list.len(),
        _ => 1,
    }
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
            assert!(
                pause_resume::check_environment_name(&name).is_ok(),
                "{name:?}"
            );
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
