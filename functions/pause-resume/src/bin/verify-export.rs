//! verify-export: checks a metadata export against its manifest.

use pause_resume::verify::verify_export;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    pause_resume::serve("verify-export", |event| verify_export(&aws.s3, event)).await
}
