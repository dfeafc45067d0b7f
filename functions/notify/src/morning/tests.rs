//! The digest's decisions and text, without I/O.

use serde_json::{json, Value};

use super::prices::{saving, Prices, Size};
use super::render::{digest, WIDTH};
use super::*;

const HOUR: i64 = 3_600_000;
/// 2026-12-01T07:00:00Z.
const SEVEN: i64 = 1_796_108_400_000;

fn run(name: &str, status: &str, started_ms: i64) -> ResumeRun {
    ResumeRun {
        execution_arn: format!("arn:aws:states:us-east-1:1:execution:mwaa-ops-resume:{name}"),
        status: status.into(),
        started_ms,
    }
}

/// What the resume state machine's output holds after a full resume.
pub(crate) fn resumed_output(
    active: &[&str],
    missing: &[&str],
    replayed: u64,
    set_aside: u64,
) -> Value {
    json!({"environment": "dev-a",
        "creation": {"result": {"snapshot": {"active_dags": active}}},
        "enabled": {"result": {"enabled": [], "missing": missing, "not_addressable": [], "next": null}},
        "replayed": {"replayed": replayed - 1, "already_started": 1, "set_aside": set_aside, "batches": 1}})
}

/// The pause's snapshot record as the pause writes it: paused at 20:00 the evening before,
/// export made at 19:54:30 by a pause started at 19:50, times with an offset, the
/// configuration where save-configuration put it.
pub(crate) fn snapshot() -> Value {
    json!({"environment": "dev-a", "execution": "arn:aws:states:us-east-1:1:execution:mwaa-ops-pause:p",
        "paused_at": "2026-11-30T20:00:00.000000+00:00",
        "configuration": {"result": {"environment": "dev-a", "bucket": "b",
            "key": "configurations/dev-a/latest.json", "copy": CONFIGURATION_COPY}},
        "verified": {"verified": true, "rows": 12345, "bytes": 1_572_864,
                     "created_at": "2026-11-30T19:54:30.123456+00:00"}})
}

/// Where [`snapshot`] says the pause saved the configuration.
pub(crate) const CONFIGURATION_COPY: &str = "configurations/dev-a/20261130T195000Z.json";

/// The night of dev-a (mw1.small, one worker) whose resume `a` succeeded at seven with
/// `output`, after a pause started at `pause_started`.
fn resume_succeeded(output: &Value, pause_started: Option<i64>) -> Night {
    night(
        "dev-a",
        &run("a", "SUCCEEDED", SEVEN),
        Some(output),
        Some(&snapshot()),
        Some(&configuration("mw1.small", 1)),
        None,
        pause_started,
    )
}

/// The night of `environment` whose resume (`execution`, at seven) failed importing, after a
/// pause of a `class` environment with `min_workers`.
fn failed_import(environment: &str, execution: &str, class: &str, min_workers: u64) -> Night {
    let step = FailedStep {
        state: "RunImport".into(),
        error: Some("MwaaOps.ImportFailed".into()),
        cause: None,
    };
    night(
        environment,
        &run(execution, "FAILED", SEVEN),
        None,
        Some(&snapshot()),
        Some(&configuration(class, min_workers)),
        Some(&step),
        None,
    )
}

/// The configuration save-configuration wrote (its members as GetEnvironment names them).
pub(crate) fn configuration(class: &str, min_workers: u64) -> Value {
    json!({"Name": "dev-a", "EnvironmentClass": class, "MinWorkers": min_workers})
}

#[test]
fn the_last_resume_to_end_sends_and_the_others_wait() {
    let a = run("a", "SUCCEEDED", SEVEN);
    let b = run("b", "RUNNING", SEVEN + 1000);
    let yesterday = run("old", "RUNNING", SEVEN - 13 * HOUR);
    assert_eq!(
        morning(
            vec![a.clone(), b.clone(), yesterday.clone()],
            &a,
            SEVEN + HOUR / 2
        ),
        Morning::Wait {
            running: vec![b.execution_arn.clone()]
        }
    );
    // b's own end: the listing may still say RUNNING; b counts as ended, yesterday's is
    // another morning.
    let b_ended = ResumeRun {
        status: "FAILED".into(),
        ..b.clone()
    };
    let Morning::Summarize(runs) = morning(vec![a.clone(), b, yesterday], &b_ended, SEVEN + HOUR)
    else {
        panic!("every resume of the morning ended")
    };
    assert_eq!(runs, vec![b_ended.clone(), a]);
    // Not listed yet at all: still counted.
    assert_eq!(
        morning(vec![], &b_ended, SEVEN + HOUR),
        Morning::Summarize(vec![b_ended])
    );
}

