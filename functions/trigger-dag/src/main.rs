use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

use trigger_dag::ops::AwsOps;
use trigger_dag::routes::parse_routes;
use trigger_dag::TriggerDag;

/// Leave this much of the invocation's time for reporting after the last retry.
const MARGIN: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::init_logging();
    let routes = parse_routes(&std::env::var("ROUTES").unwrap_or_else(|_| "[]".into()))?;
    let bucket = std::env::var("HELD_BUCKET").map_err(|_| "HELD_BUCKET is not set")?;
    let config = common::aws::load_config().await;
    let function = TriggerDag {
        ops: AwsOps {
            mwaa: common::aws::mwaa_client(&config),
            s3: aws_sdk_s3::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            bucket,
        },
        routes,
    };
    tracing::info!(routes = function.routes.len(), "trigger-dag ready");
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = common::time_left(&event.context, MARGIN);
        function
            .handle(event.payload, budget)
            .await
            .map_err(Error::from)
    }))
    .await
}
