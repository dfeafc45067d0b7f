//! run-dag: starts a DAG run that reports to a Step Functions task token.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve_step(pause_resume::Step::RunDag).await
}
