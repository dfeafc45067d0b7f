//! Routes files in the suite bucket (`<prefix>*.json`, one JSON list of routes each): the
//! decisions, without I/O. Which files to fetch after a listing (new or changed ETag /
//! LastModified), which to forget (deleted), what a fetched file gives (its routes, or a
//! rejection that keeps the file's last good routes), and how the files and the `ROUTES`
//! parameter merge. catalog.rs does the calls and keeps the state per warm instance.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::routes::{parse_route_list, Problem, Route};

/// A routes file larger than this is rejected without being read.
pub const MAX_FILE_BYTES: i64 = 1024 * 1024;

/// One object under the prefix, as ListObjectsV2 shows it (`Key`, `ETag`, `LastModified`
/// in seconds since the epoch, `Size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub etag: Option<String>,
    pub last_modified: Option<i64>,
    pub size: Option<i64>,
}

/// What tells two versions of a file apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub etag: Option<String>,
    pub last_modified: Option<i64>,
}

impl Listed {
    pub fn version(&self) -> Version {
        Version {
            etag: self.etag.clone(),
            last_modified: self.last_modified,
        }
    }
}

/// What this instance knows of one file: the version it last read, and the routes of the
/// last version that validated (`None`: no version did yet).
#[derive(Debug, Clone)]
pub struct FileState {
    pub version: Version,
    pub good: Option<Vec<Route>>,
}

/// Every known file, by key (key order is merge order).
pub type Files = BTreeMap<String, FileState>;

/// What to do after a listing; files neither fetched nor gone are kept as they are.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New or changed: read them.
    pub fetch: Vec<Listed>,
    /// New or changed, but larger than [`MAX_FILE_BYTES`]: rejected unread.
    pub too_large: Vec<Listed>,
    /// Deleted: their routes are no longer used.
    pub gone: Vec<String>,
    /// Not `.json` (folder markers, READMEs): never read.
    pub ignored: Vec<String>,
}

impl Plan {
    /// Whether the merged routes may differ after this plan.
    pub fn changes_anything(&self) -> bool {
        !(self.fetch.is_empty() && self.too_large.is_empty() && self.gone.is_empty())
    }
}

/// Whether the prefix is due for another listing (never listed: yes).
pub fn due(last_check: Option<Instant>, now: Instant, period: Duration) -> bool {
    last_check.is_none_or(|last| now.saturating_duration_since(last) >= period)
}

/// Compares a listing with what is known.
pub fn plan(known: &Files, listed: &[Listed]) -> Plan {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for object in listed {
        if !object.key.ends_with(".json") {
            plan.ignored.push(object.key.clone());
            continue;
        }
        seen.insert(object.key.as_str());
        if known
            .get(&object.key)
            .is_some_and(|state| state.version == object.version())
        {
            continue;
        }
        if object.size.is_some_and(|size| size > MAX_FILE_BYTES) {
            plan.too_large.push(object.clone());
        } else {
            plan.fetch.push(object.clone());
        }
    }
    plan.gone = known
        .keys()
        .filter(|key| !seen.contains(key.as_str()))
        .cloned()
        .collect();
    plan
}

/// Checks one file's content: a JSON list of valid routes, explicit names unique in it.
pub fn validate(content: &[u8]) -> Result<Vec<Route>, Vec<Problem>> {
    let text = std::str::from_utf8(content)
        .map_err(|e| vec![Problem::document(format!("not UTF-8 text: {e}"))])?;
    let routes = parse_route_list(text)?;
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = vec![];
    for (i, route) in routes.iter().enumerate().filter(|(_, r)| r.named) {
        if let Some(&j) = first.get(route.name.as_str()) {
            problems.push(Problem {
                index: Some(i),
                name: Some(route.name.clone()),
                field: Some("name".into()),
                reason: format!("{:?} is also the name of routes[{j}]", route.name),
            });
        } else {
            first.insert(&route.name, i);
        }
    }
    if problems.is_empty() {
        Ok(routes)
    } else {
        Err(problems)
    }
}

