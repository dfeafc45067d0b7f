//! trigger-dag deployed on the bed as the template deploys it: a versioned landing bucket
//! with EventBridge notifications, the template's arrival rule (to a queue), the suite
//! bucket for held arrivals, and the function itself as its built binary behind the bed's
//! Lambda service, held to its role of the template (IAM enforced, as in AWS).

use std::time::Duration;

use serde_json::{json, Value};

use crate::iam::Role;
use crate::lambda::{Deployment, Failure, Functions};
use crate::rules::RuleQueue;
use crate::Bed;
/// trigger-dag's role of the template, for environments whose names start with `prefix`.
pub fn trigger_dag_role(prefix: &str) -> Role {
    Role::new("TriggerDagFunctionRole")
        .parameter("EnvironmentNamePrefix", prefix)
        .resource("SuiteBucket", SUITE_BUCKET.into())
}

pub const LANDING: &str = "landing-zone";
pub const SUITE_BUCKET: &str = "mwaa-ops-suite";
/// Where the template tells trigger-dag to look for routes files (`ROUTES_PREFIX`).
pub const ROUTES_PREFIX: &str = "routes/";
/// trigger-dag's name (its binary's) in the bed's Lambda service.
pub const TRIGGER_DAG: &str = "trigger-dag";
/// How long trigger-dag trusts an unmarked AVAILABLE answer on the bed (30 s in the template),
/// here and in step-worker: the state machines' `pausing_wait_seconds` is scaled to it
/// (tests/pause_resume/machines.py), as the template's is to 30 s.
pub const BED_ENVIRONMENT_CACHE_SECONDS: &str = "1";

/// S3 console > Properties > Amazon EventBridge: On.
pub async fn send_events_to_eventbridge(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutBucketNotificationConfiguration");
}

pub struct Arrivals {
    pub s3: aws_sdk_s3::Client,
    pub rule: RuleQueue,
    /// Every `mwaa-ops` event the function put on the bus.
    pub suite_events: RuleQueue,
    /// The bed's Lambda service running trigger-dag (and whatever else the deployment has):
    /// its output holds the function's logs and metric documents.
    pub functions: Functions,
    deployment: Deployment,
}

impl Arrivals {
    /// Deploys the arrival path with `routes` (the `Routes` parameter's JSON), trigger-dag held
    /// to its role of the template for environments whose names start with `prefix`.
    pub async fn deploy(bed: &Bed, routes: Value, prefix: &str) -> Arrivals {
        Self::deploy_as(bed, routes, trigger_dag_role(prefix), &[]).await
    }

    /// Deploys the arrival path with trigger-dag acting as `role`, its `variables` over the
    /// template's (e.g. `ROUTES_RELOAD_SECONDS` scaled for the bed).
    pub async fn deploy_as(
        bed: &Bed,
        routes: Value,
        role: Role,
        variables: &[(&str, &str)],
    ) -> Arrivals {
        Self::deploy_with(bed, routes, role, variables, Deployment::new()).await
    }

    /// As [`Arrivals::deploy_as`], in `deployment` (which may carry other functions'
    /// settings: they run in the same Lambda service).
    pub async fn deploy_with(
        bed: &Bed,
        routes: Value,
        role: Role,
        variables: &[(&str, &str)],
        deployment: Deployment,
    ) -> Arrivals {
        let s3 = bed.s3().await;
        for bucket in [LANDING, SUITE_BUCKET] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        // Versioned, as landing buckets should be (every write gets its own version id) and
        // as the template makes the suite bucket (a verified export names its version).
        for bucket in [LANDING, SUITE_BUCKET] {
            crate::versioned(&s3, bucket).await;
        }
        send_events_to_eventbridge(&s3, LANDING).await;
        let rule = bed
            .rule_to_queue(
                "TriggerDagFunctionArrival",
                &[
                    ("ArrivalBuckets", LANDING),
                    ("EnvironmentNamePrefix", "local"),
                ],
            )
            .await;
        let suite_events = bed
            .pattern_to_queue("suite-events", &json!({"source": ["mwaa-ops"]}))
            .await;
        let key = bed.as_role(&role).await.key;
        let mut deployment = deployment
            .parameter("Routes", &routes.to_string())
            .resource("SuiteBucket", SUITE_BUCKET.into())
            .role_key(TRIGGER_DAG, &key)
            .variable(
                TRIGGER_DAG,
                "ENVIRONMENT_CACHE_SECONDS",
                BED_ENVIRONMENT_CACHE_SECONDS,
            );
        for (name, value) in variables {
            deployment = deployment.variable(TRIGGER_DAG, name, value);
        }
        let functions = Functions::start(bed, deployment.clone()).await;
        Arrivals {
            s3,
            rule,
            suite_events,
            functions,
            deployment,
        }
    }

    /// Starts trigger-dag afresh: the next invocation is a cold start (its routes files read
    /// again, nothing known of any environment), as after a deploy or a long idle time.
    pub async fn cold_start(&mut self, bed: &Bed) {
        self.functions = Functions::start(bed, self.deployment.clone()).await;
    }

    /// Invokes trigger-dag with `event`, as EventBridge Scheduler, the resume's state machine
    /// or the CLI do.
    pub async fn invoke(&self, event: &Value) -> Result<Value, Failure> {
        self.functions.invoke(TRIGGER_DAG, event).await
    }

    pub async fn put(&self, key: &str, body: &str) {
        self.s3
            .put_object()
            .bucket(LANDING)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }

    /// Invokes trigger-dag with every event the rule delivered, `times` times each
    /// (at-least-once delivery).
    pub async fn deliver(&self, expected: usize, times: usize) -> Vec<Result<Value, Failure>> {
        let events = self.rule.take(expected, Duration::from_secs(15)).await;
        assert_eq!(
            events.len(),
            expected,
            "events routed by the template's rule"
        );
        let mut results = vec![];
        for event in &events {
            for _ in 0..times {
                results.push(self.invoke(event).await);
            }
        }
        results
    }

    /// Writes a routes file (`routes/<name>`) to the suite bucket, as `aws s3 cp` would.
    pub async fn put_routes(&self, name: &str, body: &str) {
        self.s3
            .put_object()
            .bucket(SUITE_BUCKET)
            .key(format!("{ROUTES_PREFIX}{name}"))
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }

    pub async fn held_keys(&self) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(SUITE_BUCKET)
            .prefix("held/")
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .map(|o| o.key().unwrap().to_owned())
            .collect()
    }
}
