//! Every sample event (events/ and events/invalid/) through every function's parser: no
//! panic, ever; the malformed ones are refused by the function they look like, with an
//! error naming the field and, where the event has one, its id. (What the functions do after
//! a refusal — nothing — is tested in each crate with fakes.) No bed needed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mwaa_ops_tests::repo_root;
use serde_json::Value;

/// One function's parser, reduced to "accepted" or "refused with this message".
type Parser = fn(&Value) -> Result<(), String>;

fn trigger_dag(event: &Value) -> Result<(), String> {
    trigger_dag::event::parse_input(event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn provision_endpoints(event: &Value) -> Result<(), String> {
    provision_endpoints::event::parse_status_change(event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn notify(event: &Value) -> Result<(), String> {
    notify::event::parse_input(event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn pause_resume_step(event: &Value) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct RunDag {
        environment: String,
        dag: String,
        task_token: String,
    }
    if event.get("dag").is_some() {
        pause_resume::parse::<RunDag>(event).map_err(|e| e.to_string())?;
    }
    pause_resume::parse_environment(event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const PARSERS: [(&str, Parser); 4] = [
    ("trigger-dag", trigger_dag),
    ("provision-endpoints", provision_endpoints),
    ("notify", notify),
    ("pause-resume", pause_resume_step),
];

/// The function a malformed sample is meant for, by its file name.
fn meant_for(name: &str) -> &'static str {
    match name.split('-').next().unwrap_or_default() {
        "s3" | "schedule" | "replay" | "wrong" => "trigger-dag",
        "mwaa" => "provision-endpoints",
        "sfn" | "destination" => "notify",
        "step" => "pause-resume",
        _ => panic!("events/invalid/{name}: say which function it is for (file name prefix)"),
    }
}

fn samples(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    files.sort();
    files
}

fn run(parser: Parser, event: &Value, what: &str) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| parser(event)))
        .unwrap_or_else(|_| panic!("{what} panicked (it must return an error instead)"))
}

#[test]
fn no_sample_makes_any_function_panic() {
    let root = repo_root().join("events");
    let mut seen = 0;
    for dir in [root.clone(), root.join("invalid")] {
        for (path, text) in samples(&dir) {
            // Lambda refuses a payload that is not JSON before any handler sees it.
            let Ok(event) = serde_json::from_str::<Value>(&text) else {
                assert!(dir.ends_with("invalid"), "{} is not JSON", path.display());
                continue;
            };
            for (name, parser) in PARSERS {
                let _ = run(parser, &event, &format!("{name} on {}", path.display()));
                seen += 1;
            }
        }
    }
    assert!(seen >= 4 * 20, "only {seen} runs: samples missing?");
}

#[test]
fn malformed_samples_are_refused_naming_the_field_and_the_event() {
    let dir = repo_root().join("events/invalid");
    for (path, text) in samples(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(event) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let function = meant_for(&name);
        let (_, parser) = PARSERS.iter().find(|(n, _)| *n == function).unwrap();
        let err = run(*parser, &event, &name).expect_err(&format!("{function} accepted {name}"));
        if let Some(id) = event.get("id").and_then(Value::as_str) {
            assert!(
                err.contains(id),
                "{name}: the error does not name event {id}: {err}"
            );
        }
        assert!(
            err.contains("field") || err.contains("missing") || err.contains("expected"),
            "{name}: the error names no field: {err}"
        );
    }
}

#[test]
fn a_huge_unicode_key_is_an_arrival_with_a_run_id_within_airflows_limits() {
    let text =
        std::fs::read_to_string(repo_root().join("events/s3-object-created-huge-unicode-key.json"))
            .unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let trigger_dag::event::Input::Arrival(arrival) =
        trigger_dag::event::parse_input(&event).unwrap()
    else {
        panic!("not an arrival")
    };
    assert!(arrival.key.len() > 2048 && arrival.key.contains('☃'));
    let routes = trigger_dag::routes::parse_routes(
        r#"[{"bucket": "landing-zone", "environment": "dev", "dag": "load"}]"#,
    )
    .unwrap();
    let [target] = trigger_dag::decide::arrival_targets(&arrival, &routes)
        .try_into()
        .unwrap();
    assert!(target.run_id.len() <= 250, "{}", target.run_id);
    assert!(target
        .run_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-~:+".contains(c)));
    assert_eq!(target.conf["key"], arrival.key.as_str());
}
