//! The SQS endpoint policy: MWAA's Celery queue must be allowed through the VPC's SQS
//! interface endpoint. Provisioning widens the policy by exactly the queue ARN; clean-up
//! narrows it by exactly that ARN again. Nothing else in the policy is touched.

use serde_json::Value;

/// How an endpoint policy changes.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChange {
    Unchanged(&'static str),
    Changed(String),
}

/// Why a policy cannot be changed; the handler turns it into an alerting error.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyProblem {
    NotJson(String),
    NoStatement,
    NoAllowStatement,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyProblem::NotJson(e) => write!(f, "the policy is not a JSON object: {e}"),
            PolicyProblem::NoStatement => write!(f, "the policy has no Statement"),
            PolicyProblem::NoAllowStatement => write!(
                f,
                "the policy has no Allow statement with a Resource to add the queue to"
            ),
        }
    }
}

/// The statements of a policy, whether `Statement` is one object or a list.
fn statements(policy: &mut Value) -> Result<Vec<&mut Value>, PolicyProblem> {
    match policy.get_mut("Statement") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                Err(PolicyProblem::NoStatement)
            } else {
                Ok(list.iter_mut().collect())
            }
        }
        Some(one) if one.is_object() => Ok(vec![one]),
        _ => Err(PolicyProblem::NoStatement),
    }
}

fn parse_policy(policy: &str) -> Result<Value, PolicyProblem> {
    match serde_json::from_str::<Value>(policy) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(PolicyProblem::NotJson(format!("got {other}"))),
        Err(e) => Err(PolicyProblem::NotJson(e.to_string())),
    }
}

fn is_allow(statement: &Value) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
}

