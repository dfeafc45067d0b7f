//! environment-status: `{"environment", "skip_marker"?}` -> `{"environment", "status", ...}`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::EnvironmentStatus).await
}
