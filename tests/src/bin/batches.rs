//! Measures the resume's two loops on the bed (prints, asserts nothing): the replay of many
//! held arrivals, one trigger-dag invocation per batch as ReplayHeldArrivals / MoreHeldArrivals
//! run them, and enable-dags over many DAGs, one invocation per batch as EnableDags /
//! MoreDagsToEnable run them. trigger-dag's binary behind the bed's Lambda service (its 90 s
//! Timeout, its role of the template), enable-dags' handler in-process; the local MWAA control
//! plane, real Airflow 2.10.3.
//!
//!     target/debug/batches [HELD] [DAGS]     (defaults 10000 and 1000)
//!
//! The DAG ids do not exist in the bed's Airflow: each PATCH is a full InvokeRestApi round
//! trip answered 404 ("missing"), the same path and cost as an unpause.

use std::time::{Duration, Instant};

use mwaa_ops_tests::arrivals::{Arrivals, SUITE_BUCKET};
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::session;
use pause_resume::steps::enable_dags::enable_dags;
use serde_json::{json, Value};
use tokio::task::JoinSet;

const ENV: &str = "bench-batches";

/// Lambda's deadline for a function with this timeout, less the margin the code keeps.
fn deadline(timeout_secs: u64) -> common::Deadline {
    common::Deadline::after(Duration::from_secs(timeout_secs) - common::runtime::MARGIN)
}

fn summary(label: &str, times: &[Duration], total: Duration) {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    let max = secs.iter().cloned().fold(0.0, f64::max);
    let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
    println!(
        "{label}: {} invocations, per invocation mean {mean:.2} s, max {max:.2} s; total {:.1} s",
        secs.len(),
        total.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let held: usize = args.next().map_or(10_000, |a| a.parse().expect("HELD"));
    let dags: usize = args.next().map_or(1_000, |a| a.parse().expect("DAGS"));
    let bed = session().await;
    let mwaa = bed.mwaa().await;
    NewEnvironment::new(ENV, "2.10.3").create(&mwaa).await;
    wait_for_status(&mwaa, ENV, "AVAILABLE", Duration::from_secs(60)).await;
    let arrivals = Arrivals::deploy(&bed, json!([]), "bench").await;

    // The held records, as trigger-dag writes them while the environment is away.
    let started = Instant::now();
    let mut puts = JoinSet::new();
    for i in 0..held {
        let s3 = arrivals.s3.clone();
        let run_id = format!("s3__night-{i:05}.csv__{i:024x}");
        let target = json!({"environment": ENV, "route": "bench", "event_id": format!("e{i}"),
            "dag_id": "bed_smoke", "run_id": run_id, "conf": {"key": format!("night/{i}.csv")}});
        puts.spawn(async move {
            s3.put_object()
                .bucket(SUITE_BUCKET)
                .key(format!("held/{ENV}/bed_smoke/{run_id}.json"))
                .body(target.to_string().into_bytes().into())
                .send()
                .await
                .expect("PutObject");
        });
        if puts.len() >= 32 {
            puts.join_next().await;
        }
    }
    while puts.join_next().await.is_some() {}
    println!(
        "{held} held records written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let replay = json!({"replay": {"environment": ENV}});
    let (mut times, mut replayed) = (vec![], 0);
    let started = Instant::now();
    loop {
        let one = Instant::now();
        let report: Value = arrivals
            .invoke(&replay)
            .await
            .unwrap_or_else(|failure| panic!("replay batch: {failure}"));
        times.push(one.elapsed());
        replayed += report["replayed"].as_u64().unwrap_or(0);
        if report["more"] != json!(true) {
            break;
        }
    }
    summary(
        &format!("replay of {held} held arrivals ({replayed} runs started)"),
        &times,
        started.elapsed(),
    );

    let ids: Vec<String> = (0..dags).map(|i| format!("bench_dag_{i:04}")).collect();
    let (mut times, mut start) = (vec![], json!(0));
    let started = Instant::now();
    while start.is_number() {
        let one = Instant::now();
        let input = json!({"environment": ENV, "dags": ids, "start": start});
        let out = enable_dags(&mwaa, input, deadline(120))
            .await
            .expect("enable-dags batch");
        times.push(one.elapsed());
        start = out["next"].clone();
    }
    summary(
        &format!("enable-dags of {dags} DAGs"),
        &times,
        started.elapsed(),
    );
}
