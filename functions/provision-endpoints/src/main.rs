use provision_endpoints::accounts::Accounts;
use provision_endpoints::environments::Participants;
use provision_endpoints::ops::AwsOps;
use provision_endpoints::ProvisionEndpoints;

/// An optional setting ("" when unset: a deployment without participants).
fn optional(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        "provision-endpoints",
        |config| async move {
            let partition = match optional("PARTITION") {
                p if p.is_empty() => "aws".to_owned(),
                p => p,
            };
            let accounts = Accounts::from_settings(
                &partition,
                &common::runtime::setting("OWNER_ACCOUNT")?,
                &optional("PARTICIPANT_ACCOUNTS"),
                &optional("PARTICIPANT_ROLE_NAME"),
                &optional("PARTICIPANT_EXTERNAL_ID"),
            )?;
            Ok(ProvisionEndpoints {
                ops: AwsOps {
                    mwaa: common::aws::mwaa_client(&config),
                    ec2: aws_sdk_ec2::Client::new(&config),
                    participants: Participants::new(&config, &config, &accounts.external_id),
                },
                environment_prefix: common::runtime::setting("ENVIRONMENT_NAME_PREFIX")?,
                accounts,
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
