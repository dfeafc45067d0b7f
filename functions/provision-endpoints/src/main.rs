use provision_endpoints::ops::AwsOps;
use provision_endpoints::ProvisionEndpoints;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        "provision-endpoints",
        |config| async move {
            Ok(ProvisionEndpoints {
                ops: AwsOps {
                    mwaa: common::aws::mwaa_client(&config),
                    ec2: aws_sdk_ec2::Client::new(&config),
                },
                environment_prefix: common::runtime::setting("ENVIRONMENT_NAME_PREFIX")?,
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
