//! The morning digest on the bed: `notify` acting as its role of the template (IAM enforced),
//! its own topic (`DigestTopicArn`), and the template's `<stack>-resume-succeeded` rule in
//! moto's EventBridge, so a resume's end reaches the handler as EventBridge delivers it.

use std::time::Duration;

use notify::decide::Settings;
use notify::morning::prices::Prices;
use notify::morning::DigestSettings;
use notify::ops::AwsOps;
use notify::Notify;
use serde_json::{json, Value};

use crate::arrivals::SUITE_BUCKET;
use crate::iam::{AsRole, Role};
use crate::rules::RuleQueue;
use crate::sns::Email;
use crate::Bed;

const BUDGET: Duration = Duration::from_secs(30);
const OWN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:mwaa-ops-notify";

/// notify's clients as main.rs builds them, signed as `as_role` (its role of the template), so
/// the bed refuses what that role may not do.
pub fn notify_ops(
    as_role: &AsRole,
    topic_arn: String,
    scheduler_role_arn: String,
    dead_letter_arn: String,
) -> AwsOps {
    AwsOps {
        sns: aws_sdk_sns::Client::new(&as_role.aws),
        s3: as_role.s3(),
        sfn: aws_sdk_sfn::Client::new(&as_role.aws),
        mwaa: as_role.mwaa(),
        scheduler: aws_sdk_scheduler::Client::new(&as_role.aws),
        topic_arn,
        bucket: SUITE_BUCKET.into(),
        scheduler_role_arn,
        dead_letter_arn: Some(dead_letter_arn),
    }
}

/// notify with the digest on, as the template deploys it for the suite `machines`
/// (tests/pause_resume/machines.py's answer).
pub struct Digest {
    pub topic_arn: String,
    function: Notify<AwsOps>,
    rule: RuleQueue,
    config: aws_config::SdkConfig,
}

impl Digest {
    pub async fn deploy(bed: &Bed, machines: &Value, prefix: &str) -> Digest {
        let config = bed.aws_config().await;
        let sns = aws_sdk_sns::Client::new(&config);
        let mut topics = vec![];
        for name in ["mwaa-ops-alerts", "mwaa-ops-digest"] {
            let out = sns.create_topic().name(name).send().await.expect("topic");
            topics.push(out.topic_arn.expect("topic arn"));
        }
        let (alerts, digest) = (topics[0].clone(), topics[1].clone());
        let scheduler_role = format!("arn:aws:iam::{}:role/mwaa-ops-scheduler", bed.account);
        let dead_letters = format!("arn:aws:sqs:{}:{}:failed-events", bed.region, bed.account);
        let params = [
            ("EnvironmentNamePrefix", prefix),
            ("DigestTopicArn", digest.as_str()),
        ];
        let mut role = Role::new("NotifyFunctionRole");
        for (name, value) in params {
            role = role.parameter(name, value);
        }
        let role = role
            .resource("SuiteBucket", SUITE_BUCKET.into())
            .resource("SuiteKey", machines["key_arn"].clone())
            .resource("AlertTopic", alerts.as_str().into())
            .resource("NotifySchedulerRole", scheduler_role.as_str().into())
            .resource("FailedEventsQueue", dead_letters.as_str().into());
        let as_role = bed.as_role(&role).await;
        let resume = machines["resume"].as_str().expect("resume ARN").to_owned();
        let function = Notify {
            ops: notify_ops(&as_role, alerts, scheduler_role, dead_letters),
            settings: Settings {
                region: bed.region.clone(),
                pending_minutes: 60,
                environment_prefix: prefix.into(),
            },
            window: Duration::from_secs(3600),
            // As main.rs builds it from the template's variables.
            digest: Some(DigestSettings {
                resume_state_machine_arn: resume,
                topic_arn: digest.clone(),
                prices: Prices::for_region(&bed.region, "").expect("built-in prices"),
            }),
        };
        let rule = bed
            .rule_to_queue("NotifyFunctionResumeSucceeded", &params)
            .await;
        Digest {
            topic_arn: digest,
            function,
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
            answers.push(
                self.function
                    .handle(event, OWN_ARN, common::Deadline::after(BUDGET))
                    .await
                    .expect("notify handles the resume's end"),
            );
        }
        answers
    }

    /// What was published on the digest topic so far.
    pub async fn emails(&self, bed: &Bed) -> Vec<Email> {
        crate::sns::published(bed, &self.topic_arn).await
    }
}
