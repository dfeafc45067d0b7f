//! The reload decision (what changed, what to fetch, what to keep), a file's validation and
//! the merge with the `ROUTES` parameter.

use super::*;
use crate::routes::parse_routes;

fn listed(key: &str, etag: &str) -> Listed {
    Listed {
        key: key.into(),
        etag: Some(etag.into()),
        last_modified: Some(1_780_000_000),
        size: Some(100),
    }
}

fn good(json: &str) -> Vec<Route> {
    parse_routes(json).unwrap()
}

const SALES: &str = r#"[{"name":"orders","bucket":"landing","prefix":"orders/","environment":"dev-a","dag":"ingest"}]"#;
const BROKEN: &str =
    r#"[{"name":"orders","bucket":"landing","environment":"1bad","dag":"ingest"}]"#;

fn known(entries: &[(&str, &str, Option<&str>)]) -> Files {
    entries
        .iter()
        .map(|(key, etag, routes)| {
            let state = FileState {
                version: listed(key, etag).version(),
                good: routes.map(good),
            };
            (key.to_string(), state)
        })
        .collect()
}

#[test]
fn only_new_and_changed_files_are_fetched_and_deleted_ones_forgotten() {
    let files = known(&[
        ("routes/a.json", "e1", Some(SALES)),
        ("routes/b.json", "e1", Some(SALES)),
        ("routes/c.json", "e1", None),
    ]);
    let mut later = listed("routes/b.json", "e1");
    later.last_modified = Some(1_780_000_060);
    let plan = plan(
        &files,
        &[
            listed("routes/a.json", "e1"),
            later,
            listed("routes/d.json", "e9"),
            listed("routes/", "d41d8"),
            listed("routes/README.md", "x"),
        ],
    );
    let fetch: Vec<&str> = plan.fetch.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(
        fetch,
        ["routes/b.json", "routes/d.json"],
        "a new LastModified is a change too"
    );
    assert_eq!(plan.gone, ["routes/c.json"]);
    assert_eq!(plan.ignored, ["routes/", "routes/README.md"]);
    assert!(plan.changes_anything());

    let same = super::plan(
        &files,
        &[
            listed("routes/a.json", "e1"),
            listed("routes/b.json", "e1"),
            listed("routes/c.json", "e1"),
        ],
    );
    assert_eq!(same, Plan::default(), "nothing changed: nothing fetched");
    assert!(!same.changes_anything());
}

#[test]
fn a_file_too_large_is_rejected_unread() {
    let mut huge = listed("routes/big.json", "e1");
    huge.size = Some(MAX_FILE_BYTES + 1);
    let plan = plan(&Files::new(), &[huge]);
    assert!(plan.fetch.is_empty());
    assert_eq!(plan.too_large.len(), 1);
}

#[test]
fn the_check_is_due_once_per_period() {
    let now = Instant::now();
    let period = Duration::from_secs(60);
    assert!(due(None, now, period), "never looked: look");
    assert!(!due(Some(now), now + Duration::from_secs(59), period));
    assert!(due(Some(now), now + Duration::from_secs(60), period));
    assert!(due(Some(now), now, Duration::ZERO));
}

#[test]
fn a_broken_version_keeps_the_last_good_routes_and_names_file_route_and_field() {
    let mut files = known(&[("routes/sales.json", "e1", Some(SALES))]);
    let rejection = settle(
        &mut files,
        &listed("routes/sales.json", "e2"),
        Ok(BROKEN.as_bytes()),
    )
    .expect("rejected");
    assert_eq!(rejection.kept, Some(1));
    let state = &files["routes/sales.json"];
    assert_eq!(
        state.version.etag.as_deref(),
        Some("e2"),
        "not fetched again until it changes"
    );
    assert_eq!(state.good.as_ref().unwrap()[0].environment(), Some("dev-a"));

    let detail = rejection.detail("suite-bucket");
    assert_eq!(detail["file"], "s3://suite-bucket/routes/sales.json");
    assert_eq!(detail["route"], "routes[0] (\"orders\")");
    assert_eq!(detail["field"], "environment");
    assert!(detail["reason"]
        .as_str()
        .unwrap()
        .contains("\"1bad\" is not an MWAA environment name"));
    assert_eq!(detail["kept_routes"], 1);
    assert_eq!(detail["problems"][0]["name"], "orders");

    // Fixed: its routes replace the last good ones.
    let fixed = SALES.replace("dev-a", "dev-b");
    assert!(settle(
        &mut files,
        &listed("routes/sales.json", "e3"),
        Ok(fixed.as_bytes())
    )
    .is_none());
    assert_eq!(
        files["routes/sales.json"].good.as_ref().unwrap()[0].environment(),
        Some("dev-b")
    );
}

