use std::time::Duration;

use common::runtime::setting;
use common::Error;
use notify::decide::Settings;
use notify::morning::prices::Prices;
use notify::morning::DigestSettings;
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

/// The morning digest's settings: on when `RESUME_STATE_MACHINE_ARN` is set; it goes to
/// `DIGEST_TOPIC_ARN` (else the alert topic) with the region's prices and `DIGEST_PRICES`.
fn digest_settings(config: &common::aws::SdkConfig) -> Result<Option<DigestSettings>, Error> {
    let Ok(resume) = setting("RESUME_STATE_MACHINE_ARN") else {
        return Ok(None);
    };
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let prices = Prices::for_region(&region, &std::env::var("DIGEST_PRICES").unwrap_or_default())
        .map_err(Error::Config)?;
    Ok(Some(DigestSettings {
        resume_state_machine_arn: resume,
        topic_arn: setting("DIGEST_TOPIC_ARN").or_else(|_| setting("TOPIC_ARN"))?,
        prices,
    }))
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
                digest: digest_settings(&config)?,
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
