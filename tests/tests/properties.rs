//! The fuzz targets' checks (`mwaa_ops_tests::properties`), run in CI on stable over every
//! sample event and a fixed set of mutations of each: every value replaced by a hostile one
//! (wrong types, huge numbers and strings, control characters, unicode), every key dropped,
//! every prefix of the text. The fuzzer (`scripts/fuzz`) goes further on demand; this keeps
//! the checks honest between runs and fails on the first input that breaks a property.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mwaa_ops_tests::properties::CHECKS;
use mwaa_ops_tests::repo_root;
use serde_json::{json, Value};

/// Values a field can be replaced with.
fn hostile() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(18446744073709551615u64),
        json!(1e308),
        json!(""),
        json!(" "),
        json!("x".repeat(5000)),
        json!("☃ \u{0} \n\t \" \\ ../%2F*?[]{} ~:+"),
        json!("PENDING"),
        json!("DELETED"),
        json!("arn:aws:sqs:us-east-1:123456789012:airflow-celery-x"),
        json!([]),
        json!(["a", 1]),
        json!({}),
        json!({"nested": {"deeper": [null]}}),
    ]
}

/// Every JSON pointer to a value inside `value` (the root excluded).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => vec![],
    };
    for (key, child) in children {
        let path = format!("{at}/{key}");
        out.push(path.clone());
        pointers(child, path, out);
    }
}

fn remove(root: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&key);
        }
        Some(Value::Array(list)) => {
            list.remove(key.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

/// The sample itself, then its mutations, as bytes.
fn mutations(text: &str) -> Vec<Vec<u8>> {
    let mut out = vec![text.as_bytes().to_vec()];
    let step = (text.len() / 40).max(1);
    out.extend(
        (0..text.len())
            .step_by(step)
            .map(|n| text.as_bytes()[..n].to_vec()),
    );
    let Ok(original) = serde_json::from_str::<Value>(text) else {
        return out;
    };
    let mut paths = vec![];
    pointers(&original, String::new(), &mut paths);
    for path in &paths {
        for replacement in hostile() {
            let mut changed = original.clone();
            *changed.pointer_mut(path).unwrap() = replacement;
            out.push(changed.to_string().into_bytes());
        }
        let mut dropped = original.clone();
        remove(&mut dropped, path);
        out.push(dropped.to_string().into_bytes());
    }
    out
}

/// Files of a directory of the repository, sorted, as (name, bytes).
fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// What a check is given, mutated: the events for the event parsers; the fuzz seeds for
/// the routes document and for endpoint policies (queue name, a zero byte, the policy: the
/// policy is mutated and tried with other queue names).
fn corpus(check: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    match check {
        "endpoint_policy" => {
            for (name, seed) in files("fuzz/seeds/endpoint_policy") {
                let split = seed.iter().position(|b| *b == 0).unwrap();
                let policy = String::from_utf8(seed[split + 1..].to_vec()).unwrap();
                for input in mutations(&policy) {
                    for queue in ["b", "a", "a-2", "x".repeat(60).as_str(), "b c"] {
                        let mut bytes = queue.as_bytes().to_vec();
                        bytes.push(0);
                        bytes.extend_from_slice(&input);
                        out.push((name.clone(), bytes));
                    }
                }
            }
        }
        "routes_document" => {
            for (name, seed) in files("fuzz/seeds/routes_document") {
                let text = String::from_utf8(seed).unwrap();
                out.extend(mutations(&text).into_iter().map(|m| (name.clone(), m)));
            }
        }
        _ => {
            for (name, seed) in [files("events"), files("events/invalid")].concat() {
                let text = String::from_utf8(seed).unwrap();
                out.extend(mutations(&text).into_iter().map(|m| (name.clone(), m)));
            }
        }
    }
    out
}

#[test]
fn every_property_holds_for_every_sample_and_its_mutations() {
    let mut accepted: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (check, run) in CHECKS {
        for (name, input) in &corpus(check) {
            let verdict = catch_unwind(AssertUnwindSafe(|| run(input))).unwrap_or_else(|_| {
                panic!(
                    "{check} broke on a mutation of {name}: {}",
                    String::from_utf8_lossy(input)
                )
            });
            let counts = accepted.entry(check).or_default();
            if verdict {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    // Each check saw inputs it accepts and inputs it refuses: the properties past parsing
    // were exercised, not only the refusals.
    for (check, _) in CHECKS {
        let (yes, no) = accepted[check];
        eprintln!("{check}: {yes} accepted, {no} refused");
        assert!(
            yes >= 20 && no >= 20,
            "{check}: {yes} accepted, {no} refused"
        );
    }
}

#[test]
fn the_mutator_reaches_every_field() {
    let text = r#"{"a": {"b": [1, {"c/d": 2}]}, "e~": 3}"#;
    let all = mutations(text);
    let hostile_count = hostile().len() + 1;
    // 6 values below the root, each replaced and dropped; plus prefixes of the text.
    let mut paths = vec![];
    pointers(
        &serde_json::from_str(text).unwrap(),
        String::new(),
        &mut paths,
    );
    assert_eq!(
        paths,
        ["/a", "/a/b", "/a/b/0", "/a/b/1", "/a/b/1/c~1d", "/e~0"]
    );
    let prefixes = (0..text.len()).step_by((text.len() / 40).max(1)).count();
    assert_eq!(all.len(), 1 + prefixes + paths.len() * hostile_count);
    assert!(all
        .iter()
        .any(|m| m.as_slice() == br#"{"a":{"b":[1,{}]},"e~":3}"#));
}
