//! The Step Functions side of Lambda, for the state machines on the bed. moto's Step
//! Functions cannot invoke a Lambda function without Docker, so the tests run the production
//! definitions with each `lambda:invoke` task rewritten to `sqs:sendMessage.waitForTaskToken`
//! (see tests/pause_resume/machines.py). This worker takes those messages and invokes the
//! named function through the bed's Lambda service (tests/bed/lambda_local.py, which it
//! starts: every function of the template as its built binary behind the Lambda Runtime API,
//! with its Timeout, MemorySize and environment), then answers the token as Step Functions'
//! Lambda integration would: `{"Payload": response, "StatusCode": 200}`, or a task failure
//! with the function's `errorType` as error and its error object (JSON) as cause —
//! `Sandbox.Timedout` for an invocation past its Timeout.
//!
//! Message: `{"function", "payload", "token", "callback"}`. `callback` marks
//! `lambda:invoke.waitForTaskToken` tasks: the DAG answers the token on success, the worker
//! only when the function itself fails. A message without a token is a plain asynchronous
//! invocation (an S3 arrival for trigger-dag).
//!
//! Environment: TASKS_QUEUE_URL; the functions' settings as the template's parameters and
//! resources: SUITE_BUCKET (SuiteBucket), ROUTES (Routes), ALLOW_LOSING_SETTINGS
//! (AllowLosingSettings), ENVIRONMENT_CACHE_SECONDS (trigger-dag's, default 1 on the bed);
//! FUNCTION_TIMEOUTS={"<function>": seconds}: a Timeout scaled for a test; ROLE_KEYS=
//! {"<function>": "<access key>", ...}: that function signs its calls with the key of its role
//! of the template, so the bed holds it to that role's IAM statements (mwaa_ops_tests::iam);
//! MACHINE_KEYS={"pause": "<access key>", "resume": ...}: a message's `machine` invokes its
//! function with the key of that state machine's role, so the Lambda service refuses an
//! Invoke the role does not allow (Step Functions then fails the task with
//! `Lambda.AWSLambdaException` and Lambda's AccessDeniedException as its cause);
//! LAMBDA_API=127.0.0.1:PORT: where the Lambda service answers Lambda's Invoke API (a free
//! port otherwise), so a Lambda client can invoke the functions directly; and optionally
//! HOLD_DIR: while `<HOLD_DIR>/<function>` exists, that function's messages wait (the worker
//! writes `<function>.waiting` then), so a test can act between two steps; and
//! EXIT_WITH_STDIN=1: exit when standard input closes (the local suite that started it ended).
//! The functions' output goes to this worker's standard output.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

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

fn json_setting(name: &str) -> Value {
    std::env::var(name).map_or(json!({}), |s| {
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("step-worker: {name}: {e}"))
    })
}

/// Starts the bed's Lambda service on `address` with the template's functions and this
/// worker's settings; it stops (and its function processes with it) when this process ends,
/// and this process with it: a worker without its functions would fail every task.
fn start_lambda_service(address: &str) {
    let binaries = std::env::current_exe().expect("step-worker's path");
    let endpoints: serde_json::Map<String, Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL"))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut parameters = json!({"Routes": std::env::var("ROUTES").unwrap_or_else(|_| "[]".into())});
    if let Ok(losses) = std::env::var("ALLOW_LOSING_SETTINGS") {
        parameters["AllowLosingSettings"] = json!(losses);
    }
    let cache = std::env::var("ENVIRONMENT_CACHE_SECONDS")
        .unwrap_or_else(|_| mwaa_ops_tests::arrivals::BED_ENVIRONMENT_CACHE_SECONDS.into());
    let config = json!({
        "binaries": binaries.parent().expect("the target folder"),
        "listen": address,
        "parameters": parameters,
        "resources": {"SuiteBucket": setting("SUITE_BUCKET")},
        "variables": {"trigger-dag": {"ENVIRONMENT_CACHE_SECONDS": cache}},
        "timeouts": json_setting("FUNCTION_TIMEOUTS"),
        "role_keys": json_setting("ROLE_KEYS"),
        "endpoints": endpoints,
    });
    let (mut service, stdin) = mwaa_ops_tests::lambda::spawn_service(&config, Stdio::inherit());
    // Kept open for the life of this process: closing it stops the service.
    std::mem::forget(stdin);
    let started = Instant::now();
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "step-worker: the Lambda service never listened on {address}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::spawn(move || {
        let status = service.wait();
        eprintln!("step-worker: the Lambda service stopped ({status:?})");
        std::process::exit(1);
    });
}

