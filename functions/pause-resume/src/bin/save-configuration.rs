//! save-configuration: `{"environment"}` -> the configuration saved to `SUITE_BUCKET`.

use pause_resume::environment::save_configuration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("save-configuration", |aws, invocation| async move {
        let bucket = pause_resume::suite_bucket()?;
        let now = std::time::SystemTime::now().into();
        save_configuration(&aws.mwaa, &aws.s3, &bucket, now, invocation.payload).await
    })
    .await
}
