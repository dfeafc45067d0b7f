//! `scripts/local-up`'s local-suite, stopped by SIGTERM sent to it alone (`kill PID`,
//! `timeout`, a service manager), not Ctrl-C to the whole process group: it ends cleanly and
//! leaves no process of its bed running. Its bed starts without Airflow (seconds); what it
//! stops is the same bed.py, moto, control planes and step-worker.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose environment carries `mark` (every descendant inherits it, and keeps it
/// after its parent is gone), as "pid command line".
fn marked(mark: &str) -> Vec<String> {
    let needle = format!("MWAA_OPS_TEST_MARK={mark}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            format!("{} {cmdline}", e.file_name().to_string_lossy())
        })
        .collect()
}

#[test]
fn sigterm_to_local_suite_alone_stops_it_and_every_process_of_its_bed() {
    let mark = format!("local-suite-{}", std::process::id());
    let mut suite = Command::new(env!("CARGO_BIN_EXE_local-suite"))
        .env("MWAA_OPS_BED_AIRFLOW", "")
        .env("MWAA_OPS_TEST_MARK", &mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start local-suite");
    let mut out = BufReader::new(suite.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    while !line.starts_with("mwaa-ops runs locally") {
        line.clear();
        let read = out.read_line(&mut line).expect("read local-suite's output");
        assert!(read > 0, "local-suite ended before it was up");
    }
    let running = marked(&mark);
    for part in ["local-suite", "tests/bed/bed.py", "step-worker"] {
        assert!(
            running.iter().any(|p| p.contains(part)),
            "{part} runs: {running:#?}"
        );
    }

    let term = Command::new("kill")
        .args(["-TERM", &suite.id().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success());
    let status = suite.wait().expect("wait for local-suite");
    assert!(
        status.success(),
        "local-suite ends cleanly on SIGTERM: {status}"
    );
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopping"), "{rest:#?}");

    // The bed stops when local-suite's end closes its standard input: give its teardown a
    // bound, not a speed.
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut left = marked(&mark);
    while !left.is_empty() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(200));
        left = marked(&mark);
    }
    assert!(left.is_empty(), "left running: {left:#?}");
}