/// The resources of a statement, whether `Resource` is a string or a list.
fn resources(statement: &Value) -> Vec<&str> {
    match statement.get("Resource") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// IAM resource matching: `*` any run of characters, `?` one character.
pub fn resource_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    let (mut pi, mut ai, mut star, mut mark) = (0, 0, None, 0);
    while ai < a.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == a[ai]) {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Adds `queue` to the first Allow statement's `Resource`, unless an Allow statement already
/// covers it (`*`, a matching wildcard, or the ARN itself).
pub fn allow_queue(policy: &str, queue: &str) -> Result<PolicyChange, PolicyProblem> {
    let mut doc = parse_policy(policy)?;
    let mut list = statements(&mut doc)?;
    let allows: Vec<&mut &mut Value> = list.iter_mut().filter(|s| is_allow(s)).collect();
    if allows.is_empty() {
        return Err(PolicyProblem::NoAllowStatement);
    }
    if allows.iter().any(|s| resources(s).contains(&queue)) {
        return Ok(PolicyChange::Unchanged("the queue is already allowed"));
    }
    if allows
        .iter()
        .any(|s| resources(s).iter().any(|r| resource_matches(r, queue)))
    {
        return Ok(PolicyChange::Unchanged(
            "a wildcard Resource already allows the queue",
        ));
    }
    // A Resource that is neither a string nor a list (null, a number) is no place to add to.
    let Some(target) = allows
        .into_iter()
        .find(|s| matches!(s.get("Resource"), Some(Value::String(_) | Value::Array(_))))
    else {
        return Err(PolicyProblem::NoAllowStatement);
    };
    let resource = target
        .get_mut("Resource")
        .expect("the statement has a Resource");
    match resource {
        Value::Array(list) => list.push(Value::from(queue)),
        other => {
            let before = other.take();
            *other = Value::Array(vec![before, Value::from(queue)]);
        }
    }
    Ok(PolicyChange::Changed(doc.to_string()))
}

/// Takes exactly `queue` out of every Allow statement's `Resource`. A statement whose only
/// resource it is keeps it (an empty `Resource` is invalid, and the queue no longer exists).
pub fn disallow_queue(policy: &str, queue: &str) -> Result<PolicyChange, PolicyProblem> {
    let mut doc = parse_policy(policy)?;
    let mut changed = false;
    for statement in statements(&mut doc)? {
        if !is_allow(statement) {
            continue;
        }
        if let Some(Value::Array(list)) = statement.get_mut("Resource") {
            let others = list.iter().filter(|r| r.as_str() != Some(queue)).count();
            if others > 0 && others < list.len() {
                list.retain(|r| r.as_str() != Some(queue));
                changed = true;
            }
        }
    }
    Ok(if changed {
        PolicyChange::Changed(doc.to_string())
    } else {
        PolicyChange::Unchanged("the queue is not listed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:airflow-celery-6f1d2c3b";

    #[test]
    fn a_string_resource_becomes_a_list_with_the_queue() {
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": "*", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:123456789012:other"}]});
        let PolicyChange::Changed(new) = allow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let new: Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            new["Statement"][0]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:other", QUEUE])
        );
        assert_eq!(new["Statement"][0]["Action"], "sqs:*", "the rest is kept");
    }

    #[test]
    fn a_list_resource_gains_the_queue_once() {
        let policy = json!({"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "sqs:DeleteQueue", "Resource": "*"},
            {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": ["arn:aws:sqs:us-east-1:123456789012:a"]}]});
        let PolicyChange::Changed(once) = allow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let doc: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"], "*",
            "Deny statements are not touched"
        );
        assert_eq!(
            doc["Statement"][1]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:a", QUEUE])
        );
        assert_eq!(
            allow_queue(&once, QUEUE).unwrap(),
            PolicyChange::Unchanged("the queue is already allowed")
        );
    }

    #[test]
    fn a_resource_that_is_not_a_string_or_list_is_not_added_to() {
        let null = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": null}]});
        assert_eq!(
            allow_queue(&null.to_string(), "arn:aws:sqs:us-east-1:123456789012:q"),
            Err(PolicyProblem::NoAllowStatement)
        );
    }

    #[test]
    fn star_and_matching_wildcards_already_allow() {
        for resource in [
            json!("*"),
            json!(["*"]),
            json!("arn:aws:sqs:us-east-1:123456789012:airflow-celery-*"),
        ] {
            let policy = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": resource}});
            assert!(
                matches!(
                    allow_queue(&policy.to_string(), QUEUE).unwrap(),
                    PolicyChange::Unchanged(_)
                ),
                "{policy}"
            );
        }
        assert!(!resource_matches(
            "arn:aws:sqs:us-east-1:123456789012:other-*",
            QUEUE
        ));
        assert!(resource_matches(
            "arn:aws:sqs:*:123456789012:airflow-celery-????????",
            QUEUE
        ));
    }

    #[test]
    fn policies_without_an_allow_statement_are_problems() {
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]});
        assert_eq!(
            allow_queue(&deny.to_string(), QUEUE),
            Err(PolicyProblem::NoAllowStatement)
        );
        assert_eq!(allow_queue("{}", QUEUE), Err(PolicyProblem::NoStatement));
        assert!(matches!(
            allow_queue("not json", QUEUE),
            Err(PolicyProblem::NotJson(_))
        ));
        let not_resource = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "NotResource": "arn:aws:sqs:*:*:x"}]});
        assert_eq!(
            allow_queue(&not_resource.to_string(), QUEUE),
            Err(PolicyProblem::NoAllowStatement)
        );
    }

    #[test]
    fn clean_up_takes_exactly_the_queue_out_again() {
        let policy = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*",
            "Resource": ["arn:aws:sqs:us-east-1:123456789012:a", QUEUE]}]});
        let PolicyChange::Changed(new) = disallow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let doc: Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:a"])
        );
        assert!(matches!(
            disallow_queue(&new, QUEUE).unwrap(),
            PolicyChange::Unchanged(_)
        ));
        // The only resource stays (an empty Resource is invalid); `*` is not ours to narrow.
        for resource in [json!([QUEUE]), json!(QUEUE), json!("*")] {
            let p = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": resource}]});
            assert!(matches!(
                disallow_queue(&p.to_string(), QUEUE).unwrap(),
                PolicyChange::Unchanged(_)
            ));
        }
    }
}
