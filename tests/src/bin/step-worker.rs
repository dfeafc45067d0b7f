//! The Lambda service, for the state machines on the bed. moto's Step Functions cannot
//! invoke a Lambda function without Docker, so the tests run the production definitions
//! with each `lambda:invoke` task rewritten to `sqs:sendMessage.waitForTaskToken` (see
//! tests/pause_resume/machines.py). This worker takes those messages, runs the real handler
//! of the named function in-process with real SDK clients (pointed at the bed by the
//! standard AWS_ENDPOINT_URL* variables) and answers the token the way Step Functions'
//! Lambda integration would: `{"Payload": output}`, or the error type and message.
//!
//! Message: `{"function", "payload", "token", "callback"}`. `callback` marks
//! `lambda:invoke.waitForTaskToken` tasks: the DAG answers the token on success, the worker
//! only when the handler itself fails. A message without a token is a plain asynchronous
//! invocation (an S3 arrival for trigger-dag).
//!
//! Environment: TASKS_QUEUE_URL, SUITE_BUCKET, ROUTES (trigger-dag), and optionally
//! HOLD_DIR: while `<HOLD_DIR>/<function>` exists, that function's messages wait (the worker
//! writes `<function>.waiting` then), so a test can act between two steps; and
//! EXIT_WITH_STDIN=1: exit when standard input closes (the local suite that started it ended);
//! ENVIRONMENT_CACHE_SECONDS (trigger-dag's, default 1 on the bed);
//! and LAMBDA_API=127.0.0.1:PORT: also serve Lambda's Invoke API there
//! (mwaa_ops_tests::lambda_api), so a Lambda client can invoke these functions directly;
//! and ROLE_KEYS={"<function>": "<access key>", ...}: that function signs its calls with the
//! key of its role of the template, so the bed holds it to that role's IAM statements
//! (mwaa_ops_tests::iam); a function not listed signs with AWS_ACCESS_KEY_ID (unchecked).

use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use common::runtime::Invocation;
use pause_resume::{Clients, Step};
use serde_json::{json, Value};
use trigger_dag::ops::AwsOps as TriggerOps;
use trigger_dag::routes::parse_routes;
use trigger_dag::TriggerDag;

/// The time an invocation gets, as the template gives the steps.
const BUDGET: Duration = Duration::from_secs(120);

/// How long trigger-dag trusts an unmarked AVAILABLE answer on the bed, unless
/// ENVIRONMENT_CACHE_SECONDS says otherwise: the state machines' `pausing_wait_seconds` is
/// scaled to it (tests/pause_resume/machines.py), as the template's is to 30 s.
const BED_CACHE: Duration = Duration::from_secs(1);

struct Functions {
    steps: Clients,
    /// Steps acting as their own role (ROLE_KEYS), by function name.
    roles: std::collections::HashMap<String, Clients>,
    trigger: TriggerDag<TriggerOps>,
}

/// `config` signing with `access_key` (a role registered with the bed).
fn as_key(config: &SdkConfig, access_key: &str) -> SdkConfig {
    config
        .clone()
        .into_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new(access_key, "unchecked", None, None, "bed-role"),
        ))
        .build()
}

fn path_style_s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

impl Functions {
    /// Runs one function; the error is `(errorType, errorMessage)` as Lambda reports them.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, (String, String)> {
        let outcome = if let Some(step) = Step::named(function) {
            let clients = self.roles.get(function).unwrap_or(&self.steps);
            step.run(clients, Invocation::new(payload, BUDGET)).await
        } else if function == "trigger-dag" {
            self.trigger
                .handle(payload, common::Deadline::after(Duration::from_secs(30)))
                .await
        } else {
            return Err((
                "ResourceNotFoundException".into(),
                format!("no function {function}"),
            ));
        };
        outcome.map_err(|e| (e.kind().as_str().to_owned(), e.to_string()))
    }
}

/// Waits while a test holds `function` back.
async fn held(hold_dir: &Option<PathBuf>, function: &str) {
    let Some(dir) = hold_dir else { return };
    let gate = dir.join(function);
    if !gate.exists() {
        return;
    }
    let waiting = dir.join(format!("{function}.waiting"));
    let _ = std::fs::write(&waiting, b"");
    while gate.exists() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_file(waiting);
}

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("step-worker: {name} is not set"))
}

