//! create-environment: `{"environment"}` -> created from the saved configuration, or not.

use pause_resume::environment::create_environment;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("create-environment", |aws, invocation| async move {
        let bucket = pause_resume::suite_bucket()?;
        create_environment(&aws.mwaa, &aws.s3, &bucket, invocation.payload).await
    })
    .await
}
