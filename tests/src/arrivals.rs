//! trigger-dag deployed on the bed as the template deploys it: a versioned landing bucket
//! with EventBridge notifications, the template's arrival rule (to a queue), the suite
//! bucket for held arrivals, and the function itself, in-process.

use std::time::Duration;

use serde_json::{json, Value};
use trigger_dag::catalog::{FileSettings, RouteCatalog};
use trigger_dag::ops::AwsOps;
use trigger_dag::routes::parse_routes;
use trigger_dag::TriggerDag;

use crate::iam::Role;
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
/// Retry budget per event, as a Lambda with a minute would have.
pub const BUDGET: Duration = Duration::from_secs(30);

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
    pub function: TriggerDag<AwsOps>,
}

impl Arrivals {
    /// Deploys the arrival path with `routes` (the `Routes` parameter's JSON).
    pub async fn deploy(bed: &Bed, routes: Value) -> Arrivals {
        Self::deploy_with_files(bed, routes, None).await
    }

    /// Deploys the arrival path with `routes` and, when `period` is given, the routes files
    /// under [`ROUTES_PREFIX`] of the suite bucket, looked at again after `period`.
    pub async fn deploy_with_files(bed: &Bed, routes: Value, period: Option<Duration>) -> Arrivals {
        Self::deploy_as(bed, routes, period, None).await
    }

    /// Deploys the arrival path with trigger-dag held to its role of the template (IAM
    /// enforced by the bed), for environments whose names start with `prefix`.
    pub async fn deploy_enforced(bed: &Bed, routes: Value, prefix: &str) -> Arrivals {
        Self::deploy_as(bed, routes, None, Some(trigger_dag_role(prefix))).await
    }

    /// Deploys the arrival path; trigger-dag acts as `role` when given, else unchecked.
    pub async fn deploy_as(
        bed: &Bed,
        routes: Value,
        period: Option<Duration>,
        role: Option<Role>,
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
        let ops = match role {
            Some(role) => {
                let as_role = bed.as_role(&role).await;
                AwsOps {
                    mwaa: as_role.mwaa(),
                    serverless: trigger_dag::ops::serverless_client(&as_role.serverless),
                    s3: as_role.s3(),
                    events: aws_sdk_eventbridge::Client::new(&as_role.aws),
                    bucket: SUITE_BUCKET.into(),
                }
            }
            None => AwsOps {
                mwaa: bed.mwaa().await,
                serverless: bed.mwaa_serverless().await,
                s3: s3.clone(),
                events: aws_sdk_eventbridge::Client::new(&bed.aws_config().await),
                bucket: SUITE_BUCKET.into(),
            },
        };
        let function = TriggerDag {
            replay: Default::default(),
            ops,
            routes: match period {
                Some(period) => RouteCatalog::with_files(
                    parse_routes(&routes.to_string()).unwrap(),
                    FileSettings {
                        bucket: SUITE_BUCKET.into(),
                        prefix: ROUTES_PREFIX.into(),
                        period,
                    },
                ),
                None => parse_routes(&routes.to_string()).unwrap().into(),
            },
            environments: Default::default(),
        };
        Arrivals {
            s3,
            rule,
            suite_events,
            function,
        }
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

    /// Hands every delivered event to the handler `times` times (at-least-once delivery).
    pub async fn deliver(
        &self,
        expected: usize,
        times: usize,
    ) -> Vec<Result<Value, common::Error>> {
        let events = self.rule.take(expected, Duration::from_secs(15)).await;
        assert_eq!(
            events.len(),
            expected,
            "events routed by the template's rule"
        );
        let mut results = vec![];
        for event in &events {
            for _ in 0..times {
                results.push(
                    self.function
                        .handle(event.clone(), common::Deadline::after(BUDGET))
                        .await,
                );
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
