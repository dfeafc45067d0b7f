//! create-environment: `{"environment"}` -> created from the saved configuration, or not.

use pause_resume::environment::create_environment;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    let bucket = &pause_resume::suite_bucket()?;
    pause_resume::serve("create-environment", |event| {
        create_environment(&aws.mwaa, &aws.s3, bucket, event)
    })
    .await
}
