//! Routes: which arrivals start which DAG in which environment, as users write them (the
//! `ROUTES` parameter, and routes files: see route_files.rs). A bad entry is named with its
//! position, name and field: in `ROUTES` it stops the start-up; in a file it rejects the file.

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde_json::{Map, Value};

use common::airflow::dag_runs_path;
use common::{EnvironmentName, Error};

/// A route as users write it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    name: Option<String>,
    bucket: String,
    prefix: Option<String>,
    suffix: Option<String>,
    glob: Option<String>,
    environment: Option<EnvironmentName>,
    dag: Option<String>,
    workflow_arn: Option<String>,
    #[serde(default)]
    conf: Map<String, Value>,
}

/// Where a route's arrivals go: a DAG in an MWAA environment, or an MWAA Serverless
/// workflow (which has no environment to be away, so its runs are never held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Dag {
        environment: EnvironmentName,
        dag: String,
    },
    Workflow {
        arn: String,
    },
}

/// botocore's `WorkflowArn` pattern (mwaa-serverless 2024-07-26), matched whole: a
/// `<name>-<10 characters>` workflow in a partition, region and account.
const WORKFLOW_ARN_PATTERN: &str = r"^arn:aws(?:-(?:cn|us-gov|iso|iso-b|iso-e|iso-f))?:airflow-serverless:[a-z]{2}-(?:[a-z]+-)+[0-9]:[0-9]{12}:workflow/[a-zA-Z0-9][a-zA-Z0-9.\-_]{0,254}-[a-zA-Z0-9]{10}$";

/// Whether MWAA Serverless would take `arn` as a `WorkflowArn` (1..2048 characters).
pub fn is_workflow_arn(arn: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex_lite::Regex> = std::sync::OnceLock::new();
    (1..=2048).contains(&arn.len())
        && PATTERN
            .get_or_init(|| regex_lite::Regex::new(WORKFLOW_ARN_PATTERN).expect("a valid pattern"))
            .is_match(arn)
}

/// A checked route, ready to match object keys.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Whether `name` was given (else it is `<environment>/<dag>`, a label only).
    pub named: bool,
    pub bucket: String,
    prefix: Option<String>,
    suffix: Option<String>,
    glob: Option<GlobMatcher>,
    pub destination: Destination,
    pub conf: Map<String, Value>,
}

impl Route {
    /// The environment of a DAG route (`None`: a workflow route).
    pub fn environment(&self) -> Option<&str> {
        match &self.destination {
            Destination::Dag { environment, .. } => Some(environment.as_str()),
            Destination::Workflow { .. } => None,
        }
    }

    /// Whether an object in `bucket` at `key` arrives on this route (all given filters hold).
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
            && self.glob.as_ref().is_none_or(|g| g.is_match(key))
    }
}

/// What is wrong with one route (or with the whole document), for messages and alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Position in the list (`None`: the document itself is wrong).
    pub index: Option<usize>,
    /// The route's `name`, when it has one.
    pub name: Option<String>,
    /// The field at fault (`None`: the route or document as a whole).
    pub field: Option<String>,
    pub reason: String,
}

impl Problem {
    /// How people name the route: `routes[1] ("orders")`, `routes[1]`, or `(document)`.
    pub fn route(&self) -> String {
        match (self.index, &self.name) {
            (Some(i), Some(name)) => format!("routes[{i}] ({name:?})"),
            (Some(i), None) => format!("routes[{i}]"),
            (None, _) => "(the whole document)".into(),
        }
    }

    /// A problem of the document as a whole (not JSON, not a list, unreadable).
    pub fn document(reason: impl Into<String>) -> Self {
        Problem {
            index: None,
            name: None,
            field: None,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.index, &self.field) {
            (None, _) => write!(f, "{}", self.reason),
            (Some(_), Some(field)) => {
                write!(f, "{}: field `{field}`: {}", self.route(), self.reason)
            }
            (Some(_), None) => write!(f, "{}: {}", self.route(), self.reason),
        }
    }
}

