//! `mwaa-ops` end to end on the bed: the built binary, run as an operator runs it, against
//! the suite as `scripts/local-up` deploys it (moto, the local MWAA control plane, a real
//! Airflow 2.10.3, the production pause and resume state machines with their Rust steps,
//! trigger-dag behind Lambda's Invoke API, and the stack whose outputs name them).

use std::process::Command;
use std::time::Duration;

use mwaa_ops_tests::arrivals::Arrivals;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::suite::{deploy_pause_resume, deploy_stack, endpoints, PauseResume};
use mwaa_ops_tests::{session, Session};
use serde_json::{json, Value};

const ENV: &str = "local-cli";

/// The bed with one Airflow: this binary needs only 2.10.3.
async fn bed_session() -> Session {
    static ONE_AIRFLOW: std::sync::Once = std::sync::Once::new();
    ONE_AIRFLOW.call_once(|| {
        if std::env::var_os("MWAA_OPS_BED_AIRFLOW").is_none() {
            std::env::set_var("MWAA_OPS_BED_AIRFLOW", "2.10.3");
        }
    });
    session().await
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        assert!(self.ok, "mwaa-ops failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

fn mwaa_ops(suite: &PauseResume, s: &Session, args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_mwaa-ops"))
        .args(args)
        .envs(endpoints(s.bed, &suite.lambda_url))
        .env_remove("MWAA_OPS_STACK")
        .output()
        .expect("run mwaa-ops");
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn environment<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["environments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["environment"] == name))
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

/// One operator's day: overrides, a held arrival replayed, a real pause, a wake.
#[tokio::test]
async fn every_command_steers_the_local_suite() {
    let s = bed_session().await;
    let mwaa = s.mwaa().await;
    NewEnvironment::new(ENV, "2.10.3").create(&mwaa).await;
    wait_for_status(&mwaa, ENV, "AVAILABLE", Duration::from_secs(120)).await;
    let routes = json!([{"name": "cli", "bucket": mwaa_ops_tests::arrivals::LANDING,
        "prefix": "cli/", "environment": ENV, "dag": "bed_smoke"}]);
    let arrivals = Arrivals::deploy(s.bed, routes.clone()).await;
    let suite = deploy_pause_resume(s.bed, &routes);
    deploy_stack(
        s.bed,
        &suite.machines,
        &[
            ("EnvironmentNamePrefix", "local"),
            ("PausedEnvironments", ENV),
            ("ScheduleTimezone", "Europe/Berlin"),
        ],
    )
    .await;
    let run = |args: &[&str]| mwaa_ops(&suite, &s, args);

    // status: the environment, up, with tonight's scheduled pause in the schedules' zone.
    let status = run(&["status", "--json"]).json();
    let env = environment(&status, ENV);
    assert_eq!(
        (env["state"].as_str(), env["held"].as_u64()),
        (Some("AVAILABLE"), Some(0))
    );
    assert!(
        env["next_pause"]
            .as_str()
            .unwrap()
            .ends_with("[Europe/Berlin]"),
        "{env}"
    );
    let table = run(&["status"]);
    assert!(
        table.ok && table.stdout.contains("ENVIRONMENT") && table.stdout.contains(ENV),
        "{}",
        table.stdout
    );

    // skip: the next pause ends "Skipped" and says why; the marker is used up.
    assert_eq!(
        run(&["skip", ENV, "--json"]).json()["skip_next_pause"],
        true
    );
    assert_eq!(
        environment(&run(&["status", "--json"]).json(), ENV)["skip_next_pause"],
        true
    );
    let skipped = run(&["pause", ENV, "--wait", "--poll-seconds", "1", "--json"]).json();
    assert_eq!(skipped["result"], "SKIPPED");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("mwaa-ops skip"),
        "{skipped}"
    );
    let after = run(&["status", "--json"]).json();
    let env = environment(&after, ENV);
    assert_eq!(
        (env["state"].as_str(), env["skip_next_pause"].as_bool()),
        (Some("AVAILABLE"), Some(false))
    );
    assert_eq!(env["last_pause"]["result"], "SKIPPED");

    // stay-up: every pause until then is skipped, saying until when; --cancel ends it.
    let until = run(&["stay-up", ENV, "--until", "+3h", "--json"]).json()["stay_up_until"].clone();
    assert_eq!(
        environment(&run(&["status", "--json"]).json(), ENV)["stay_up_until"],
        until
    );
    let stayed = run(&["pause", ENV, "--wait", "--poll-seconds", "1", "--json"]).json();
    assert_eq!(stayed["result"], "SKIPPED");
    let reason = stayed["reason"].as_str().unwrap();
    assert!(
        reason.contains("stay up until") && reason.contains(until.as_str().unwrap()),
        "{reason}"
    );
    assert!(run(&["stay-up", ENV, "--cancel"]).ok);
    assert_eq!(
        environment(&run(&["status", "--json"]).json(), ENV)["stay_up_until"],
        Value::Null
    );

    // held and replay: an arrival while the environment is away, started on demand.
    s.control("status", json!({"name": ENV, "status": "UPDATING"}))
        .await;
    arrivals.put("cli/orders.csv", "a,b").await;
    for result in arrivals.deliver(1, 1).await {
        assert_eq!(result.unwrap()["runs"][0]["outcome"], "held");
    }
    let held = run(&["held", ENV, "--json"]).json();
    assert_eq!(held["held"].as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held["held"][0]["dag_id"], "bed_smoke");
    assert_eq!(
        environment(&run(&["status", "--json"]).json(), ENV)["held"],
        1
    );
    s.control("status", json!({"name": ENV, "status": "AVAILABLE"}))
        .await;
    let replayed = run(&["replay", ENV, "--json"]).json();
    assert_eq!(
        (
            replayed["replayed"].as_u64(),
            replayed["set_aside"].as_u64()
        ),
        (Some(1), Some(0)),
        "{replayed}"
    );
    assert_eq!(run(&["held", ENV, "--json"]).json()["held"], json!([]));

    // pause for real, then wake: deleted after a verified export, back with its metadata.
    let paused = run(&["pause", ENV, "--wait", "--poll-seconds", "1", "--json"]).json();
    assert_eq!(paused["result"], "SUCCEEDED", "{paused}");
    assert_eq!(
        environment(&run(&["status", "--json"]).json(), ENV)["state"],
        "PAUSED"
    );
    let woken = run(&["wake", ENV, "--poll-seconds", "1", "--json"]).json();
    assert_eq!(woken["result"], "SUCCEEDED", "{woken}");
    let back = run(&["status", "--json"]).json();
    let env = environment(&back, ENV);
    assert_eq!(
        (env["state"].as_str(), env["last_resume"]["result"].as_str()),
        (Some("AVAILABLE"), Some("SUCCEEDED"))
    );
    let again = run(&["wake", ENV, "--json"]).json();
    assert_eq!(again["result"], "AVAILABLE", "nothing to do: {again}");

    // The night left its metrics (as CloudWatch would read them from the functions' output),
    // each one in the catalog the dashboard is checked against.
    let catalog: Vec<&str> = common::metrics::CATALOG.iter().map(|m| m.name).collect();
    let mut seen = std::collections::BTreeSet::new();
    for doc in suite.metrics() {
        assert_eq!(doc["Environment"], ENV, "{doc}");
        for definition in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = definition["Name"].as_str().unwrap();
            assert!(
                catalog.contains(&name),
                "{name} is not in common::metrics::CATALOG"
            );
            assert!(doc[name].is_number(), "{doc}");
            seen.insert(name.to_string());
        }
    }
    for expected in [
        "StepSeconds",
        "EnvironmentAvailable",
        "ExportRows",
        "ExportBytes",
        "ArrivalsReplayed",
    ] {
        assert!(
            seen.contains(expected),
            "{expected} not emitted; seen {seen:?}"
        );
    }
}

/// Every failure is a non-zero exit with a message naming what is wrong.
#[tokio::test]
async fn failures_exit_non_zero_and_say_what_is_wrong() {
    let s = bed_session().await;
    let routes = json!([]);
    let _arrivals = Arrivals::deploy(s.bed, routes.clone()).await;
    let suite = deploy_pause_resume(s.bed, &routes);
    deploy_stack(
        s.bed,
        &suite.machines,
        &[("EnvironmentNamePrefix", "local")],
    )
    .await;
    let run = |args: &[&str]| mwaa_ops(&suite, &s, args);
    for (args, says) in [
        (
            &["--stack", "nope", "status"][..],
            "stack `nope` does not exist",
        ),
        (&["pause", "prod-x"][..], "does not start with `local`"),
        (&["pause", "local-gone"][..], "NOT_FOUND"),
        (&["resume", "local-gone"][..], "no verified pause"),
        (
            &["stay-up", "local-x", "--until", "yesterday"][..],
            "--until \"yesterday\"",
        ),
        (
            &["stay-up", "local-x", "--until", "2020-01-01 00:00"][..],
            "has passed",
        ),
        (&["held", "local/../x"][..], "environment `local/../x`"),
    ] {
        let ran = run(args);
        assert!(!ran.ok, "{args:?} succeeded: {}", ran.stdout);
        assert!(
            ran.stderr.starts_with("mwaa-ops: ") && ran.stderr.contains(says),
            "{args:?}: {}",
            ran.stderr
        );
    }
    // The Lambda behind replay failing reaches the operator with its error.
    let failed = run(&["replay", "local-gone"]);
    assert!(
        !failed.ok && failed.stderr.contains("EnvironmentNotAvailable"),
        "{}",
        failed.stderr
    );
}
