//! `scripts/local-up`: the suite on the bed, no AWS account. Starts moto, PostgreSQL with
//! Airflow 2.10.3 and 3.0.6 and the local MWAA control plane, creates one environment per
//! Airflow, deploys the arrival path and the alert rules from the template and the pause and
//! resume state machines (their Lambda steps served by step-worker), routes files under
//! routes/ of the suite bucket (re-read every 5 s). The template's arrival and alert rules
//! deliver their events to trigger-dag and notify by themselves, as EventBridge does (an
//! asynchronous invoke of the built binaries behind the bed's Lambda service, each held to its
//! role of the template: tests/bed/lambda_rules.py); local-suite prints what each invocation
//! answered, until Ctrl-C or SIGTERM.

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use mwaa_ops_tests::arrivals::{trigger_dag_role, Arrivals, LANDING, SUITE_BUCKET};
use mwaa_ops_tests::bed;
use mwaa_ops_tests::environments::{wait_for_status, NewEnvironment};
use mwaa_ops_tests::iam::Role;
use mwaa_ops_tests::lambda::{Deployment, Functions};
use mwaa_ops_tests::sns::alert_topic;
use mwaa_ops_tests::suite::{deploy_pause_resume, deploy_stack, endpoints, STACK};
use mwaa_ops_tests::Bed;
use serde_json::{json, Value};

/// How often the local trigger-dag looks for changed routes files (ROUTES_RELOAD_SECONDS).
const ROUTES_PERIOD: Duration = Duration::from_secs(5);
const PREFIX: &str = "local";

/// notify as the template deploys it: the alert topic, its four rules, the function in
/// `deployment` held to its role (`machines`: the suite's, for its key).
async fn deploy_alerts(bed: &Bed, machines: &Value, deployment: Deployment) -> Deployment {
    let config = bed.aws_config().await;
    let suite_key = machines["key_arn"].as_str().expect("the suite key's ARN");
    let topic_arn = alert_topic(bed, "mwaa-ops-alerts", suite_key).await;
    let dead_letters = aws_sdk_sqs::Client::new(&config)
        .create_queue()
        .queue_name("mwaa-ops-failed-events")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId,
            suite_key,
        )
        .send()
        .await
        .expect("CreateQueue");
    let dead_letters = format!(
        "arn:aws:sqs:{}:{}:{}",
        bed.region,
        bed.account,
        dead_letters
            .queue_url()
            .and_then(|url| url.rsplit('/').next())
            .expect("the queue's name")
    );
    let scheduler_role = format!("arn:aws:iam::{}:role/mwaa-ops-scheduler", bed.account);
    let resources = [
        ("SuiteBucket", json!(SUITE_BUCKET)),
        ("SuiteKey", json!(suite_key)),
        ("AlertTopic", json!(topic_arn)),
        ("NotifySchedulerRole", json!(scheduler_role)),
        ("FailedEventsQueue", json!(dead_letters)),
    ];
    let mut role = Role::new("NotifyFunctionRole").parameter("EnvironmentNamePrefix", PREFIX);
    let mut deployment = deployment.parameter("EnvironmentNamePrefix", PREFIX);
    for (logical_id, physical) in resources {
        role = role.resource(logical_id, physical.clone());
        deployment = deployment.resource(logical_id, physical);
    }
    let key = bed.as_role(&role).await.key;
    for rule in [
        "NotifyFunctionExecutionEnded",
        "NotifyFunctionEnvironmentStatus",
        "NotifyFunctionMetadataFailed",
        "NotifyFunctionRoutesRejected",
    ] {
        deployment = deployment.rule(rule);
    }
    deployment.role_key("notify", &key)
}

