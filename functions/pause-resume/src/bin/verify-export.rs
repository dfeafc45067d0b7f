//! verify-export: checks a metadata export against its manifest.

use pause_resume::verify::verify_export;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("verify-export", |aws, invocation| async move {
        verify_export(&aws.s3, invocation.payload).await
    })
    .await
}
