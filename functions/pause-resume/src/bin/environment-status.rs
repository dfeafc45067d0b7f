//! environment-status: `{"environment", "skip_marker"?}` -> `{"environment", "status", ...}`.

use pause_resume::environment::environment_status;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("environment-status", |aws, invocation| async move {
        let bucket = pause_resume::suite_bucket()?;
        environment_status(&aws.mwaa, &aws.s3, &bucket, invocation.payload).await
    })
    .await
}