#[tokio::main]
async fn main() {
    common::init_logging();
    let queue = setting("TASKS_QUEUE_URL");
    if std::env::var_os("EXIT_WITH_STDIN").is_some() {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let hold_dir = std::env::var_os("HOLD_DIR").map(PathBuf::from);
    let config: SdkConfig = common::aws::load_config().await;
    let s3 = path_style_s3(&config);
    let mwaa = common::aws::mwaa_client(&config);
    let bucket = setting("SUITE_BUCKET");
    let role_keys: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::env::var("ROLE_KEYS").unwrap_or_else(|_| "{}".into()))
            .expect("ROLE_KEYS is a JSON object of strings");
    let trigger_config = match role_keys.get("trigger-dag") {
        Some(key) => as_key(&config, key),
        None => config.clone(),
    };
    let may_lose_settings = pause_resume::steps::save_configuration::allowed_losses(
        &std::env::var("ALLOW_LOSING_SETTINGS").unwrap_or_default(),
    );
    let roles = role_keys
        .iter()
        .filter(|(function, _)| Step::named(function).is_some())
        .map(|(function, key)| {
            let config = as_key(&config, key);
            let clients = Clients {
                mwaa: common::aws::mwaa_client(&config),
                s3: path_style_s3(&config),
                sfn: pause_resume::sfn_client(&config),
                bucket: Some(bucket.clone()),
                may_lose_settings: may_lose_settings.clone(),
            };
            (function.clone(), clients)
        })
        .collect();
    let functions = std::sync::Arc::new(Functions {
        roles,
        trigger: TriggerDag {
            replay: Default::default(),
            ops: TriggerOps {
                mwaa: common::aws::mwaa_client(&trigger_config),
                serverless: trigger_dag::ops::serverless_client(&trigger_config),
                s3: path_style_s3(&trigger_config),
                events: aws_sdk_eventbridge::Client::new(&trigger_config),
                bucket: bucket.clone(),
            },
            routes: parse_routes(&std::env::var("ROUTES").unwrap_or_else(|_| "[]".into()))
                .expect("ROUTES")
                .into(),
            environments: trigger_dag::environments::KnownEnvironments::new(
                std::env::var("ENVIRONMENT_CACHE_SECONDS")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map_or(BED_CACHE, Duration::from_secs),
            ),
        },
        steps: Clients {
            mwaa,
            s3,
            sfn: pause_resume::sfn_client(&config),
            bucket: Some(bucket),
            // As the template passes AllowLosingSettings.
            may_lose_settings,
        },
    });
    if let Ok(address) = std::env::var("LAMBDA_API") {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .unwrap_or_else(|e| panic!("step-worker: LAMBDA_API {address}: {e}"));
        let functions = functions.clone();
        tokio::spawn(mwaa_ops_tests::lambda_api::serve(
            listener,
            move |name, payload| {
                let functions = functions.clone();
                async move { functions.invoke(&name, payload).await }
            },
        ));
    }
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    eprintln!("step-worker: serving {queue}");
    loop {
        let received = match sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("step-worker: ReceiveMessage: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in received.messages() {
            let body: Value =
                serde_json::from_str(message.body().unwrap_or("{}")).unwrap_or_default();
            let function = body["function"].as_str().unwrap_or_default().to_owned();
            let token = body["token"].as_str().map(str::to_owned);
            let callback = body["callback"].as_bool().unwrap_or(false);
            held(&hold_dir, &function).await;
            // A handler that panics fails its task (as a crashed Lambda would), not the worker.
            let outcome = {
                let (functions, function, payload) =
                    (functions.clone(), function.clone(), body["payload"].clone());
                tokio::spawn(async move { functions.invoke(&function, payload).await })
                    .await
                    .unwrap_or_else(|e| {
                        Err((
                            "Runtime.ExitError".into(),
                            format!("the handler crashed: {e}"),
                        ))
                    })
            };
            eprintln!(
                "step-worker: {function} -> {}",
                match &outcome {
                    Ok(v) => v.to_string(),
                    Err((t, m)) => format!("{t}: {m}"),
                }
            );
            if let Some(token) = token {
                let answered = match outcome {
                    Ok(_) if callback => Ok(()),
                    Ok(output) => sfn
                        .send_task_success()
                        .task_token(&token)
                        .output(json!({"Payload": output, "StatusCode": 200}).to_string())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err((error, cause)) => sfn
                        .send_task_failure()
                        .task_token(&token)
                        .error(error)
                        .cause(json!({"errorType": "", "errorMessage": cause}).to_string())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                };
                if let Err(e) = answered {
                    eprintln!("step-worker: answering the token of {function} failed: {e}");
                }
            }
            let _ = sqs
                .delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await;
        }
    }
}
