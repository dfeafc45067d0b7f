//! The SAM template as deployed: EventBridge patterns are read from it, never retyped.

use serde_json::Value;
use std::process::Command;

use crate::{bed_python, repo_root};

/// Every `AWS::Events::Rule` pattern of the translated template, by logical id, with
/// parameters resolved from `params` (`Name=value`).
pub fn rule_patterns(params: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    match template_py("patterns", params) {
        Value::Object(map) => map,
        other => panic!("patterns JSON is not an object: {other}"),
    }
}

/// The output of `tests/bed/template.py <subcommand> Name=value ...`, as JSON.
fn template_py(subcommand: &str, params: &[(&str, &str)]) -> Value {
    let mut command = Command::new(bed_python());
    command
        .arg(repo_root().join("tests/bed/template.py"))
        .arg(subcommand);
    for (name, value) in params {
        command.arg(format!("{name}={value}"));
    }
    let out = command.output().expect("run tests/bed/template.py");
    assert!(
        out.status.success(),
        "template.py {subcommand} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("template.py answers JSON")
}

/// The translated template (CloudFormation JSON), parameters resolved from `params`.
pub fn translated(params: &[(&str, &str)]) -> Value {
    template_py("translate", params)
}
