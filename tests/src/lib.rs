//! The test bed, seen from Rust: moto, the local MWAA control plane and real Airflows,
//! started once per test binary by `tests/bed/bed.py` and stopped when the binary exits.
//!
//! The bed reads its standard input until end of file: when this process ends (passing,
//! failing or killed), the pipe closes and the bed stops everything it started.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Deserialize;
use serde_json::{json, Value};

pub mod airflow;
pub mod properties;
pub mod template;

pub use airflow::AirflowInfo;

/// The Airflow versions a bed starts unless `MWAA_OPS_BED_AIRFLOW` names others ("" for
/// none): the per-commit ones of `functions/common/airflow-versions.json`, the suite's one list
/// of versions (the functions embed it, the control plane and `tests/bed/bed.py` read it).
pub fn default_airflows() -> Vec<String> {
    let path = repo_root().join("functions/common/airflow-versions.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let list: Value = serde_json::from_str(&text).expect("airflow-versions.json is JSON");
    list["versions"]
        .as_array()
        .expect("airflow-versions.json has versions")
        .iter()
        .filter(|v| v["bed"] == "per-commit")
        .map(|v| v["version"].as_str().expect("a version string").to_owned())
        .collect()
}

/// Where the bed's services listen.
#[derive(Debug, Deserialize)]
pub struct Bed {
    pub moto_url: String,
    pub mwaa_url: String,
    /// The local MWAA Serverless control plane (tests/bed/mwaa_serverless_local.py).
    pub serverless_url: String,
    pub region: String,
    pub account: String,
    pub airflows: Vec<AirflowInfo>,
    #[serde(skip)]
    child: Mutex<Option<Child>>,
}

/// The repository root.
///
/// `cargo test` says where at run time; the compile-time value is only a fallback, because
/// two clones sharing one target dir share this crate's build (cargo hashes path packages
/// relative to the workspace), and the baked-in path may be the other clone's.
/// The nearest folder holding `tests/bed/bed.py`, so crates other than tests/ (the CLI's
/// end-to-end tests) find it too.
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/bed/bed.py").exists())
        .unwrap_or_else(|| panic!("no repository above {}", manifest.display()))
        .to_path_buf()
}

/// The bed's Python, installed by `scripts/install`.
pub fn bed_python() -> PathBuf {
    let python = repo_root().join(".bed/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install first (scripts/test does)",
        python.display()
    );
    python
}

/// The JSON a Python script of the repository (`path` from its root) prints, run with the
/// bed's Python; a failing script fails the test with its standard error.
pub fn python_json<I, S>(path: &str, args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(bed_python())
        .arg(repo_root().join(path))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {path}: {e}"));
    assert!(
        out.status.success(),
        "{path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{path} answers JSON: {e}"))
}

/// A sample of botocore's `shape` of `service` (the bed venv's botocore) with every member
/// filled, nested ones too (`tests/bed/model_sample.py`): what AWS may answer, member for
/// member, without a copy of the model to keep up to date.
pub fn model_sample(service: &str, shape: &str) -> Value {
    python_json("tests/bed/model_sample.py", [service, shape])
}

/// The bed of this test binary, started on first use.
pub fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(Bed::start)
}

/// Holds the bed for one test: tests of a binary take turns, each on a reset bed.
pub struct Session {
    pub bed: &'static Bed,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Session {
    type Target = Bed;
    fn deref(&self) -> &Bed {
        self.bed
    }
}

/// Waits for this test's turn, then resets moto and the control plane.
pub async fn session() -> Session {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = TURN.lock().await;
    let bed = bed();
    bed.reset().await;
    Session { bed, _turn: turn }
}

/// Like [`session`], for test binaries that need no Airflow: their bed starts without one
/// (much faster) unless `MWAA_OPS_BED_AIRFLOW` says otherwise.
pub async fn session_without_airflow() -> Session {
    static NO_AIRFLOW: std::sync::Once = std::sync::Once::new();
    NO_AIRFLOW.call_once(|| {
        if std::env::var_os("MWAA_OPS_BED_AIRFLOW").is_none() {
            std::env::set_var("MWAA_OPS_BED_AIRFLOW", "");
        }
    });
    session().await
}

