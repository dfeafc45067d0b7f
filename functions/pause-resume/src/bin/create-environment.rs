//! create-environment: `{"environment"}` -> created from the saved configuration, or not.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::CreateEnvironment).await
}
