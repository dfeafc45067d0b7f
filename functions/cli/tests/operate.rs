//! `mwaa-ops` end to end on the bed: the built binary, run as an operator runs it, against
//! the suite as `scripts/local-up` deploys it (moto, the local MWAA control plane, a real
//! Airflow 2.10.3, the production pause and resume state machines with their Rust steps,
//! trigger-dag behind Lambda's Invoke API, the arrivals handed to trigger-dag's binary as the
//! template's rule would, the MWAA status changes to notify's and provision-endpoints'
//! binaries as their rules would, and the stack whose outputs name them).

use std::process::Command;
use std::time::Duration;

use mwaa_ops_tests::arrivals::{trigger_dag_role, Arrivals, LANDING, SUITE_BUCKET};
use mwaa_ops_tests::digest::Digest;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::lambda::Deployment;
use mwaa_ops_tests::night::{
    assert_the_dashboard_draws_the_night, with_provision_endpoints, StatusChanges,
};
use mwaa_ops_tests::suite::{deploy_pause_resume, deploy_stack, endpoints, PauseResume};
use mwaa_ops_tests::{session, Session};
use serde_json::{json, Value};

const ENV: &str = "local-cli";
/// An MWAA Serverless workflow arrivals are also routed to.
const WORKFLOW: &str = "local-flow";

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
    // MWAA_OPS_BIN_DIR: see mwaa_ops_tests::suite::sibling_binary.
    let binary = std::env::var_os("MWAA_OPS_BIN_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_mwaa-ops")),
        |dir| std::path::Path::new(&dir).join("mwaa-ops"),
    );
    let out = Command::new(binary)
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
    let workflow = s.create_workflow(WORKFLOW).await;
    // What trigger-dag counts a workflow's runs under: the ARN's last part (name-id).
    let workflow_dimension = workflow.rsplit_once(":workflow/").unwrap().1.to_owned();
    assert!(workflow_dimension.starts_with(WORKFLOW), "{workflow}");
    let routes = json!([
        {"name": "cli", "bucket": LANDING, "prefix": "cli/", "environment": ENV, "dag": "bed_smoke"},
        {"name": "flow", "bucket": LANDING, "prefix": "flow/", "workflow_arn": workflow},
    ]);
    // Every MWAA status change from now on reaches notify and provision-endpoints (in the
    // arrivals' Lambda service) as the template's rules deliver it.
    let status_changes = StatusChanges::deploy(s.bed, "local").await;
    let with_endpoints = with_provision_endpoints(s.bed, "local", Deployment::new()).await;
    let arrivals = Arrivals::deploy_with(
        s.bed,
        routes.clone(),
        trigger_dag_role("local"),
        &[],
        with_endpoints,
    )
    .await;
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
    let digest = Digest::deploy(s.bed, &suite.machines, "local").await;
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
    // An arrival for the workflow: a run of it in MWAA Serverless.
    arrivals.put("flow/orders.csv", "a,b").await;
    for result in arrivals.deliver(1, 1).await {
        assert_eq!(result.unwrap()["runs"][0]["outcome"], "started");
    }

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

    // held and replay: an arrival while the environment is away (unavailable: one alert,
    // however often its status change is delivered), started on demand.
    s.control("status", json!({"name": ENV, "status": "UNAVAILABLE"}))
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
    let unavailable = status_changes
        .to_notify
        .take(1, Duration::from_secs(15))
        .await;
    assert_eq!(unavailable.len(), 1, "{unavailable:?}");
    for _ in 0..2 {
        digest.invoke(&unavailable[0]).await.unwrap();
    }
    let alerts = digest.alerts(s.bed).await;
    assert_eq!(alerts.len(), 1, "one email for two deliveries: {alerts:?}");
    assert!(
        alerts[0].subject.contains(ENV) && alerts[0].subject.contains("UNAVAILABLE"),
        "{}",
        alerts[0].subject
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
    // An arrival overnight: held, replayed by the wake (the digest counts it).
    arrivals.put("cli/overnight.csv", "a,b").await;
    for result in arrivals.deliver(1, 1).await {
        assert_eq!(result.unwrap()["runs"][0]["outcome"], "held");
    }
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

    the_resumes_end_sends_one_digest(&s, &digest, woken["execution"].as_str().unwrap()).await;
    // The night's status changes (unavailable, available, deleting, deleted, creating,
    // available) to provision-endpoints: nothing to make or remove for an environment whose
    // endpoints MWAA manages, but each one handled.
    let changes = status_changes
        .to_provision_endpoints(&arrivals.functions)
        .await;
    assert_eq!(changes, 6, "the night's status changes");

    // The night left its metrics (as CloudWatch would read them from the functions' output:
    // the steps', trigger-dag's, provision-endpoints' and notify's), exactly those the
    // stack's dashboard draws.
    let arrival_metrics = arrivals.functions.metrics();
    let total = |environment: &str, name: &str| -> f64 {
        arrival_metrics
            .iter()
            .filter(|doc| doc["Environment"] == environment)
            .filter_map(|doc| doc[name].as_f64())
            .sum()
    };
    assert_eq!(
        (
            total(ENV, "ArrivalsRouted"),
            total(ENV, "ArrivalsHeld"),
            total(ENV, "RunsStarted")
        ),
        (2.0, 2.0, 0.0),
        "two arrivals, both held (started later by the replays): {arrival_metrics:?}"
    );
    assert_eq!(total(&workflow_dimension, "WorkflowRunsStarted"), 1.0);
    assert_eq!(
        (
            total(ENV, "EndpointsCreated"),
            total(ENV, "EndpointsDeleted")
        ),
        (0.0, 0.0)
    );
    let notified = digest.metrics();
    let alerted = |name: &str| -> f64 { notified.iter().filter_map(|d| d[name].as_f64()).sum() };
    assert_eq!(
        (alerted("AlertsSent"), alerted("AlertsDeduplicated")),
        (1.0, 1.0)
    );
    let night: Vec<Value> = suite
        .metrics()
        .into_iter()
        .chain(arrival_metrics.iter().cloned())
        .chain(notified)
        .collect();
    assert_the_dashboard_draws_the_night(&night, &[ENV, &workflow_dimension]);
}