#[test]
fn each_environment_is_told_by_its_latest_resume() {
    let detail = |env: &str| RunDetail {
        input: Some(json!({"environment": env}).to_string()),
        ..RunDetail::default()
    };
    let latest = latest_per_environment(vec![
        (run("a1", "FAILED", SEVEN), detail("dev-a")),
        (run("a2", "SUCCEEDED", SEVEN + HOUR), detail("dev-a")),
        (run("b", "SUCCEEDED", SEVEN), detail("dev-b")),
        (run("x", "SUCCEEDED", SEVEN), RunDetail::default()),
    ]);
    assert_eq!(latest.keys().collect::<Vec<_>>(), ["dev-a", "dev-b"]);
    assert_eq!(latest["dev-a"].0.status, "SUCCEEDED");
}

#[test]
fn a_night_reads_the_resume_output_and_the_pause_record() {
    let output = resumed_output(&["etl", "report", "gone"], &["gone"], 3, 1);
    let pause_started = millis("2026-11-30T19:50:00Z");
    let n = resume_succeeded(&output, pause_started);
    assert_eq!(n.outcome, Outcome::Resumed);
    assert_eq!((n.held, n.replayed, n.set_aside), (4, 3, 1));
    assert_eq!(
        n.export,
        Some(Export {
            rows: 12345,
            bytes: 1_572_864,
            seconds: Some(270.123)
        })
    );
    assert_eq!(
        (n.dags_on, n.dags_missing.clone()),
        (Some(2), vec!["gone".to_string()])
    );
    assert_eq!(n.paused_ms, Some(SEVEN - 11 * HOUR));
    assert_eq!(n.hours(), 11.0);
    assert_eq!(n.size.as_ref().map(|s| s.class.as_str()), Some("mw1.small"));
}

#[test]
fn a_failed_resume_names_its_step_and_a_resume_with_nothing_to_do_saves_nothing() {
    let failed = failed_import("dev-a", "a", "mw1.small", 1);
    assert_eq!(
        failed.outcome,
        Outcome::Failed {
            status: "FAILED".into(),
            step: Some("RunImport".into()),
            error: Some("MwaaOps.ImportFailed".into())
        }
    );
    assert_eq!(failed.hours(), 11.0, "deleted all night all the same");
    assert_eq!((failed.held, failed.dags_on), (0, None));
    let output =
        json!({"environment": "dev-a", "resumed": false, "reason": "the pause was skipped"});
    let skipped = resume_succeeded(&output, None);
    assert_eq!(
        skipped.outcome,
        Outcome::NotResumed("the pause was skipped".into())
    );
    assert_eq!((skipped.hours(), skipped.export.clone()), (0.0, None));
}

#[test]
fn the_saving_is_the_hours_times_the_class_price_with_its_extra_workers_and_schedulers() {
    let prices = Prices::for_region("us-east-1", "").unwrap();
    let size =
        Size::of(&json!({"EnvironmentClass": "mw1.medium", "MinWorkers": 3, "Schedulers": 3}));
    assert_eq!(
        (size.min_workers, size.schedulers, size.min_webservers),
        (3, 3, 2)
    );
    let (hourly, saved) = saving(&size, 10.0, &prices).unwrap();
    // 0.74 + 2 extra workers x 0.11 + 1 extra scheduler x 0.11
    assert!((hourly - 1.07).abs() < 1e-9, "{hourly}");
    assert!((saved - 10.7).abs() < 1e-9, "{saved}");
    let small = Size::of(&json!({}));
    assert_eq!(small.class, "mw1.small");
    assert_eq!(saving(&small, 11.0, &prices).map(|(h, _)| h), Some(0.49));
    assert_eq!(
        saving(
            &Size::of(&json!({"EnvironmentClass": "mw9.huge"})),
            1.0,
            &prices
        ),
        None
    );
}