/// Invokes `function` as Step Functions' Lambda integration does (RequestResponse):
/// `Ok(response)`, or `Err((errorType, error object as Lambda gave it))`.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &Value,
) -> Result<Value, (String, String)> {
    let answer = lambda
        .invoke()
        .function_name(function)
        .payload(aws_smithy_types::Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(refused)?;
    let body = answer
        .payload()
        .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
        .unwrap_or_default();
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    match answer.function_error() {
        None => Ok(value),
        Some(_) => Err((
            value["errorType"]
                .as_str()
                .unwrap_or("Lambda.Unknown")
                .to_owned(),
            body,
        )),
    }
}

/// What the integration reports when Lambda itself refuses the call: its AccessDenied as
/// `Lambda.AWSLambdaException` with the message and AWS's trailer, anything else as
/// `Lambda.ServiceException`.
fn refused(
    e: aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>,
) -> (String, String) {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    if e.code() == Some("AccessDeniedException") {
        let request = e
            .raw_response()
            .and_then(|r| r.headers().get("x-amzn-RequestId"))
            .unwrap_or_default()
            .to_owned();
        return (
            "Lambda.AWSLambdaException".to_owned(),
            format!(
                "{} (Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; \
                 Request ID: {request}; Proxy: null)",
                e.message().unwrap_or_default()
            ),
        );
    }
    (
        "Lambda.ServiceException".to_owned(),
        aws_sdk_lambda::error::DisplayErrorContext(e).to_string(),
    )
}

/// A Lambda client on the Lambda service at `address`, signing with `key` when given.
fn lambda_client(
    config: &aws_config::SdkConfig,
    address: &str,
    key: Option<&str>,
) -> aws_sdk_lambda::Client {
    let mut builder =
        aws_sdk_lambda::config::Builder::from(config).endpoint_url(format!("http://{address}"));
    if let Some(key) = key {
        builder = builder.credentials_provider(aws_sdk_lambda::config::Credentials::new(
            key,
            "unchecked",
            None,
            None,
            "state-machine-role",
        ));
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
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
    let address = std::env::var("LAMBDA_API").unwrap_or_else(|_| {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").to_string()
    });
    start_lambda_service(&address);
    let config = common::aws::load_config().await;
    let lambda = lambda_client(&config, &address, None);
    let by_machine: std::collections::HashMap<String, aws_sdk_lambda::Client> =
        json_setting("MACHINE_KEYS")
            .as_object()
            .into_iter()
            .flatten()
            .map(|(machine, key)| {
                let client = lambda_client(&config, &address, key.as_str());
                (machine.clone(), client)
            })
            .collect();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sfn = aws_sdk_sfn::Client::new(&config);
    eprintln!("step-worker: serving {queue}, functions at {address}");
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
            // A state machine's task invokes as its role; only a message naming no machine (a
            // plain invocation) goes unchecked. A machine without a key is a launcher's mistake.
            let client = match body["machine"].as_str() {
                Some(machine) => by_machine.get(machine).unwrap_or_else(|| {
                    panic!("step-worker: MACHINE_KEYS has no key for the {machine} state machine")
                }),
                None => &lambda,
            };
            let outcome = invoke(client, &function, &body["payload"]).await;
            eprintln!(
                "step-worker: {function} -> {}",
                match &outcome {
                    Ok(v) => v.to_string(),
                    Err((_, cause)) => cause.clone(),
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
                        .cause(cause)
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
