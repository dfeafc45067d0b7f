//! delete-environment: `{"environment"}` -> deleted, or already gone.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::DeleteEnvironment).await
}