/// What each asynchronous invocation the rules made answered, once it ended (an arrival's
/// object key from the event the rule delivered), and each event a rule could not deliver.
async fn print_invocations(functions: &Functions, printed: &mut std::collections::HashSet<String>) {
    let deliveries = functions.rule_deliveries().await;
    for delivery in &deliveries {
        let id = format!("rule {}", delivery["eventId"]);
        if delivery["outcome"] != "delivered" && printed.insert(id) {
            println!(
                "rule {}: event {} {} ({})",
                delivery["rule"],
                delivery["eventId"],
                delivery["outcome"],
                delivery["errorMessage"]
            );
        }
    }
    for invocation in functions.asynchronous_invocations().await {
        let request = invocation["requestId"].as_str().unwrap_or_default();
        let Some(event) = deliveries
            .iter()
            .find(|d| d["requestId"] == request)
            .map(|d| &d["event"])
        else {
            continue; // its delivery is being written down: the next look finds it
        };
        if invocation["outcome"] == "queued" || !printed.insert(request.to_owned()) {
            continue;
        }
        let response = &invocation["response"];
        let what = match invocation["function"].as_str() {
            Some("trigger-dag") => format!("arrival {}", event["detail"]["object"]["key"]),
            _ => "alert".to_owned(),
        };
        if invocation["outcome"] == "succeeded" {
            println!("{what}: {response}");
        } else {
            println!(
                "{what} FAILED after {} attempts: {}: {}",
                invocation["attempts"], response["errorType"], response["errorMessage"]
            );
        }
    }
}

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
    let suite = deploy_pause_resume(bed, &routes);
    let deployment = Deployment::new()
        .parameter("ArrivalBuckets", LANDING)
        .rule("TriggerDagFunctionArrival");
    let deployment = deploy_alerts(bed, &suite.machines, deployment).await;
    // Routes files under routes/ of the suite bucket are merged with these, looked at again
    // every few seconds here (every 60 s in AWS). One Lambda service runs trigger-dag and
    // notify.
    let period = ROUTES_PERIOD.as_secs().to_string();
    let arrivals = Arrivals::deploy_with(
        bed,
        routes.clone(),
        trigger_dag_role(PREFIX),
        &[("ROUTES_RELOAD_SECONDS", &period)],
        deployment,
    )
    .await;
    let machines = &suite.machines;
    // The CLI finds the suite from this stack's outputs, as in AWS.
    deploy_stack(
        bed,
        machines,
        &[
            ("EnvironmentNamePrefix", "local"),
            ("PausedEnvironments", "local-airflow2"),
            ("ScheduleTimezone", "Europe/Berlin"),
        ],
    )
    .await;
    let exports: Vec<String> = endpoints(bed, &suite.lambda_url)
        .into_iter()
        .map(|(k, v)| format!("export {k}={v}"))
        .collect();
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
         \nAdd or change routes without a restart (read within {period} s here, 60 s in AWS):\n  \
         echo '[{{\"name\": \"sales\", \"bucket\": \"{LANDING}\", \"prefix\": \"sales/\", \"environment\": \"local-airflow2\", \"dag\": \"bed_smoke\"}}]' > sales.json\n  \
         aws --endpoint-url {moto} s3 cp sales.json s3://{suite}/{prefix}sales.json\n  \
         curl -X PUT --data-binary 'a,b' {moto}/{LANDING}/sales/orders.csv\n\
         (a file that does not validate keeps its last good routes and prints here as notify's \"Routes Rejected\" alert)\n\
         \nPause local-airflow2 now (export, verify, delete), then resume it (Airflow 2 only):\n  \
         aws --endpoint-url {moto} stepfunctions start-execution --state-machine-arn {pause} \\\n    \
         --name pause-1 --input '{{\"environment\": \"local-airflow2\", \"poll_seconds\": 2}}'\n  \
         aws --endpoint-url {moto} stepfunctions start-execution --state-machine-arn {resume} \\\n    \
         --name resume-1 --input '{{\"environment\": \"local-airflow2\", \"poll_seconds\": 2}}'\n\
         (the bed keeps the same Airflow for the new environment: the import then finds its rows present)\n\
         Failing environments print here as the alert notify sends (try POST {mwaa}/_bed/status\n\
         {{\"name\": \"local-airflow3\", \"status\": \"UNAVAILABLE\"}}); emails: {moto}/moto-api/data.json.\n\
         \nThe same with the mwaa-ops CLI (cargo install --path functions/cli), in another shell:\n  \
         {exports}\n  \
         mwaa-ops status                      # every environment, last and next pause/resume, held, overrides\n  \
         mwaa-ops pause local-airflow2 --wait --poll-seconds 2\n  \
         mwaa-ops held local-airflow2         # drop a file under airflow2/ while it is paused\n  \
         mwaa-ops wake local-airflow2 --poll-seconds 2   # resume now and wait (replays what was held)\n  \
         mwaa-ops skip local-airflow2         # the next pause ends \"Skipped\"\n  \
         mwaa-ops stay-up local-airflow2 --until +3h\n  \
         mwaa-ops replay local-airflow2       # start held arrivals now\n  \
         (the stack `{stack}` in moto names the resources, as `sam deploy`'s does in AWS)\n\
         \nUse any AWS SDK or CLI with AWS_ENDPOINT_URL={moto} (MWAA: AWS_ENDPOINT_URL_MWAA={mwaa}),\n\
         region {region}, any credentials. Ctrl-C stops everything.\n",
        exports = exports.join("\n  "),
        stack = STACK,
        moto = bed.moto_url,
        mwaa = bed.mwaa_url,
        airflows = airflows.join("\n"),
        region = bed.region,
        period = ROUTES_PERIOD.as_secs(),
        suite = SUITE_BUCKET,
        prefix = mwaa_ops_tests::arrivals::ROUTES_PREFIX,
        pause = machines["pause"].as_str().unwrap_or_default(),
        resume = machines["resume"].as_str().unwrap_or_default(),
    );
    let report = async {
        let mut printed = std::collections::HashSet::new();
        loop {
            print_invocations(&arrivals.functions, &mut printed).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    // SIGTERM reaches local-suite alone (`kill PID`, `timeout`, a service manager), Ctrl-C the
    // whole process group: either ends here, so the step-worker is stopped and the bed too.
    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = report => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("stopping");
    drop(suite);
    // Exiting closes the bed's standard input: it stops every process it started.
}
