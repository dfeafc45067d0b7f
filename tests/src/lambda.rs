//! The bed's Lambda service for a test (tests/bed/lambda_local.py): every function of the
//! template as its built binary behind the Lambda Runtime API, with the template's Timeout,
//! MemorySize and environment variables, each signing its calls with its role's key (IAM
//! enforced by the bed). A test invokes a function as EventBridge, an SQS event source or a
//! person would, and gets what Lambda gives: the response, or the error object the binary
//! reported (`Sandbox.Timedout` past the Timeout). `invoke_async` queues an event as
//! EventBridge does (Lambda's retries, the on-failure destination: tests/bed/lambda_async.py);
//! `Deployment::event_source_mappings` runs the template's SQS event sources
//! (tests/bed/lambda_sqs.py); `Deployment::rule` makes a template's EventBridge rule deliver
//! matched events to its function by an asynchronous invoke (tests/bed/lambda_rules.py).
//! What the functions print (their logs and
//! metrics, which CloudWatch Logs would read) is kept for the test.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::InvocationType;
use serde_json::{json, Map, Value};

use crate::Bed;

/// How the template's functions are deployed on the bed: the template's parameters, what its
/// resources are called here, and the settings a test scales.
#[derive(Clone, Debug, Default)]
pub struct Deployment {
    parameters: Map<String, Value>,
    resources: Map<String, Value>,
    variables: Map<String, Value>,
    timeouts: Map<String, Value>,
    role_keys: Map<String, Value>,
    endpoints: Map<String, Value>,
    async_scale: Option<f64>,
    event_source_mappings: bool,
    rules: Vec<String>,
    rules_without_permission: Vec<String>,
}

impl Deployment {
    pub fn new() -> Deployment {
        Deployment::default()
    }

    /// A template parameter's value (the others keep the template's defaults).
    pub fn parameter(mut self, name: &str, value: &str) -> Deployment {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// What `Ref`/`Fn::GetAtt` of a template resource are on the bed (a bucket's name, an
    /// ARN, or `{"Ref": .., "Arn": ..}`); a variable naming a resource left out is not set.
    pub fn resource(mut self, logical_id: &str, physical: Value) -> Deployment {
        self.resources.insert(logical_id.into(), physical);
        self
    }

    /// An environment variable of `function` (its binary's name) over the template's, for
    /// the bed's own scale (a shorter cache, a routes file period).
    pub fn variable(mut self, function: &str, name: &str, value: &str) -> Deployment {
        let variables = self
            .variables
            .entry(function.to_string())
            .or_insert_with(|| json!({}));
        variables[name] = json!(value);
        self
    }

    /// `function`'s Timeout, scaled for a test.
    pub fn timeout(mut self, function: &str, seconds: f64) -> Deployment {
        self.timeouts.insert(function.into(), json!(seconds));
        self
    }

    /// `function` signs its calls with the key of `role` (`Bed::as_role(..).key`): the bed
    /// holds it to that role's statements. Without one it signs as the unchecked "testing".
    pub fn role_key(mut self, function: &str, key: &str) -> Deployment {
        self.role_keys.insert(function.into(), key.into());
        self
    }

    /// An endpoint variable (`AWS_ENDPOINT_URL_<SERVICE>`) over the bed's, e.g. a fault proxy.
    pub fn endpoint(mut self, variable: &str, url: &str) -> Deployment {
        self.endpoints.insert(variable.into(), url.into());
        self
    }

    /// Lambda's waits between asynchronous attempts (1 then 2 minutes) and the event's
    /// maximum age (6 hours unless the template says), times `scale`: 0.01 makes a minute
    /// 0.6 s. Real time (1.0) without it.
    pub fn async_scale(mut self, scale: f64) -> Deployment {
        self.async_scale = Some(scale);
        self
    }

    /// Runs the template's SQS event source mappings whose queue a [`Deployment::resource`]
    /// names: the queue is polled and its batches handed to the function as Lambda does.
    pub fn event_source_mappings(mut self) -> Deployment {
        self.event_source_mappings = true;
        self
    }

    /// Makes the template's EventBridge rule `logical_id` (e.g. `TriggerDagFunctionArrival`)
    /// deliver the events it matches to its function as EventBridge does: an asynchronous
    /// invoke, a refused one retried per its RetryPolicy, then its DeadLetterConfig queue.
    pub fn rule(mut self, logical_id: &str) -> Deployment {
        self.rules.push(logical_id.into());
        self
    }

    /// As if the template lacked the `AWS::Lambda::Permission` letting rule `logical_id`
    /// invoke its function: Lambda refuses the rule's invokes (403).
    pub fn rule_without_permission(mut self, logical_id: &str) -> Deployment {
        self.rules_without_permission.push(logical_id.into());
        self
    }
}

/// What a failed invocation gave: the error object Lambda reports (`errorType`,
/// `errorMessage`), the function's or Lambda's own (`Sandbox.Timedout`, `Runtime.ExitError`).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub error_type: String,
    pub error_message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

impl Failure {
    /// Asserts the failure is of `error_type` and its message mentions each of `mentions`.
    pub fn assert_is(&self, error_type: &str, mentions: &[&str]) {
        assert_eq!(self.error_type, error_type, "{self}");
        for mention in mentions {
            assert!(
                self.error_message.contains(mention),
                "{mention:?} not in: {self}"
            );
        }
    }
}

/// The running Lambda service; stopped (with every function process) when dropped.
pub struct Functions {
    service: Child,
    stdin: Option<ChildStdin>,
    /// Where it answers Lambda's Invoke API (`AWS_ENDPOINT_URL_LAMBDA`).
    pub url: String,
    output: PathBuf,
    client: aws_sdk_lambda::Client,
}

impl Functions {
    /// Starts the template's functions on `bed` as `deployment` says; they reach moto, the
    /// local MWAA and MWAA Serverless control planes unless an endpoint says otherwise.
    /// Panics with Lambda's refusal when the deployment would fail on AWS.
    pub async fn start(bed: &Bed, deployment: Deployment) -> Functions {
        Functions::try_start(bed, deployment)
            .await
            .unwrap_or_else(|refusal| panic!("the deployment fails: {refusal}"))
    }