#[test]
fn prices_come_from_the_regions_table_and_digest_prices_wins() {
    let built_in = Prices::for_region("us-east-1", "").unwrap();
    assert_eq!(built_in.classes["mw1.small"].environment, 0.49);
    assert!(
        built_in.source.contains("read 2026-11-30"),
        "{}",
        built_in.source
    );
    let elsewhere = Prices::for_region("eu-central-1", "").unwrap();
    assert!(elsewhere.classes.is_empty() && elsewhere.source.is_empty());
    let given = r#"{"mw1.small": {"environment": 0.55, "worker": 0.06, "scheduler": 0.06, "webserver": 0.06}}"#;
    let eu = Prices::for_region("eu-central-1", given).unwrap();
    assert_eq!(
        (eu.classes["mw1.small"].environment, eu.source.as_str()),
        (0.55, "the stack's DigestPrices")
    );
    let over = Prices::for_region("us-east-1", given).unwrap();
    assert_eq!(
        (
            over.classes["mw1.small"].environment,
            over.classes["mw1.large"].environment
        ),
        (0.55, 0.99)
    );
    for bad in [
        r#"{"mw1.small": {"environment": 1}}"#,
        r#"{"mw1.small": {"environment": -1, "worker": 0, "scheduler": 0, "webserver": 0}}"#,
        "[]",
    ] {
        let err = Prices::for_region("us-east-1", bad).unwrap_err();
        assert!(err.starts_with("DIGEST_PRICES"), "{err}");
    }
}

#[test]
fn the_digest_reads_on_a_phone_and_carries_every_figure() {
    let prices = Prices::for_region("us-east-1", "").unwrap();
    let pause_started = millis("2026-11-30T19:50:00Z");
    let resumed = night(
        "dev-analytics",
        &run("a", "SUCCEEDED", SEVEN),
        Some(&resumed_output(&["etl", "report", "gone"], &["gone"], 3, 1)),
        Some(&snapshot()),
        Some(&configuration("mw1.small", 1)),
        None,
        pause_started,
    );
    let failed = failed_import("dev-reports", "b", "mw1.medium", 2);
    let unpriced = night(
        "dev-big",
        &run("c", "SUCCEEDED", SEVEN),
        Some(&resumed_output(&[], &[], 1, 0)),
        Some(&snapshot()),
        Some(&configuration("mw1.2xlarge", 1)),
        None,
        None,
    );
    let (subject, body) = digest(
        "2026-12-01",
        "mwaa-ops",
        &[resumed, failed, unpriced],
        &prices,
    );
    // 11 h x 0.49 = 5.39; 11 h x (0.74 + 0.11) = 9.35.
    assert_eq!(
        subject,
        "[mwaa-ops] Morning 2026-12-01: 2 resumed, 1 FAILED, saved ~$14.74"
    );
    assert!(subject.len() <= 100 && subject.is_ascii());
    for line in body.lines() {
        assert!(
            line.chars().count() <= WIDTH,
            "too wide for a phone: {line:?}"
        );
    }
    for says in [
        "Saved about $14.74 overnight.",
        "dev-analytics: resumed",
        " paused  11-30 20:00 UTC",
        " resumed 12-01 07:00 UTC",
        " down    11.0 h",
        " saved   ~$5.39",
        "         11.0 h x $0.49/h mw1.small",
        " held    4 arrivals: 3 run, 1 set aside",
        " export  12345 rows, 1.5 MB",
        "         in 4 min 30 s",
        " DAGs    2 on again",
        " missing 1 DAGs: gone",
        "dev-reports: FAILED at RunImport",
        " error   MwaaOps.ImportFailed",
        " saved   ~$9.35",
        " saved   unknown: no price for mw1.2xlarge",
        "1 without a price in us-east-1 (see below).",
        "read 2026-11-30",
    ] {
        assert!(body.contains(says), "{says:?} missing from:\n{body}");
    }
}

#[test]
fn a_night_under_an_hour_reads_in_minutes_and_nothing_saved_is_zero_not_minus_zero() {
    let woken = SEVEN - 11 * HOUR + 25 * 60_000;
    let short = night(
        "dev-a",
        &run("a", "SUCCEEDED", woken),
        Some(&resumed_output(&["etl"], &[], 1, 0)),
        Some(&snapshot()),
        Some(&configuration("mw1.small", 1)),
        None,
        None,
    );
    let prices = Prices::for_region("us-east-1", "").unwrap();
    let (_, body) = digest("2026-11-30", "mwaa-ops", &[short], &prices);
    assert!(
        body.contains(" down    25 min") && body.contains("25 min x $0.49/h mw1.small"),
        "{body}"
    );
    // An empty f64 sum is -0.0.
    let (subject, body) = digest("2026-11-30", "mwaa-ops", &[], &prices);
    assert!(subject.ends_with("saved ~$0.00"), "{subject}");
    assert!(body.contains("Saved about $0.00 overnight."), "{body}");
}
