//! enable-dags: unpauses the DAGs that were active before the pause.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::EnableDags).await
}
