//! The routes an arrival is matched against: the `ROUTES` parameter, merged with the routes
//! files under a prefix of the suite bucket. The files are read at the instance's first
//! arrival and re-checked at most once per period (one ListObjectsV2; GetObject only for
//! new or changed files), so routes are at most a period stale and no arrival waits on S3
//! otherwise. The decisions are route_files.rs's; this keeps the state and makes the calls.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use common::retry::with_retries;
use common::{Deadline, Error};

use crate::ops::Ops;
use crate::route_files::{due, merge, plan, settle, Files, Listed, Rejection};
use crate::routes::Route;

/// How often a warm instance looks for changed routes files, unless set.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

/// Where the routes files are.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// The suite bucket (named in alerts).
    pub bucket: String,
    /// e.g. `routes/`: every `.json` object under it is a routes file.
    pub prefix: String,
    /// At most this long between two looks at the prefix.
    pub period: Duration,
}

/// The routes of one arrival, and the files (or routes) refused while getting them.
#[derive(Debug, Clone)]
pub struct Current {
    pub routes: Arc<Vec<Route>>,
    pub rejected: Vec<Rejection>,
}

pub struct RouteCatalog {
    parameter: Arc<Vec<Route>>,
    files: Option<FileSettings>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    files: Files,
    /// The merged routes (`None`: the files were never read).
    merged: Option<Arc<Vec<Route>>>,
    last_check: Option<Instant>,
}

/// The parameter's routes only (no routes files).
impl From<Vec<Route>> for RouteCatalog {
    fn from(parameter: Vec<Route>) -> Self {
        RouteCatalog {
            parameter: Arc::new(parameter),
            files: None,
            state: Mutex::default(),
        }
    }
}

impl RouteCatalog {
    /// The parameter's routes and the files under `settings.prefix`.
    pub fn with_files(parameter: Vec<Route>, settings: FileSettings) -> Self {
        RouteCatalog {
            files: Some(settings),
            ..Self::from(parameter)
        }
    }

    pub fn settings(&self) -> Option<&FileSettings> {
        self.files.as_ref()
    }

    /// The routes to use now. The first call of an instance reads every file (transient
    /// failures retried until `deadline`, then the invocation fails: an arrival is never
    /// matched against routes that could not be read). Later calls look again once the
    /// period has passed; a failure then keeps the routes in use and logs a warning.
    pub async fn current<O: Ops>(&self, ops: &O, deadline: Deadline) -> Result<Current, Error> {
        let Some(settings) = &self.files else {
            return Ok(Current {
                routes: self.parameter.clone(),
                rejected: vec![],
            });
        };
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let (Some(merged), false) = (&state.merged, due(state.last_check, now, settings.period))
        {
            return Ok(Current {
                routes: merged.clone(),
                rejected: vec![],
            });
        }
        let first = state.merged.is_none();
        match self
            .refresh(ops, settings, &mut state, first, deadline)
            .await
        {
            Ok(rejected) => {
                state.last_check = Some(now);
                let routes = state
                    .merged
                    .clone()
                    .unwrap_or_else(|| self.parameter.clone());
                Ok(Current { routes, rejected })
            }
            Err(err) if first => Err(err),
            Err(err) => {
                tracing::warn!(prefix = %settings.prefix, error = %err,
                    "could not look for changed routes files; the routes in use stay");
                state.last_check = Some(now);
                let routes = state
                    .merged
                    .clone()
                    .unwrap_or_else(|| self.parameter.clone());
                Ok(Current {
                    routes,
                    rejected: vec![],
                })
            }
        }
    }

    async fn refresh<O: Ops>(
        &self,
        ops: &O,
        settings: &FileSettings,
        state: &mut State,
        first: bool,
        deadline: Deadline,
    ) -> Result<Vec<Rejection>, Error> {
        let listed = if first {
            with_retries(deadline, || ops.list_route_files(&settings.prefix)).await?
        } else {
            ops.list_route_files(&settings.prefix).await?
        };
        let plan = plan(&state.files, &listed);
        if !plan.ignored.is_empty() {
            tracing::debug!(ignored = ?plan.ignored, "not routes files (not .json)");
        }
        if !first && !plan.changes_anything() {
            return Ok(vec![]);
        }
        let mut rejected = vec![];
        let mut read = BTreeSet::new();
        for object in &plan.too_large {
            let reason = format!(
                "the file is {} bytes; a routes file may have at most {}",
                object.size.unwrap_or_default(),
                crate::route_files::MAX_FILE_BYTES
            );
            read.insert(object.key.clone());
            rejected.extend(settle(&mut state.files, object, Err(&reason)));
        }
        for object in &plan.fetch {
            match self.read(ops, object, first, deadline).await? {
                Some(content) => {
                    read.insert(object.key.clone());
                    rejected.extend(settle(
                        &mut state.files,
                        object,
                        content.as_deref().map_err(String::as_str),
                    ));
                }
                None => continue,
            }
        }
        for key in &plan.gone {
            tracing::info!(file = %key, "routes file deleted: its routes are no longer used");
            state.files.remove(key);
        }
        let (routes, conflicts) = merge(&self.parameter, &state.files, &read);
        rejected.extend(conflicts);
        tracing::info!(
            routes = routes.len(),
            parameter = self.parameter.len(),
            files = state.files.len(),
            read = read.len(),
            rejected = rejected.len(),
            "routes loaded"
        );
        state.merged = Some(Arc::new(routes));
        Ok(rejected)
    }

    /// One changed file: `Some(Ok(content))`, `Some(Err(reason))` when it cannot be read for
    /// good (access denied), `None` to look again next time (deleted meanwhile, or a
    /// transient failure on a warm instance). A first read retries transient failures
    /// until the deadline, then fails.
    async fn read<O: Ops>(
        &self,
        ops: &O,
        object: &Listed,
        first: bool,
        deadline: Deadline,
    ) -> Result<Option<Result<Vec<u8>, String>>, Error> {
        let got = if first {
            with_retries(deadline, || ops.route_file(&object.key)).await
        } else {
            ops.route_file(&object.key).await
        };
        match got {
            Ok(Some(content)) => Ok(Some(Ok(content))),
            Ok(None) => Ok(None),
            Err(err) if err.is_retryable() && first => Err(err),
            Err(err) if err.is_retryable() => {
                tracing::warn!(file = %object.key, error = %err,
                    "could not read a changed routes file; its routes in use stay, next look retries");
                Ok(None)
            }
            Err(err) => Ok(Some(Err(format!("the file cannot be read: {err}")))),
        }
    }
}
