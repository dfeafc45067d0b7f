//! environment-status: `{"environment", "skip_marker"?}` -> `{"environment", "status", ...}`.

use pause_resume::environment::environment_status;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    let bucket = &pause_resume::suite_bucket()?;
    pause_resume::serve("environment-status", |event| {
        environment_status(&aws.mwaa, &aws.s3, bucket, event)
    })
    .await
}
