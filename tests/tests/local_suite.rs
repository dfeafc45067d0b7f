//! `scripts/local-up`'s local-suite, stopped by SIGTERM sent to it alone (`kill PID`,
//! `timeout`, a service manager), not Ctrl-C to the whole process group: it ends cleanly and
//! leaves no process of its bed running. Before that, the template's rules deliver an arrival
//! and an alert to trigger-dag's and notify's binaries in the bed's Lambda service (as
//! EventBridge does: asynchronous invokes) and local-suite prints what each answered. Its bed starts without
//! Airflow (seconds); what it stops is the same bed.py, moto, control planes, step-worker and
//! Lambda service.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long a line local-suite is to print may take at most (a bound, not a speed).
const LINE_BOUND: Duration = Duration::from_secs(60);

/// The lines read until one `wanted`; panics if none comes within [`LINE_BOUND`].
fn until(lines: &Receiver<String>, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let give_up = Instant::now() + LINE_BOUND;
    let mut read = vec![];
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = wanted(&line);
                read.push(line);
                if done {
                    return read;
                }
            }
            Err(e) => panic!("local-suite did not print the line ({e}); it printed {read:#?}"),
        }
    }
}

/// Puts `body` at `path` of moto's S3, as `curl -X PUT` in local-up's instructions does.
fn put(moto: &str, path: &str, body: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("{moto}/{path}"))
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT to moto")
            .status()
    });
    assert!(status.is_success(), "PUT {path}: {status}");
}

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
    // MWAA_OPS_BIN_DIR: see mwaa_ops_tests::suite::sibling_binary.
    let mut suite = Command::new(mwaa_ops_tests::suite::sibling_binary("local-suite"))
        .env("MWAA_OPS_BED_AIRFLOW", "")
        .env("MWAA_OPS_TEST_MARK", &mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start local-suite");
    let out = BufReader::new(suite.stdout.take().expect("piped stdout"));
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let up = until(&lines, |l| l.starts_with("mwaa-ops runs locally"));
    let moto_line = until(&lines, |l| l.contains("moto (S3"));
    let moto = moto_line
        .last()
        .and_then(|l| l.rsplit(": ").next())
        .expect("moto's address")
        .trim()
        .to_owned();
    assert!(
        moto.starts_with("http://127.0.0.1:"),
        "{up:?} {moto_line:?}"
    );
    let running = marked(&mark);
    for part in [
        "local-suite",
        "tests/bed/bed.py",
        "step-worker",
        "tests/bed/lambda_local.py",
    ] {
        assert!(
            running.iter().any(|p| p.contains(part)),
            "{part} runs: {running:#?}"
        );
    }

    // A broken routes file, then an arrival no route takes: trigger-dag's binary (a cold
    // start) reads the file, rejects it and answers the arrival; notify's binary gets the
    // "Routes Rejected" event from the template's rule and sends the alert.
    let broken = r#"[{"name": "x", "bucket": "landing-zone", "prefix": "x/", "environment": "9-bad", "dag": "d"}]"#;
    put(&moto, "mwaa-ops-suite/routes/broken.json", broken);
    put(&moto, "landing-zone/unrouted/orders.csv", "a,b");
    // The two invocations run on their own (asynchronous invokes): either may end first.
    let is_arrival = |l: &str| l.starts_with("arrival \"unrouted/orders.csv\"");
    let is_alert = |l: &str| l.starts_with("alert");
    let mut printed = until(&lines, |l| is_arrival(l) || is_alert(l));
    let second: fn(&str) -> bool = if is_arrival(printed.last().unwrap()) {
        |l| l.starts_with("alert")
    } else {
        |l| l.starts_with("arrival \"unrouted/orders.csv\"")
    };
    printed.extend(until(&lines, second));
    let arrival = printed.iter().find(|l| is_arrival(l)).unwrap();
    assert!(
        arrival.contains(r#""runs":[]"#),
        "answered, no run: {arrival}"
    );
    let alert = printed.iter().find(|l| is_alert(l)).unwrap();
    assert!(
        alert.starts_with(r#"alert: {"sent":"#) && alert.contains("routes/broken.json"),
        "{alert}"
    );

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
    let rest: Vec<String> = lines.iter().collect();
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
