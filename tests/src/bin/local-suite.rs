//! `scripts/local-up`: the suite on the bed, no AWS account. Starts moto, PostgreSQL with
//! Airflow 2.10.3 and 3.0.6 and the local MWAA control plane, creates one environment per
//! Airflow, deploys the arrival path from the template, then hands every event its rule
//! delivers to trigger-dag and prints what happened, until Ctrl-C.

use std::time::Duration;

use mwaa_ops_tests::arrivals::{Arrivals, LANDING};
use mwaa_ops_tests::bed;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use serde_json::json;

#[tokio::main]
async fn main() {
    let bed = bed();
    let mwaa = bed.mwaa().await;
    let environments = [("local-airflow2", "2.10.3"), ("local-airflow3", "3.0.6")];
    for (name, version) in environments {
        NewEnvironment::new(name, version).create(&mwaa).await;
    }
    for (name, _) in environments {
        wait_for_status(&mwaa, name, "AVAILABLE", Duration::from_secs(120)).await;
    }
    let routes = json!([
        {"name": "airflow2", "bucket": LANDING, "prefix": "airflow2/", "environment": "local-airflow2", "dag": "bed_smoke"},
        {"name": "airflow3", "bucket": LANDING, "prefix": "airflow3/", "environment": "local-airflow3", "dag": "bed_smoke"}
    ]);
    let arrivals = Arrivals::deploy(bed, routes.clone()).await;
    let airflows: Vec<String> = bed
        .airflows
        .iter()
        .map(|a| {
            format!(
                "  Airflow {}: {} (user {} / {})",
                a.version, a.base_url, a.username, a.password
            )
        })
        .collect();
    println!(
        "mwaa-ops runs locally.\n\
         \n  moto (S3, EventBridge, SQS, SNS, EC2, Step Functions): {moto}\n  \
         MWAA control plane: {mwaa}\n{airflows}\n\
         \nEnvironments local-airflow2 and local-airflow3 are AVAILABLE. Routes:\n  {routes}\n\
         \nDrop a file and watch its DAG run start:\n  \
         curl -X PUT --data-binary 'a,b' {moto}/{LANDING}/airflow3/orders.csv\n\
         \nUse any AWS SDK or CLI with AWS_ENDPOINT_URL={moto} (MWAA: AWS_ENDPOINT_URL_MWAA={mwaa}),\n\
         region {region}, any credentials. Ctrl-C stops everything.\n",
        moto = bed.moto_url,
        mwaa = bed.mwaa_url,
        airflows = airflows.join("\n"),
        region = bed.region,
    );
    let pump = async {
        loop {
            for event in arrivals.rule.take(0, Duration::from_secs(1)).await {
                let key = event["detail"]["object"]["key"].clone();
                match arrivals
                    .function
                    .handle(event, mwaa_ops_tests::arrivals::BUDGET)
                    .await
                {
                    Ok(report) => println!("arrival {key}: {report}"),
                    Err(err) => println!("arrival {key} FAILED: {err}"),
                }
            }
        }
    };
    tokio::select! {
        _ = pump => {}
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    // Exiting closes the bed's standard input: it stops every process it started.
}
