//! What the decision's and the alerts' tests both start from: the settings, a sample event
//! read as a failure, and the alert the decision sends for it.

use serde_json::Value;

use crate::decide::{decide, Facts, Plan, Settings};
use crate::event::{parse_failure, Failure};
use crate::message::Alert;

pub fn settings() -> Settings {
    Settings {
        region: "eu-west-1".into(),
        pending_minutes: 30,
        // The samples name environments of several prefixes.
        environment_prefix: String::new(),
    }
}

pub fn sample(text: &str) -> Failure {
    parse_failure(&serde_json::from_str::<Value>(text).unwrap()).unwrap()
}

/// The alert the decision sends; anything else fails the test.
pub fn alert(failure: &Failure, facts: &Facts) -> Alert {
    match decide(failure, facts, &settings()) {
        Plan::Send(alert) => alert,
        other => panic!("expected an alert, got {other:?}"),
    }
}

/// Fails naming the first of `expected` that `text` lacks, and showing `text`.
pub fn assert_says(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