    /// As [`Functions::start`], or what Lambda refused when the deployment was made (an event
    /// source mapping failing the checks AWS makes on creating it: its
    /// `InvalidParameterValueException`, naming the mapping and the queue).
    pub async fn try_start(bed: &Bed, deployment: Deployment) -> Result<Functions, String> {
        let mut endpoints = json!({
            "AWS_ENDPOINT_URL": bed.moto_url,
            "AWS_ENDPOINT_URL_MWAA": bed.mwaa_url,
            "AWS_ENDPOINT_URL_MWAA_SERVERLESS": bed.serverless_url,
        });
        for (k, v) in &deployment.endpoints {
            endpoints[k] = v.clone();
        }
        let binaries = crate::suite::sibling_binary("trigger-dag");
        let config = json!({
            "binaries": binaries.parent().expect("the binaries' folder"),
            "parameters": deployment.parameters,
            "resources": deployment.resources,
            "variables": deployment.variables,
            "timeouts": deployment.timeouts,
            "role_keys": deployment.role_keys,
            "endpoints": endpoints,
            "account": bed.account,
            "async_scale": deployment.async_scale.unwrap_or(1.0),
            "event_source_mappings": deployment.event_source_mappings,
            "rules": deployment.rules,
            "rules_without_permission": deployment.rules_without_permission,
        });
        let output = std::env::temp_dir().join(format!(
            "mwaa-ops-functions-{}-{}.out",
            std::process::id(),
            next_service()
        ));
        let (mut service, stdin) = spawn_service(&config, Stdio::piped());
        // Its first line is its address; the rest (the functions' output) goes to the file.
        let mut reader = BufReader::new(service.stdout.take().expect("its standard output"));
        let mut first = String::new();
        reader
            .read_line(&mut first)
            .expect("the Lambda service's address");
        let address: Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("the Lambda service said {first:?}: {e}"));
        if let Some(refusal) = address["error"].as_str() {
            let _ = service.wait();
            return Err(refusal.to_owned());
        }
        let url = format!("http://{}", address["address"].as_str().expect("address"));
        let mut file = std::fs::File::create(&output).expect("the functions' output file");
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut file);
        });
        let config = bed.aws_config().await;
        let client = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .endpoint_url(&url)
                // An invocation may last the function's Timeout; the SDK must not give up first.
                .timeout_config(
                    aws_smithy_types::timeout::TimeoutConfig::builder()
                        .operation_timeout(Duration::from_secs(900))
                        .build(),
                )
                .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
                .build(),
        );
        Ok(Functions {
            service,
            stdin: Some(stdin),
            url,
            output,
            client,
        })
    }

    /// Invokes `function` (its binary's name) synchronously with `event`, as Step Functions'
    /// task or an SQS event source does: the response, or the error object Lambda gives.
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value, Failure> {
        let answer = self
            .send(function, event, InvocationType::RequestResponse)
            .await;
        let body = answer
            .payload()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .unwrap_or_default();
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match answer.function_error() {
            None => Ok(value),
            Some(_) => Err(Failure {
                error_type: value["errorType"].as_str().unwrap_or_default().to_owned(),
                error_message: value["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }),
        }
    }

    /// Invokes `function` asynchronously with `event`, as EventBridge and Scheduler do: Lambda
    /// answers 202 at once, then tries it with its retries and on-failure destination.
    pub async fn invoke_async(&self, function: &str, event: &Value) {
        let answer = self.send(function, event, InvocationType::Event).await;
        assert_eq!(
            answer.status_code(),
            202,
            "an asynchronous invoke is accepted"
        );
    }

    async fn send(
        &self,
        function: &str,
        event: &Value,
        kind: InvocationType,
    ) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(kind)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Lambda refused to invoke {function}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                )
            })
    }

    /// The asynchronous invocations so far: `{function, requestId, attempts, outcome,
    /// condition, destination}` ("delivered", "none" or "refused: ...").
    pub async fn asynchronous_invocations(&self) -> Vec<Value> {
        self.bed_list("async").await
    }

    /// The asynchronous invocations once at least `count` of them ended (succeeded, or failed
    /// after Lambda's retries), waiting up to `bound` (a bound, not a speed).
    pub async fn ended_asynchronous_invocations(
        &self,
        count: usize,
        bound: Duration,
    ) -> Vec<Value> {
        let give_up = Instant::now() + bound;
        loop {
            let all = self.asynchronous_invocations().await;
            let ended = all.iter().filter(|i| i["outcome"] != "queued").count();
            if ended >= count {
                return all;
            }
            assert!(
                Instant::now() < give_up,
                "{ended} of {count} asynchronous invocations ended: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The events the rules delivered so far (or dead-lettered, or dropped): `{rule, ruleArn,
    /// function, eventId, event, attempts, outcome, errorCode, errorMessage, requestId}`.
    pub async fn rule_deliveries(&self) -> Vec<Value> {
        self.bed_list("rules").await
    }

    /// Fires the template's scheduled rule `logical_id` (SAM `Type: Schedule`, named with
    /// [`Deployment::rule`]) once, as its schedule would: its target's input delivered by an
    /// asynchronous invoke. The delivery (as [`Functions::rule_deliveries`] lists it).
    pub async fn fire(&self, logical_id: &str) -> Value {
        let url = format!("{}/_bed/fire/{logical_id}", self.url);
        let answer = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
        answer.json().await.unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// The batches the event source mappings handed to functions so far: `{function,
    /// messages, deleted, kept, failed}` (message ids).
    pub async fn batches(&self) -> Vec<Value> {
        self.bed_list("batches").await
    }

    async fn bed_list(&self, name: &str) -> Vec<Value> {
        let url = format!("{}/_bed/{name}", self.url);
        let body: Value = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        body.as_array().cloned().unwrap_or_default()
    }

    /// Everything the functions printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// The embedded-metric-format documents the functions printed so far.
    pub fn metrics(&self) -> Vec<Value> {
        metric_documents(&self.output())
    }

    /// The values of `metrics` in each document `function` printed for `environment`, in
    /// order (a document with none of them is skipped; one missing some fails the test). Each
    /// is checked to be what CloudWatch would chart: `Environment` and `Function` its one
    /// dimension set, each value declared as a metric.
    pub fn metric_values(
        &self,
        function: &str,
        environment: &str,
        metrics: &[&str],
    ) -> Vec<Vec<f64>> {
        self.metrics()
            .into_iter()
            .filter(|doc| doc["Function"] == function && doc["Environment"] == environment)
            .filter(|doc| metrics.iter().any(|m| doc.get(*m).is_some()))
            .map(|doc| {
                let definition = &doc["_aws"]["CloudWatchMetrics"][0];
                assert_eq!(
                    definition["Dimensions"],
                    json!([["Environment", "Function"]]),
                    "{doc}"
                );
                let declared: Vec<&str> = definition["Metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["Name"].as_str())
                    .collect();
                metrics
                    .iter()
                    .map(|m| {
                        assert!(declared.contains(m), "{m} not declared in {doc}");
                        doc[*m]
                            .as_f64()
                            .unwrap_or_else(|| panic!("{m} missing from {doc}"))
                    })
                    .collect()
            })
            .collect()
    }
}

/// Starts tests/bed/lambda_local.py with `config` (its output to `stdout`); the service runs
/// until the returned standard input is closed.
pub fn spawn_service(config: &Value, stdout: Stdio) -> (Child, ChildStdin) {
    let mut service = Command::new(crate::bed_python())
        .arg(crate::repo_root().join("tests/bed/lambda_local.py"))
        .stdin(Stdio::piped())
        .stdout(stdout)
        .spawn()
        .expect("start the bed's Lambda service");
    let mut stdin = service.stdin.take().expect("its standard input");
    writeln!(stdin, "{config}").expect("configure the Lambda service");
    (service, stdin)
}

/// The embedded-metric-format documents among `output`'s lines.
pub fn metric_documents(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// A number no other service of this process uses.
fn next_service() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Drop for Functions {
    fn drop(&mut self) {
        // Closing its standard input stops the service and every function process it started
        // (they run in their own sessions: killing the service alone would leave them).
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.service.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
        let _ = std::fs::remove_file(&self.output);
    }
}
