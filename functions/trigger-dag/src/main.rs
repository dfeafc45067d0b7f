use trigger_dag::ops::AwsOps;
use trigger_dag::routes::parse_routes;
use trigger_dag::TriggerDag;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        "trigger-dag",
        |config| async move {
            let routes = parse_routes(&std::env::var("ROUTES").unwrap_or_else(|_| "[]".into()))?;
            tracing::info!(routes = routes.len(), "routes loaded");
            Ok(TriggerDag {
                ops: AwsOps {
                    mwaa: common::aws::mwaa_client(&config),
                    s3: aws_sdk_s3::Client::new(&config),
                    events: aws_sdk_eventbridge::Client::new(&config),
                    bucket: common::runtime::setting("HELD_BUCKET")?,
                },
                routes,
            })
        },
        |function, invocation| async move {
            function
                .handle(invocation.payload, invocation.deadline)
                .await
        },
    )
    .await
}
