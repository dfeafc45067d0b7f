//! Every function's `Timeout` in the template against what its longest invocation needs, as
//! the code bounds it (budgets, the longest MWAA call still in flight, the margin kept for
//! reporting), and every state machine task against its function's timeout. A function
//! killed at its timeout fails with `Sandbox.Timedout`, which no state retries; a task that
//! times out before its function abandons work that is still going on.

use std::collections::BTreeMap;
use std::time::Duration;

use common::aws::LONGEST_MWAA_CALL;
use common::runtime::MARGIN;
use mwaa_ops_tests::{repo_root, template};
use pause_resume::Step;
use serde_json::Value;

/// Lambda's largest timeout.
const LAMBDA_MAX: Duration = Duration::from_secs(900);
/// How far above its need a timeout may be and still "match" it.
const SLACK: Duration = Duration::from_secs(60);

/// The longest invocation of each function the template deploys, by binary name.
fn needs(binary: &str) -> Option<Duration> {
    if let Some(step) = Step::named(binary) {
        return Some(step.longest().unwrap_or(LAMBDA_MAX));
    }
    match binary {
        "trigger-dag" => Some(trigger_dag::replay::longest_replay()),
        // Both retry until the invocation's deadline, whatever it is: at least the last call
        // must fit, with the margin.
        "notify" | "provision-endpoints" => Some(LONGEST_MWAA_CALL + MARGIN),
        _ => None,
    }
}

/// `TriggerDagFunction` -> `trigger-dag`.
fn binary_of(logical_id: &str) -> String {
    let stem = logical_id.strip_suffix("Function").unwrap_or(logical_id);
    let mut out = String::new();
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Each function's timeout, by logical id.
fn timeouts() -> BTreeMap<String, Duration> {
    let cfn = template::translated(&[]);
    let resources = cfn["Resources"].as_object().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(id, r)| {
            let secs = r["Properties"]["Timeout"].as_u64().unwrap_or(3);
            (id.clone(), Duration::from_secs(secs))
        })
        .collect()
}

#[test]
fn every_function_timeout_matches_what_its_longest_invocation_needs() {
    let timeouts = timeouts();
    assert!(timeouts.len() >= 10, "{timeouts:?}");
    let mut wrong = vec![];
    for (id, timeout) in &timeouts {
        let binary = binary_of(id);
        let Some(need) = needs(&binary) else {
            wrong.push(format!("{id}: no known need for binary {binary}"));
            continue;
        };
        let need = need.min(LAMBDA_MAX);
        if *timeout < need || *timeout > need + SLACK {
            wrong.push(format!(
                "{id} ({binary}): Timeout {} s, its longest invocation needs {} s (at most {} s over)",
                timeout.as_secs(),
                need.as_secs_f64(),
                SLACK.as_secs()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_lambda_task_waits_at_least_as_long_as_its_function_runs() {
    let timeouts = timeouts();
    let mut wrong = vec![];
    for machine in ["pause", "resume", "schedule"] {
        let path = repo_root().join(format!("infra/statemachines/{machine}.asl.json"));
        let definition: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (name, state) in definition["States"].as_object().unwrap() {
            if state["Resource"] != "arn:aws:states:::lambda:invoke" {
                continue;
            }
            let function = state["Parameters"]["FunctionName"].as_str().unwrap();
            let id = function
                .trim_start_matches("${")
                .trim_end_matches("Arn}")
                .to_owned();
            let timeout = timeouts[&id];
            let waits = Duration::from_secs(state["TimeoutSeconds"].as_u64().unwrap());
            if waits < timeout {
                wrong.push(format!(
                    "{machine}.{name}: TimeoutSeconds {} s < {id}'s Timeout {} s",
                    waits.as_secs(),
                    timeout.as_secs()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn names_of_functions_are_their_binaries() {
    assert_eq!(binary_of("TriggerDagFunction"), "trigger-dag");
    assert_eq!(binary_of("NotifyFunction"), "notify");
    assert_eq!(binary_of("EnableDagsFunction"), "enable-dags");
}