/// Parses and checks the routes document (the `Routes` parameter): the first problem stops
/// the start-up.
pub fn parse_routes(json: &str) -> Result<Vec<Route>, Error> {
    parse_route_list(json).map_err(|problems| match problems.first() {
        Some(p) if p.index.is_none() => Error::Config(format!("ROUTES: {p}")),
        Some(p) => Error::Config(p.to_string()),
        None => Error::Config("ROUTES: no routes".into()),
    })
}

/// Parses and checks a routes document, reporting every route that does not validate
/// (never empty on `Err`).
pub fn parse_route_list(json: &str) -> Result<Vec<Route>, Vec<Problem>> {
    let specs: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| vec![Problem::document(format!("not a JSON list of routes: {e}"))])?;
    let (mut routes, mut problems) = (vec![], vec![]);
    for (i, spec) in specs.iter().enumerate() {
        match check(i, spec) {
            Ok(route) => routes.push(route),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(routes)
    } else {
        Err(problems)
    }
}

fn check(index: usize, raw: &Value) -> Result<Route, Problem> {
    let name = raw.get("name").and_then(Value::as_str).map(str::to_owned);
    let bad = |field: &str, reason: String| Problem {
        index: Some(index),
        name: name.clone(),
        field: (field != "(event)").then(|| field.to_owned()),
        reason,
    };
    let spec: RouteSpec = common::event::parse("route", raw).map_err(|e| match e {
        Error::InvalidEvent { field, reason, .. } => bad(&field, reason),
        other => bad("(event)", other.to_string()),
    })?;
    if spec.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(bad(
            "name",
            "empty: leave it out to name the route <environment>/<dag>".into(),
        ));
    }
    if !valid_bucket_name(&spec.bucket) {
        return Err(bad(
            "bucket",
            format!("{:?} is not an S3 bucket name", spec.bucket),
        ));
    }
    let destination = destination(
        "a route",
        spec.environment.as_ref(),
        spec.dag.as_deref(),
        spec.workflow_arn.as_deref(),
    )
    .map_err(|(field, reason)| bad(field, reason))?;
    let glob = match &spec.glob {
        Some(pattern) => Some(compile_glob(pattern).map_err(|e| bad("glob", e))?),
        None => None,
    };
    let default_name = match &destination {
        Destination::Dag { environment, dag } => format!("{environment}/{dag}"),
        Destination::Workflow { arn } => arn.clone(),
    };
    Ok(Route {
        named: spec.name.is_some(),
        name: spec.name.unwrap_or(default_name),
        bucket: spec.bucket,
        prefix: spec.prefix,
        suffix: spec.suffix,
        glob,
        destination,
        conf: spec.conf,
    })
}

/// Exactly one of the two forms: `environment` + `dag`, or `workflow_arn`. Routes and
/// schedule firings (`what`: "a route", "a schedule") name their destination alike; the
/// error is the field to blame and why.
pub(crate) fn destination(
    what: &str,
    environment: Option<&EnvironmentName>,
    dag: Option<&str>,
    workflow_arn: Option<&str>,
) -> Result<Destination, (&'static str, String)> {
    match (environment, dag, workflow_arn) {
        (Some(environment), Some(dag), None) => {
            dag_runs_path(environment, dag).map_err(|e| ("dag", e.to_string()))?;
            Ok(Destination::Dag {
                environment: environment.clone(),
                dag: dag.to_owned(),
            })
        }
        (None, None, Some(arn)) if is_workflow_arn(arn) => {
            Ok(Destination::Workflow { arn: arn.to_owned() })
        }
        (None, None, Some(arn)) => Err((
            "workflow_arn",
            format!("{arn:?} is not an MWAA Serverless workflow ARN (arn:aws:airflow-serverless:<region>:<account>:workflow/<name>-<10 characters>)"),
        )),
        (_, _, Some(_)) => Err((
            "workflow_arn",
            format!("{what} names either a workflow (workflow_arn) or an environment and a DAG, not both"),
        )),
        (None, _, None) => Err(("environment", "missing: give environment and dag, or workflow_arn".into())),
        (Some(_), None, None) => Err(("dag", "missing: give environment and dag, or workflow_arn".into())),
    }
}

