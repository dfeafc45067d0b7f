//! The morning digest on the bed: `notify`'s binary behind the bed's Lambda service, as its
//! role of the template (IAM enforced), its own topic (`DigestTopicArn`), and the template's
//! `<stack>-resume-succeeded` rule in moto's EventBridge, so a resume's end reaches the
//! function as EventBridge delivers it (an invocation with the event).

use std::time::Duration;

use serde_json::{json, Value};

use crate::arrivals::SUITE_BUCKET;
use crate::iam::Role;
use crate::lambda::{Deployment, Functions};
use crate::rules::RuleQueue;
use crate::sns::Email;
use crate::Bed;

/// notify as the template deploys it with `parameters` and the bed's `resources` (logical
/// id -> name or ARN): its binary behind the bed's Lambda service, signing as
/// NotifyFunctionRole (the bed refuses what that role may not do); `deployment` adds what a
/// test scales (a Timeout, an endpoint).
pub async fn start_notify(
    bed: &Bed,
    parameters: &[(&str, &str)],
    resources: &[(&str, Value)],
    mut deployment: Deployment,
) -> Functions {
    let mut role = Role::new("NotifyFunctionRole");
    for (name, value) in parameters {
        role = role.parameter(name, value);
        deployment = deployment.parameter(name, value);
    }
    for (logical_id, physical) in resources {
        role = role.resource(logical_id, physical.clone());
        deployment = deployment.resource(logical_id, physical.clone());
    }
    let key = bed.as_role(&role).await.key;
    Functions::start(bed, deployment.role_key("notify", &key)).await
}

/// What notify's variables and role name on `bed`: the suite bucket `bucket`, the alert topic
/// `alert_topic`, the suite key `suite_key` (the topic's), and its account's scheduler role and
/// failed-events queue.
pub fn notify_resources(
    bed: &Bed,
    bucket: &str,
    alert_topic: &str,
    suite_key: &str,
) -> Vec<(&'static str, Value)> {
    let scheduler_role = format!("arn:aws:iam::{}:role/mwaa-ops-scheduler", bed.account);
    let dead_letters = format!("arn:aws:sqs:{}:{}:failed-events", bed.region, bed.account);
    vec![
        ("SuiteBucket", bucket.into()),
        ("AlertTopic", alert_topic.into()),
        ("SuiteKey", suite_key.into()),
        ("NotifySchedulerRole", scheduler_role.into()),
        ("FailedEventsQueue", dead_letters.into()),
    ]
}

/// Runs a state machine `name` of `definition` (created in moto) with `input` to its end: the
/// ended execution, as DescribeExecution tells it.
pub async fn ended_execution(
    sfn: &aws_sdk_sfn::Client,
    name: &str,
    definition: &Value,
    input: &Value,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let machine = sfn
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn(format!("arn:aws:iam::123456789012:role/{name}"))
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn;
    let execution = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .input(input.to_string())
        .send()
        .await
        .expect("StartExecution")
        .execution_arn;
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .expect("DescribeExecution");
        if described.status().as_str() != "RUNNING" {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// notify with the digest on, as the template deploys it for the suite `machines`
/// (tests/pause_resume/machines.py's answer: the stack's `<stack>-resume`, which the
/// template's RESUME_STATE_MACHINE_ARN names).
pub struct Digest {
    pub topic_arn: String,
    /// The alert topic (notify's `AlertTopic`), where its alerts go.
    pub alert_topic_arn: String,
    functions: Functions,
    rule: RuleQueue,
    config: aws_config::SdkConfig,
}

impl Digest {
    pub async fn deploy(bed: &Bed, machines: &Value, prefix: &str) -> Digest {
        Digest::deploy_with(bed, &machines["key_arn"], prefix, Deployment::new()).await
    }

    /// [`Digest::deploy`] with the suite key `key_arn` and what a test scales (`deployment`).
    pub async fn deploy_with(
        bed: &Bed,
        key_arn: &Value,
        prefix: &str,
        deployment: Deployment,
    ) -> Digest {
        let config = bed.aws_config().await;
        let key_arn = key_arn.as_str().expect("the suite key's ARN");
        let alerts = crate::sns::alert_topic(bed, "mwaa-ops-alerts", key_arn).await;
        // The digest topic is the user's own (DigestTopicArn), as they made it.
        let digest = aws_sdk_sns::Client::new(&config)
            .create_topic()
            .name("mwaa-ops-digest")
            .send()
            .await
            .expect("topic")
            .topic_arn
            .expect("topic arn");
        let params = [
            ("EnvironmentNamePrefix", prefix),
            ("DigestTopicArn", digest.as_str()),
        ];
        let resources = notify_resources(bed, SUITE_BUCKET, &alerts, key_arn);
        let functions = start_notify(bed, &params, &resources, deployment).await;
        let rule = bed
            .rule_to_queue("NotifyFunctionResumeSucceeded", &params)
            .await;
        Digest {
            topic_arn: digest,
            alert_topic_arn: alerts,
            functions,
            rule,
            config,
        }
    }

    /// The `Step Functions Execution Status Change` event of the ended execution
    /// `execution_arn`, put on moto's bus and taken from the template's rule as Lambda would
    /// get it; each is handed to notify. Its answers.
    pub async fn deliver_end_of(&self, execution_arn: &str) -> Vec<Value> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let e = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .expect("DescribeExecution");
        let millis = |t: &aws_sdk_sfn::primitives::DateTime| t.to_millis().expect("millis");
        // The event's detail as Step Functions documents it (input and output as strings).
        let detail = json!({
            "executionArn": e.execution_arn(),
            "stateMachineArn": e.state_machine_arn(),
            "name": e.name(),
            "status": e.status().as_str(),
            "startDate": millis(e.start_date()),
            "stopDate": e.stop_date().map(millis),
            "input": e.input(),
            "inputDetails": {"included": true},
            "output": e.output(),
            "outputDetails": {"included": true},
            "error": e.error(),
            "cause": e.cause(),
        });
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.states")
            .detail_type("Step Functions Execution Status Change")
            .resources(execution_arn)
            .detail(detail.to_string())
            .build();
        let put = aws_sdk_eventbridge::Client::new(&self.config)
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("PutEvents");
        assert_eq!(put.failed_entry_count(), 0, "{put:?}");
        let mut answers = vec![];
        for event in self.rule.take(1, Duration::from_secs(15)).await {
            let answer = self.functions.invoke("notify", &event).await;
            answers.push(answer.unwrap_or_else(|f| panic!("notify failed the resume's end: {f}")));
        }
        answers
    }

    /// Invokes the same notify with `event` (an alert rule's), as the rule's target would.
    pub async fn invoke(&self, event: &Value) -> Result<Value, crate::lambda::Failure> {
        self.functions.invoke("notify", event).await
    }

    /// What was published on the alert topic so far.
    pub async fn alerts(&self, bed: &Bed) -> Vec<Email> {
        crate::sns::published(bed, &self.alert_topic_arn).await
    }

    /// The embedded metrics notify printed so far (the digest's `HoursPaused`, ...).
    pub fn metrics(&self) -> Vec<Value> {
        self.functions.metrics()
    }

    /// What was published on the digest topic so far.
    pub async fn emails(&self, bed: &Bed) -> Vec<Email> {
        crate::sns::published(bed, &self.topic_arn).await
    }
}