impl Bed {
    fn start() -> Bed {
        let airflows =
            std::env::var("MWAA_OPS_BED_AIRFLOW").unwrap_or_else(|_| default_airflows().join(","));
        let mut child = Command::new(bed_python())
            .arg(repo_root().join("tests/bed/bed.py"))
            .args(["--airflow", &airflows])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tests/bed/bed.py");
        // The bed's log goes to our stderr, where cargo test shows it for failing runs.
        let mut stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                eprint!("{}", String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the bed's endpoints");
        let mut bed: Bed = serde_json::from_str(&line).unwrap_or_else(|e| {
            let status = child.try_wait().ok().flatten();
            panic!("the bed did not start ({e}; exit status {status:?}); its log is above")
        });
        bed.child = Mutex::new(Some(child));
        bed
    }

    /// Forgets every resource and fault of earlier tests.
    pub async fn reset(&self) {
        for (url, body) in [
            (format!("{}/moto-api/reset", self.moto_url), None),
            (
                format!("{}/moto-api/config", self.moto_url),
                Some(json!({"stepfunctions": {"execute_state_machine": true},
                            "lambda": {"use_docker": false}})),
            ),
            (format!("{}/_bed/reset", self.mwaa_url), None),
            (format!("{}/_bed/reset", self.serverless_url), None),
        ] {
            admin_post(url, body).await;
        }
    }

    /// Posts to the control plane's admin API (`/_bed/...`): faults, delays, failures.
    pub async fn control(&self, path: &str, body: Value) -> Value {
        admin_post(format!("{}/_bed/{path}", self.mwaa_url), Some(body)).await
    }

    /// Makes the control plane fail the calls `rules` match (`POST /_bed/faults`).
    pub async fn inject_faults(&self, rules: Value) {
        self.control("faults", rules).await;
    }

    /// Every fault injected was served: one never served proves nothing.
    pub async fn assert_faults_served(&self) {
        let url = format!("{}/_bed/faults", self.mwaa_url);
        let left: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(left, json!([]), "faults never served");
    }

    /// Calls the control plane served so far (`GET /_bed/calls`).
    pub async fn calls(&self) -> Vec<Value> {
        let url = format!("{}/_bed/calls", self.mwaa_url);
        let calls: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        match calls {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("calls") {
                Some(Value::Array(items)) => items,
                _ => vec![],
            },
            _ => vec![],
        }
    }

    /// The Airflow of a given version.
    pub fn airflow(&self, version: &str) -> &AirflowInfo {
        self.airflows
            .iter()
            .find(|a| a.version == version)
            .unwrap_or_else(|| panic!("the bed runs no Airflow {version} (MWAA_OPS_BED_AIRFLOW)"))
    }

    /// AWS configuration pointing at moto, with dummy credentials.
    pub async fn aws_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "bed",
            ))
            .endpoint_url(&self.moto_url)
            .load()
            .await
    }

    /// An S3 client for moto (path-style addresses: moto serves no bucket subdomains).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = self.aws_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// An S3 client on moto (path-style) and a new `bucket` there, e.g. the suite bucket the
    /// pause/resume steps keep things in.
    pub async fn s3_with_bucket(&self, bucket: &str) -> aws_sdk_s3::Client {
        let s3 = self.s3().await;
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        versioned(&s3, bucket).await;
        s3
    }

    /// The MWAA client the functions use, pointed at the local control plane.
    pub async fn mwaa(&self) -> aws_sdk_mwaa::Client {
        common::aws::mwaa_client(&self.aws_config_at(&self.mwaa_url).await)
    }

    /// [`Bed::aws_config`] with its endpoint at `url` (a local control plane).
    async fn aws_config_at(&self, url: &str) -> SdkConfig {
        self.aws_config()
            .await
            .into_builder()
            .endpoint_url(url)
            .build()
    }

    /// The MWAA Serverless client trigger-dag uses, pointed at the local control plane.
    pub async fn mwaa_serverless(&self) -> aws_sdk_mwaaserverless::Client {
        trigger_dag::ops::serverless_client(&self.aws_config_at(&self.serverless_url).await)
    }

    /// Creates a workflow in the local MWAA Serverless control plane; its ARN.
    pub async fn create_workflow(&self, name: &str) -> String {
        let definition = aws_sdk_mwaaserverless::types::DefinitionS3Location::builder()
            .bucket("dags")
            .object_key(format!("{name}.yaml"))
            .build()
            .expect("a definition location");
        self.mwaa_serverless()
            .await
            .create_workflow()
            .name(name)
            .role_arn(format!("arn:aws:iam::{}:role/workflow-role", self.account))
            .definition_s3_location(definition)
            .send()
            .await
            .expect("CreateWorkflow")
            .workflow_arn()
            .to_owned()
    }

    /// Makes the MWAA Serverless control plane fail the calls `rules` match (`/_bed/faults`).
    pub async fn inject_serverless_faults(&self, rules: Value) {
        admin_post(format!("{}/_bed/faults", self.serverless_url), Some(rules)).await;
    }
}

/// Turns versioning on, as the template does for the suite bucket (a verified export is
/// bound to its manifest's version).
pub async fn versioned(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("PutBucketVersioning");
}

/// Posts to a bed server's admin API (moto's `/moto-api/...`, a control plane's `/_bed/...`),
/// with a JSON body when there is one, and returns its JSON answer.
async fn admin_post(url: String, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().post(&url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

impl Drop for Bed {
    fn drop(&mut self) {
        // Statics are not dropped; this only matters for a bed owned by a test. Closing
        // stdin tells the bed to stop; wait so nothing outlives the owner.
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

pub mod accounts;
pub mod arrivals;
pub mod digest;
pub mod environments;
pub mod fault_proxy;
pub mod http;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod night;
pub mod rules;
pub mod sns;
pub mod steps;
pub mod suite;
pub mod vpc;
