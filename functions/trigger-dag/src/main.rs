use std::time::Duration;

use common::Deadline;

use trigger_dag::catalog::{FileSettings, RouteCatalog, DEFAULT_PERIOD};
use trigger_dag::environments::{self, KnownEnvironments};
use trigger_dag::ops::AwsOps;
use trigger_dag::replay::{ReplayLimits, REPLAY_PAGE};
use trigger_dag::routes::parse_routes;
use trigger_dag::TriggerDag;

/// Lambda gives an init phase 10 s; reading the routes files takes a part of it at most.
const INIT_BUDGET: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        "trigger-dag",
        |config| async move {
            let parameter =
                parse_routes(&std::env::var("ROUTES").unwrap_or_else(|_| "[]".into()))?;
            let bucket = common::runtime::setting("HELD_BUCKET")?;
            let routes = match std::env::var("ROUTES_PREFIX") {
                Ok(prefix) if !prefix.is_empty() => RouteCatalog::with_files(
                    parameter,
                    FileSettings {
                        bucket: bucket.clone(),
                        prefix,
                        period: seconds("ROUTES_RELOAD_SECONDS", DEFAULT_PERIOD)?,
                    },
                ),
                _ => RouteCatalog::from(parameter),
            };
            let function = TriggerDag {
                ops: AwsOps {
                    mwaa: common::aws::mwaa_client(&config),
                    serverless: trigger_dag::ops::serverless_client(&config),
                    s3: aws_sdk_s3::Client::new(&config),
                    events: aws_sdk_eventbridge::Client::new(&config),
                    bucket,
                },
                routes,
                environments: KnownEnvironments::new(seconds(
                    "ENVIRONMENT_CACHE_SECONDS",
                    environments::DEFAULT_TRUST,
                )?),
                replay: ReplayLimits {
                    page: count("REPLAY_PAGE", REPLAY_PAGE)?,
                    ..Default::default()
                },
            };
            // Read the routes files now (cold start); if S3 cannot be read within the init
            // budget, the first arrival reads them (and fails, to be retried, if it cannot).
            if let Err(err) = function.load_routes(Deadline::after(INIT_BUDGET)).await {
                tracing::warn!(error = %err, "routes files not read at start-up; the first arrival reads them");
            }
            Ok(function)
        },
        |function, invocation| async move {
            function
                .handle(invocation.payload, invocation.deadline)
                .await
        },
    )
    .await
}

/// A setting in whole seconds: `ROUTES_RELOAD_SECONDS` (how often a warm instance looks for
/// changed routes files), `ENVIRONMENT_CACHE_SECONDS` (how long it trusts what it last saw of an
/// environment: up, and not marked by a pause).
fn seconds(name: &str, default: Duration) -> Result<Duration, common::Error> {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => text.parse::<u64>().map(Duration::from_secs).map_err(|e| {
            common::Error::Config(format!("{name}: {text:?} is not a number of seconds: {e}"))
        }),
        _ => Ok(default),
    }
}

/// A positive count: `REPLAY_PAGE` (held records one replay batch reads; not set by the
/// template, which keeps 500: the bed sets fewer so that a few arrivals make several batches).
fn count(name: &str, default: usize) -> Result<usize, common::Error> {
    match std::env::var(name) {
        Ok(text) if !text.is_empty() => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(common::Error::Config(format!(
                "{name}: {text:?} is not a count from 1 to 1000 (one S3 listing page)"
            ))),
        },
        _ => Ok(default),
    }
}
