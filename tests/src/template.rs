//! The SAM template as deployed: EventBridge patterns are read from it, never retyped.

use serde_json::Value;

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
    let args = std::iter::once(subcommand.to_owned())
        .chain(params.iter().map(|(name, value)| format!("{name}={value}")));
    crate::python_json("tests/bed/template.py", args)
}

/// The translated template (CloudFormation JSON), parameters resolved from `params`.
pub fn translated(params: &[(&str, &str)]) -> Value {
    template_py("translate", params)
}
