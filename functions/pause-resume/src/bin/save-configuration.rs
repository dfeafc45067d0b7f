//! save-configuration: `{"environment"}` -> the configuration saved to `SUITE_BUCKET`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::SaveConfiguration).await
}
