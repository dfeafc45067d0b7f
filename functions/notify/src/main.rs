use std::time::Duration;

use common::runtime::setting;
use common::Error;
use notify::decide::Settings;
use notify::ops::AwsOps;
use notify::Notify;

fn minutes(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(text) => text.parse().map_err(|_| {
            Error::Config(format!(
                "{name} must be a whole number of minutes, got {text:?}"
            ))
        }),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::runtime::serve(
        "notify",
        |config| async move {
            Ok(Notify {
                ops: AwsOps {
                    sns: aws_sdk_sns::Client::new(&config),
                    s3: aws_sdk_s3::Client::new(&config),
                    sfn: aws_sdk_sfn::Client::new(&config),
                    mwaa: common::aws::mwaa_client(&config),
                    scheduler: aws_sdk_scheduler::Client::new(&config),
                    topic_arn: setting("TOPIC_ARN")?,
                    bucket: setting("SUITE_BUCKET")?,
                    scheduler_role_arn: setting("SCHEDULER_ROLE_ARN")?,
                    dead_letter_arn: std::env::var("FAILED_EVENTS_QUEUE_ARN").ok(),
                },
                settings: Settings {
                    region: config.region().map(|r| r.to_string()).unwrap_or_default(),
                    pending_minutes: minutes("PENDING_ALERT_MINUTES", 60)?,
                    environment_prefix: setting("ENVIRONMENT_NAME_PREFIX")?,
                },
                window: Duration::from_secs(60 * minutes("ALERT_WINDOW_MINUTES", 60)?),
            })
        },
        |function, invocation| async move {
            let own_arn = &invocation.function_arn;
            function
                .handle(invocation.payload.clone(), own_arn, invocation.deadline)
                .await
        },
    )
    .await
}