/// Every failure is a non-zero exit with a message naming what is wrong.
#[tokio::test]
async fn failures_exit_non_zero_and_say_what_is_wrong() {
    let s = bed_session().await;
    let routes = json!([]);
    let _arrivals = Arrivals::deploy(s.bed, routes.clone(), "local").await;
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

/// A JSON object of the suite's bucket, which the test expects (`what` says which).
async fn suite_json(s3: &aws_sdk_s3::Client, key: &str, what: &str) -> Value {
    let got = s3
        .get_object()
        .bucket(SUITE_BUCKET)
        .key(key)
        .send()
        .await
        .expect(what);
    serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap()
}

/// The morning digest after the night above: notify, as its role of the template, gets the
/// resume's end from the template's rule and emails that night's figures on the digest topic,
/// once; IAM refused none of its calls. The digest's notify, for its metrics.
async fn the_resumes_end_sends_one_digest(s: &Session, digest: &Digest, resume: &str) {
    let answers = digest.deliver_end_of(resume).await;
    assert_eq!(answers.len(), 1, "one event through the rule: {answers:?}");
    let subject = answers[0]["morning_digest"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest sent: {}", answers[0]));
    let emails = digest.emails(s.bed).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(
        (email.subject.as_str(), &email.attributes["kind"]["Value"]),
        (subject, &json!("morning-digest"))
    );
    println!("Subject: {}\n\n{}", email.subject, email.body);

    // The figures are the night's: the pause's snapshot record, the resume's replay.
    let s3 = s.bed.s3().await;
    let record = suite_json(
        &s3,
        &format!("snapshots/{ENV}/latest.json"),
        "the pause's snapshot record",
    )
    .await;
    let paused = record["paused_at"].as_str().unwrap();
    let verified = &record["verified"];
    let copy = record["configuration"]["result"]["copy"].as_str().unwrap();
    let saved = suite_json(&s3, copy, "the configuration the pause saved").await;
    let class = saved["EnvironmentClass"].as_str().unwrap();
    let active = record["active_dags"].as_array().unwrap().len();
    assert!(active > 0, "{record}");
    let body = &email.body;
    for expected in [
        format!("{ENV}: resumed"),
        format!(" paused  {} {} UTC", &paused[5..10], &paused[11..16]),
        " resumed ".to_string(),
        " down    ".to_string(),
        " saved   ~$".to_string(),
        format!("/h {class}"),
        " held    1 arrivals: 1 run, 0 set aside".to_string(),
        format!(
            " export  {} rows, {}",
            verified["rows"].as_u64().unwrap(),
            notify::morning::render::size(verified["bytes"].as_u64().unwrap())
        ),
        "         in ".to_string(),
        format!(" DAGs    {active} on again"),
    ] {
        assert!(body.contains(&expected), "{expected:?} not in\n{body}");
    }
    assert!(
        body.lines().all(|l| l.chars().count() <= 44),
        "a line too long for a phone:\n{body}"
    );

    // The marker of the date names the end that claimed it.
    let date = answers[0]["morning_digest"]["date"].as_str().unwrap();
    let marker = suite_json(&s3, &format!("digests/{date}.json"), "the digest's marker").await;
    assert_eq!(marker["claimed_by"], resume, "{marker}");

    // A second delivery of the same end sends nothing: the marker remembers the date.
    let again = digest.deliver_end_of(resume).await;
    assert_eq!(
        again[0]["morning_digest"]["digest"], "sent already",
        "{again:?}"
    );
    assert_eq!(digest.emails(s.bed).await.len(), 1);
    let refused = s.bed.iam_refusals().await;
    assert!(refused.is_empty(), "IAM refused: {refused:?}");
}
