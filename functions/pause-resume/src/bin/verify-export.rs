//! verify-export: checks a metadata export against its manifest.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::VerifyExport).await
}
