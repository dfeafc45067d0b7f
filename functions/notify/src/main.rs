use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

use notify::decide::Settings;
use notify::ops::AwsOps;
use notify::Notify;

/// Leave this much of the invocation's time for reporting after the last retry.
const MARGIN: Duration = Duration::from_secs(3);

fn setting(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn minutes(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name} must be a whole number of minutes, got {text:?}").into()),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    common::init_logging();
    let config = common::aws::load_config().await;
    let function = Notify {
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
        },
        window: Duration::from_secs(60 * minutes("ALERT_WINDOW_MINUTES", 60)?),
    };
    tracing::info!("notify ready");
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = common::time_left(&event.context, MARGIN);
        let own_arn = event.context.invoked_function_arn.clone();
        function
            .handle(event.payload, &own_arn, budget)
            .await
            .map_err(Error::from)
    }))
    .await
}