/// `*` and `?` stay within one path segment; `**` crosses `/`.
fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    let glob: Glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(glob.compile_matcher())
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(json: &str) -> Vec<Route> {
        parse_routes(json).unwrap()
    }

    #[test]
    fn prefix_suffix_and_glob_all_have_to_hold() {
        let r = &routes(
            r#"[{"bucket":"landing","prefix":"orders/","suffix":".csv","glob":"orders/*/day=*.csv",
                 "environment":"dev-a","dag":"ingest"}]"#,
        )[0];
        assert!(r.matches("landing", "orders/eu/day=1.csv"));
        assert!(
            !r.matches("landing", "orders/eu/x/day=1.csv"),
            "* stays in one segment"
        );
        assert!(!r.matches("landing", "orders/eu/day=1.json"));
        assert!(!r.matches("other", "orders/eu/day=1.csv"));
    }

    #[test]
    fn a_route_without_filters_takes_the_whole_bucket() {
        let r = &routes(r#"[{"bucket":"landing","environment":"dev-a","dag":"ingest"}]"#)[0];
        assert!(r.matches("landing", "anything/at all+%ü"));
        assert_eq!(r.name, "dev-a/ingest");
    }

    #[test]
    fn double_star_crosses_folders() {
        let r = &routes(
            r#"[{"bucket":"landing","glob":"raw/**/*.parquet","environment":"e","dag":"d"}]"#,
        )[0];
        assert!(r.matches("landing", "raw/a/b/c.parquet"));
        assert!(!r.matches("landing", "raw/a/b/c.csv"));
    }

    #[test]
    fn bad_entries_are_named_with_their_field() {
        let cases = [
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"d"},{"name":"x","bucket":"ok-bucket","environment":"1bad","dag":"d"}]"#,
                "routes[1] (\"x\"): field `environment`: \"1bad\" is not an MWAA environment name",
            ),
            (
                r#"[{"bucket":"Bad_Bucket","environment":"e","dag":"d"}]"#,
                "routes[0]: field `bucket`",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"no spaces"}]"#,
                "routes[0]: field `dag`",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":".."}]"#,
                "routes[0]: field `dag`: invalid request for environment e: DAG id \"..\" is a path segment",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"."}]"#,
                "routes[0]: field `dag`",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"d","glob":"a[b"}]"#,
                "routes[0]: field `glob`",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"d","prefx":"typo/"}]"#,
                "routes[0]: field `prefx`: unknown field",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e","dag":"d","conf":[1]}]"#,
                "routes[0]: field `conf`",
            ),
            (
                r#"[{"environment":"e","dag":"d"}]"#,
                "routes[0]: missing field `bucket`",
            ),
            (
                r#"[{"name":" ","bucket":"ok-bucket","environment":"e","dag":"d"}]"#,
                "routes[0] (\" \"): field `name`: empty",
            ),
        ];
        for (json, expected) in cases {
            let err = parse_routes(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}\n -> {err}");
        }
        assert!(parse_routes("{")
            .unwrap_err()
            .to_string()
            .contains("ROUTES"));
    }

    const ARN: &str =
        "arn:aws:airflow-serverless:eu-west-1:123456789012:workflow/etl.v2_x-A1b2C3d4E5";

    #[test]
    fn a_route_may_name_a_workflow_instead_of_an_environment_and_a_dag() {
        let r = &routes(&format!(
            r#"[{{"bucket":"landing","prefix":"in/","workflow_arn":"{ARN}"}}]"#
        ))[0];
        assert_eq!(r.destination, Destination::Workflow { arn: ARN.into() });
        assert_eq!((r.name.as_str(), r.environment()), (ARN, None));
        assert!(r.matches("landing", "in/x.csv"));
        for arn in [
            "arn:aws-us-gov:airflow-serverless:us-gov-west-1:123456789012:workflow/a-0123456789",
            "arn:aws:airflow-serverless:ap-southeast-2:123456789012:workflow/a-b-c-0123456789",
        ] {
            assert!(is_workflow_arn(arn), "{arn}");
        }
        for arn in [
            "",
            "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl",
            "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-012345678",
            "arn:aws:airflow-serverless:us-east-1:12345678901:workflow/etl-0123456789",
            "arn:aws:airflow:us-east-1:123456789012:environment/etl-0123456789",
            "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/-x-0123456789",
            "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-0123456789/x",
            "xarn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-0123456789",
        ] {
            assert!(!is_workflow_arn(arn), "{arn}");
        }
    }

    #[test]
    fn a_route_names_exactly_one_destination() {
        let cases = [
            (
                format!(r#"[{{"bucket":"ok-bucket","workflow_arn":"{ARN}","environment":"e","dag":"d"}}]"#),
                "routes[0]: field `workflow_arn`: a route names either a workflow",
            ),
            (
                format!(r#"[{{"bucket":"ok-bucket","workflow_arn":"{ARN}","dag":"d"}}]"#),
                "routes[0]: field `workflow_arn`: a route names either",
            ),
            (
                r#"[{"name":"w","bucket":"ok-bucket","workflow_arn":"arn:aws:airflow-serverless:us-east-1:1:workflow/x"}]"#.into(),
                "routes[0] (\"w\"): field `workflow_arn`: \"arn:aws:airflow-serverless:us-east-1:1:workflow/x\" is not an MWAA Serverless workflow ARN",
            ),
            (
                r#"[{"bucket":"ok-bucket","dag":"d"}]"#.into(),
                "routes[0]: field `environment`: missing",
            ),
            (
                r#"[{"bucket":"ok-bucket","environment":"e"}]"#.into(),
                "routes[0]: field `dag`: missing",
            ),
            (
                r#"[{"bucket":"ok-bucket"}]"#.into(),
                "routes[0]: field `environment`: missing: give environment and dag, or workflow_arn",
            ),
            (
                format!(r#"[{{"bucket":"ok-bucket","workflow_arn":"{ARN}","workflow":"x"}}]"#),
                "routes[0]: field `workflow`: unknown field",
            ),
            (
                r#"[{"bucket":"ok-bucket","workflow_arn":7}]"#.into(),
                "routes[0]: field `workflow_arn`",
            ),
        ];
        for (json, expected) in cases {
            let err = parse_routes(&json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}\n -> {err}");
        }
    }

    #[test]
    fn a_list_reports_every_bad_route_with_its_position_name_and_field() {
        let problems = parse_route_list(
            r#"[{"bucket":"ok-bucket","environment":"e","dag":"d"},
                {"name":"x","bucket":"ok-bucket","environment":"1bad","dag":"d"},
                {"bucket":"ok-bucket","environment":"e","dag":"d","prefx":"a/"}]"#,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(
            (
                problems[0].index,
                problems[0].name.as_deref(),
                problems[0].field.as_deref()
            ),
            (Some(1), Some("x"), Some("environment"))
        );
        assert_eq!(problems[0].route(), "routes[1] (\"x\")");
        assert_eq!(problems[1].route(), "routes[2]");
        assert_eq!(problems[1].field.as_deref(), Some("prefx"));
        let whole = parse_route_list(r#"{"bucket":"b"}"#).unwrap_err();
        assert_eq!((whole[0].index, whole[0].field.as_deref()), (None, None));
        assert!(
            whole[0].reason.starts_with("not a JSON list of routes"),
            "{whole:?}"
        );
        assert!(
            routes(r#"[{"name":"n","bucket":"ok-bucket","environment":"e","dag":"d"}]"#)[0].named
        );
    }
}
