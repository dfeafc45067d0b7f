use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

use provision_endpoints::ops::AwsOps;
use provision_endpoints::ProvisionEndpoints;

/// Leave this much of the invocation's time for reporting after the last retry.
const MARGIN: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::init_logging();
    let config = common::aws::load_config().await;
    let function = ProvisionEndpoints {
        ops: AwsOps {
            mwaa: common::aws::mwaa_client(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
        },
    };
    tracing::info!("provision-endpoints ready");
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
