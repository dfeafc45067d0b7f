//! The whole suite on the bed, as `scripts/local-up` runs it and the CLI's end-to-end tests
//! use it: the pause and resume state machines in moto's Step Functions (their Lambda steps
//! and trigger-dag served by step-worker, which also answers Lambda's Invoke API) and a
//! CloudFormation stack in moto whose outputs and parameters name all of it, as the
//! template's do in AWS.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::arrivals::SUITE_BUCKET;
use crate::Bed;

/// The stack name the CLI looks for by default.
pub const STACK: &str = "mwaa-ops";
/// trigger-dag's ARN as the stack names it (step-worker serves it by its name).
pub const TRIGGER_DAG: &str = "trigger-dag";

/// The deployed state machines and the process serving their functions.
pub struct PauseResume {
    /// `{"pause", "resume", "queue_url", "key_arn", "role_keys", "machine_keys"}`
    /// (tests/pause_resume/machines.py).
    pub machines: Value,
    pub worker: Child,
    /// Where step-worker answers Lambda's Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
    pub lambda_url: String,
    /// step-worker's standard output: what the functions print, their metrics included
    /// (CloudWatch Logs would read these lines in AWS).
    pub output: std::path::PathBuf,
}

impl PauseResume {
    /// The embedded-metric-format documents the functions printed so far.
    pub fn metrics(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some())
            .collect()
    }
}

impl Drop for PauseResume {
    fn drop(&mut self) {
        let _ = self.worker.kill();
        let _ = self.worker.wait();
        let _ = std::fs::remove_file(&self.output);
    }
}

/// A free loopback port (free when asked; step-worker binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A binary built next to this one (`target/debug/<name>`; tests run from `deps/`), or in
/// `MWAA_OPS_BIN_DIR` when set: clones sharing one target dir overwrite each other's
/// `target/debug/<name>`, so a run that must be its own copies its binaries there first.
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MWAA_OPS_BIN_DIR") {
        let path = std::path::Path::new(&dir).join(name);
        assert!(path.exists(), "{} is missing", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("own path");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing next to {}: `cargo test --workspace` builds it",
                exe.display()
            )
        })
}

/// Deploys the pause and resume state machines and starts step-worker for them, for
/// trigger-dag (with `routes`) and Lambda's Invoke API.
pub fn deploy_pause_resume(bed: &Bed, routes: &Value) -> PauseResume {
    let machines = crate::python_json(
        "tests/pause_resume/machines.py",
        [bed.moto_url.as_str(), SUITE_BUCKET],
    );
    let address = format!("127.0.0.1:{}", free_port());
    let output = std::env::temp_dir().join(format!(
        "mwaa-ops-step-worker-{}-{}.out",
        std::process::id(),
        address.rsplit(':').next().unwrap_or_default()
    ));
    let worker = Command::new(sibling_binary("step-worker"))
        .env("AWS_ENDPOINT_URL", &bed.moto_url)
        .env("AWS_ENDPOINT_URL_MWAA", &bed.mwaa_url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", &bed.region)
        .env("TASKS_QUEUE_URL", machines["queue_url"].as_str().unwrap())
        // Each function signs with its role's key: IAM enforced from the template.
        .env("ROLE_KEYS", machines["role_keys"].to_string())
        // Each state machine invokes its functions as its role of the template.
        .env("MACHINE_KEYS", machines["machine_keys"].to_string())
        .env("SUITE_BUCKET", SUITE_BUCKET)
        // The namespace the template gives every function (and its dashboard reads).
        .env("METRICS_NAMESPACE", format!("mwaa-ops/{STACK}"))
        .env("ROUTES", routes.to_string())
        .env("LAMBDA_API", &address)
        .env("EXIT_WITH_STDIN", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&output).expect("step-worker's output file"))
        .spawn()
        .expect("start step-worker");
    let started = Instant::now();
    while TcpStream::connect(&address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "step-worker never listened on {address}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    PauseResume {
        machines,
        worker,
        lambda_url: format!("http://{address}"),
        output,
    }
}

/// The stack's outputs and parameters as the template has them, for this bed's resources.
pub fn stack_template(bed: &Bed, machines: &Value) -> Value {
    let parameter = |default: &str| json!({"Type": "String", "Default": default});
    json!({
        "Parameters": {
            "EnvironmentNamePrefix": parameter("local"),
            "PausedEnvironments": parameter(""),
            "PauseAt": parameter("cron(0 20 ? * MON-FRI *)"),
            "ResumeAt": parameter("cron(0 7 ? * MON-FRI *)"),
            "ScheduleTimezone": parameter("UTC"),
        },
        // moto skips this type; CloudFormation needs one resource.
        "Resources": {"Anchor": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "PauseStateMachineArn": {"Value": machines["pause"]},
            "ResumeStateMachineArn": {"Value": machines["resume"]},
            "SuiteBucketName": {"Value": SUITE_BUCKET},
            "SuiteKeyArn": {"Value": machines["key_arn"]},
            "TriggerDagFunctionArn": {"Value": format!(
                "arn:aws:lambda:{}:{}:function:{TRIGGER_DAG}", bed.region, bed.account)},
        },
    })
}

/// Creates the stack [`STACK`] in moto with `parameters` (name, value).
pub async fn deploy_stack(bed: &Bed, machines: &Value, parameters: &[(&str, &str)]) {
    let config = bed.aws_config().await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let mut create = cloudformation
        .create_stack()
        .stack_name(STACK)
        .template_body(stack_template(bed, machines).to_string());
    for (key, value) in parameters {
        create = create.parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(*key)
                .parameter_value(*value)
                .build(),
        );
    }
    create.send().await.expect("CreateStack");
}

/// The variables that point the CLI (or any AWS SDK or CLI) at the bed.
pub fn endpoints(bed: &Bed, lambda_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", bed.moto_url.clone()),
        ("AWS_ENDPOINT_URL_MWAA", bed.mwaa_url.clone()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda_url.to_string()),
        ("AWS_REGION", bed.region.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
    ]
}