/// A file (or some of its routes) not used, and what is used instead: for the log and the
/// `Routes Rejected` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub key: String,
    pub etag: Option<String>,
    pub problems: Vec<Problem>,
    /// Routes of this file still used: the last good version's (`None`: none, the file is
    /// skipped), or the file's other routes when only some were refused at merge.
    pub kept: Option<usize>,
}

impl Rejection {
    /// The event's detail; `file` names the file as people copy it (`s3://bucket/key`).
    pub fn detail(&self, bucket: &str) -> Value {
        let first = self.problems.first();
        let problems: Vec<Value> = self
            .problems
            .iter()
            .map(|p| {
                json!({"route": p.route(), "index": p.index, "name": p.name, "field": p.field,
                       "reason": p.reason, "message": p.to_string()})
            })
            .collect();
        json!({
            "file": format!("s3://{bucket}/{}", self.key),
            "bucket": bucket,
            "key": self.key,
            "etag": self.etag,
            "route": first.map(Problem::route),
            "field": first.and_then(|p| p.field.clone()),
            "reason": first.map(|p| p.reason.clone()),
            "problems": problems,
            "kept_routes": self.kept,
            "kept": match self.kept {
                Some(n) => format!("{n} routes of this file are used (the last version that validated, or the file's other routes)"),
                None => "no routes of this file are used: no version of it validated yet".into(),
            },
        })
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        format!("{}: {}", self.key, problems.join("; "))
    }
}

/// Records what was read of one changed file: its routes when it validates, else a
/// rejection that keeps the file's last good routes. `content` is `Err(reason)` when the
/// file could not be read for good (too large, access denied).
pub fn settle(
    files: &mut Files,
    listed: &Listed,
    content: Result<&[u8], &str>,
) -> Option<Rejection> {
    let checked = content
        .map_err(|reason| vec![Problem::document(reason)])
        .and_then(validate);
    let previous = files.remove(&listed.key).and_then(|state| state.good);
    let (good, rejection) = match checked {
        Ok(routes) => (Some(routes), None),
        Err(problems) => {
            let rejection = Rejection {
                key: listed.key.clone(),
                etag: listed.etag.clone(),
                problems,
                kept: previous.as_ref().map(Vec::len),
            };
            (previous, Some(rejection))
        }
    };
    files.insert(
        listed.key.clone(),
        FileState {
            version: listed.version(),
            good,
        },
    );
    rejection
}

/// The routes in use: the parameter's first, then each file's in key order. A named route
/// whose name the parameter or an earlier file already uses is not used, and is reported
/// (for the files in `report`: those read in this round) as a rejection of its file.
pub fn merge(
    parameter: &[Route],
    files: &Files,
    report: &BTreeSet<String>,
) -> (Vec<Route>, Vec<Rejection>) {
    let mut routes: Vec<Route> = parameter.to_vec();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for route in parameter.iter().filter(|r| r.named) {
        owner
            .entry(route.name.clone())
            .or_insert_with(|| "the Routes parameter".into());
    }
    let mut rejections = vec![];
    for (key, state) in files {
        let Some(good) = &state.good else { continue };
        let mut problems = vec![];
        for (i, route) in good.iter().enumerate() {
            if route.named {
                if let Some(other) = owner.get(&route.name) {
                    problems.push(Problem {
                        index: Some(i),
                        name: Some(route.name.clone()),
                        field: Some("name".into()),
                        reason: format!(
                            "{:?} is already a route of {other}, which wins: this one is not used",
                            route.name
                        ),
                    });
                    continue;
                }
                owner.insert(route.name.clone(), key.clone());
            }
            routes.push(route.clone());
        }
        if !problems.is_empty() && report.contains(key) {
            rejections.push(Rejection {
                key: key.clone(),
                etag: state.version.etag.clone(),
                kept: Some(good.len() - problems.len()),
                problems,
            });
        }
    }
    (routes, rejections)
}

#[cfg(test)]
mod tests;