#[test]
fn a_broken_file_never_good_is_skipped() {
    let mut files = Files::new();
    let rejection = settle(
        &mut files,
        &listed("routes/new.json", "e1"),
        Ok(b"[{\"bucket\": "),
    )
    .expect("rejected");
    assert_eq!(rejection.kept, None);
    assert_eq!(rejection.problems[0].index, None);
    assert!(rejection.problems[0]
        .reason
        .starts_with("not a JSON list of routes"));
    assert!(rejection.detail("b")["kept"]
        .as_str()
        .unwrap()
        .starts_with("no routes"));
    assert!(files["routes/new.json"].good.is_none());
    let (routes, _) = merge(&[], &files, &BTreeSet::new());
    assert!(routes.is_empty());

    let unreadable = settle(
        &mut files,
        &listed("routes/x.json", "e1"),
        Err("AccessDenied"),
    );
    assert_eq!(unreadable.unwrap().problems[0].reason, "AccessDenied");
    assert!(settle(
        &mut files,
        &listed("routes/y.json", "e1"),
        Ok(&[0xff, 0xfe])
    )
    .unwrap()
    .problems[0]
        .reason
        .starts_with("not UTF-8"));
}

#[test]
fn names_are_unique_within_a_file() {
    let twice = r#"[{"name":"a","bucket":"landing","environment":"e","dag":"d"},
                    {"bucket":"landing","environment":"e","dag":"d"},
                    {"bucket":"landing","environment":"e","dag":"d"},
                    {"name":"a","bucket":"landing","environment":"e","dag":"other"}]"#;
    let problems = validate(twice.as_bytes()).unwrap_err();
    assert_eq!(
        problems.len(),
        1,
        "unnamed routes are labels only: {problems:?}"
    );
    assert_eq!(
        (problems[0].index, problems[0].field.as_deref()),
        (Some(3), Some("name"))
    );
    assert!(problems[0].reason.contains("routes[0]"));
}

#[test]
fn the_parameter_wins_then_files_in_key_order() {
    let parameter =
        good(r#"[{"name":"orders","bucket":"landing","environment":"param","dag":"d"}]"#);
    let files = known(&[
        (
            "routes/a.json",
            "e1",
            Some(
                r#"[{"name":"orders","bucket":"landing","environment":"file-a","dag":"d"},
                                         {"name":"events","bucket":"landing","environment":"file-a","dag":"e"}]"#,
            ),
        ),
        (
            "routes/b.json",
            "e1",
            Some(
                r#"[{"name":"events","bucket":"landing","environment":"file-b","dag":"e"},
                                         {"bucket":"landing","environment":"file-b","dag":"x"}]"#,
            ),
        ),
    ]);
    let report: BTreeSet<String> =
        ["routes/a.json".to_string(), "routes/b.json".to_string()].into();
    let (routes, rejected) = merge(&parameter, &files, &report);
    let used: Vec<(&str, &str)> = routes
        .iter()
        .map(|r| (r.name.as_str(), r.environment().unwrap()))
        .collect();
    assert_eq!(
        used,
        [
            ("orders", "param"),
            ("events", "file-a"),
            ("file-b/x", "file-b")
        ]
    );
    assert_eq!(rejected.len(), 2);
    assert_eq!(
        (rejected[0].key.as_str(), rejected[0].kept),
        ("routes/a.json", Some(1))
    );
    assert!(rejected[0].problems[0]
        .reason
        .contains("the Routes parameter"));
    assert_eq!(rejected[1].problems[0].field.as_deref(), Some("name"));
    assert!(rejected[1].problems[0].reason.contains("routes/a.json"));

    // Conflicts are reported for the files read in this round only.
    let (_, quiet) = merge(&parameter, &files, &BTreeSet::new());
    assert!(quiet.is_empty());
}
