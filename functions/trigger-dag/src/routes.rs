//! Routes: which arrivals start which DAG in which environment. Read once per cold start
//! from the `ROUTES` JSON; a bad entry stops the start-up with a message naming it.

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
    environment: EnvironmentName,
    dag: String,
    #[serde(default)]
    conf: Map<String, Value>,
}

/// A checked route, ready to match object keys.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub bucket: String,
    prefix: Option<String>,
    suffix: Option<String>,
    glob: Option<GlobMatcher>,
    pub environment: EnvironmentName,
    pub dag: String,
    pub conf: Map<String, Value>,
}

impl Route {
    /// Whether an object in `bucket` at `key` arrives on this route (all given filters hold).
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
            && self.glob.as_ref().is_none_or(|g| g.is_match(key))
    }
}

/// Parses and checks the routes document.
pub fn parse_routes(json: &str) -> Result<Vec<Route>, Error> {
    let specs: Vec<Value> = serde_json::from_str(json)
        .map_err(|e| Error::Config(format!("ROUTES is not a JSON list of routes: {e}")))?;
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| check(i, spec))
        .collect()
}

fn check(index: usize, raw: &Value) -> Result<Route, Error> {
    let label = match raw.get("name").and_then(Value::as_str) {
        Some(name) => format!("routes[{index}] ({name:?})"),
        None => format!("routes[{index}]"),
    };
    let bad = |field: &str, reason: String| match field {
        "(event)" => Error::Config(format!("{label}: {reason}")),
        _ => Error::Config(format!("{label}: field `{field}`: {reason}")),
    };
    let spec: RouteSpec = common::event::parse(&label, raw).map_err(|e| match e {
        Error::InvalidEvent { field, reason, .. } => bad(&field, reason),
        other => other,
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
    dag_runs_path(&spec.environment, &spec.dag).map_err(|e| bad("dag", e.to_string()))?;
    let glob = match &spec.glob {
        Some(pattern) => Some(compile_glob(pattern).map_err(|e| bad("glob", e))?),
        None => None,
    };
    Ok(Route {
        name: spec
            .name
            .unwrap_or_else(|| format!("{}/{}", spec.environment, spec.dag)),
        bucket: spec.bucket,
        prefix: spec.prefix,
        suffix: spec.suffix,
        glob,
        environment: spec.environment,
        dag: spec.dag,
        conf: spec.conf,
    })
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
}
