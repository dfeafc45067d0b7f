//! A pause marks its environment (`pausing/<environment>`) before the export: from then on
//! an arrival is held as if the environment were gone, because a run started after the
//! export's snapshot would vanish with the environment. The mark is read with the same
//! bound as the environment (a warm instance trusts an unmarked AVAILABLE answer for its
//! cache time), which is what the pause waits for after setting it.

use super::*;
use std::time::Duration;

fn marks(f: &TriggerDag<Fake>) -> u32 {
    *f.ops.mark_reads.lock().unwrap()
}

fn mark(f: &TriggerDag<Fake>, environment: &str) {
    f.ops.pausing.lock().unwrap().push(environment.into());
}

fn unmark(f: &TriggerDag<Fake>, environment: &str) {
    f.ops.pausing.lock().unwrap().retain(|e| e != environment);
}

fn runs(f: &TriggerDag<Fake>) -> usize {
    f.ops.airflow.runs.lock().unwrap().len()
}

#[tokio::test]
async fn an_arrival_for_a_marked_environment_is_held_though_it_still_runs() {
    let f = function(available(&["dev-a", "dev-b"]));
    mark(&f, "dev-a");
    let report = f.run(arrival("in/1.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held", "{report}");
    assert_eq!(
        report["runs"][1]["outcome"], "started",
        "the other environment runs"
    );
    assert_eq!(runs(&f), 1, "no run was sent to dev-a");
    let events = f.ops.events.lock().unwrap().clone();
    let (_, held) = events.iter().find(|(t, _)| t == "Arrival Held").unwrap();
    assert!(held["reason"].as_str().unwrap().contains("pause"), "{held}");
    // The pause ended with the environment up and removed its mark: arrivals run again.
    unmark(&f, "dev-a");
    let report = f.run(arrival("in/2.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "started");
    assert_eq!(f.ops.held.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_mark_is_read_only_of_an_available_environment() {
    let f = function(Fake::default());
    f.ops.set_environment(
        "dev-b",
        Availability::NotAvailable(common::Status::Creating),
    );
    let report = f.run(arrival("in/1.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "held");
    assert_eq!(report["runs"][1]["outcome"], "held");
    assert_eq!(marks(&f), 0, "held anyway: no S3 read");
}

#[tokio::test]
async fn a_warm_instance_reads_the_mark_once_per_trust_and_a_marked_one_every_time() {
    let trust = Duration::from_millis(300);
    let f = TriggerDag {
        environments: KnownEnvironments::new(trust),
        ..function(available(&["dev-a", "dev-b"]))
    };
    for i in 0..5 {
        f.run(arrival(&format!("in/{i}.csv"))).await.unwrap();
    }
    assert_eq!(
        marks(&f),
        2,
        "one read per environment while its answer is trusted"
    );
    mark(&f, "dev-a");
    // Within the trust a warm instance may still start dev-a's runs: the pause waits this
    // long (and an invocation's length) after setting the mark before it exports.
    let report = f.run(arrival("in/5.csv")).await.unwrap();
    assert_eq!(report["runs"][0]["outcome"], "started");
    tokio::time::sleep(trust + Duration::from_millis(50)).await;
    for i in 6..9 {
        let report = f.run(arrival(&format!("in/{i}.csv"))).await.unwrap();
        assert_eq!(report["runs"][0]["outcome"], "held", "{report}");
    }
    // After the trust: dev-b is read once and trusted again, marked dev-a at every arrival.
    assert_eq!(
        marks(&f),
        2 + 1 + 3,
        "a marked environment is never remembered"
    );
}

#[tokio::test]
async fn a_replay_while_a_pause_is_under_way_starts_nothing_and_keeps_the_held() {
    // Both available, dev-a marked: its arrival alone is held (dev-b's starts).
    let f = function(available(&["dev-a", "dev-b"]));
    mark(&f, "dev-a");
    f.run(arrival("in/1.csv")).await.unwrap();
    let err = f.run(replay("dev-a")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment dev-a is PAUSING; cannot replay held arrivals"
    );
    assert_eq!(f.ops.held.lock().unwrap().len(), 1);
    unmark(&f, "dev-a");
    let report = f.run(replay("dev-a")).await.unwrap();
    assert_eq!(report["replayed"], 1, "{report}");
    assert!(f.ops.held.lock().unwrap().is_empty());
}
