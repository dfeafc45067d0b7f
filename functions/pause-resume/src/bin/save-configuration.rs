//! save-configuration: `{"environment"}` -> the configuration saved to `SUITE_BUCKET`.

use pause_resume::environment::save_configuration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    let bucket = &pause_resume::suite_bucket()?;
    pause_resume::serve("save-configuration", |event| {
        let now = std::time::SystemTime::now().into();
        save_configuration(&aws.mwaa, &aws.s3, bucket, now, event)
    })
    .await
}
