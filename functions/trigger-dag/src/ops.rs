//! The AWS calls trigger-dag makes, behind one narrow trait: the SDK in Lambda and on the
//! bed, a fake in unit tests.

use std::future::Future;

use serde_json::{json, Value};

use common::airflow::{AirflowRest, RestRequest, RestResponse};
use common::environment::SUITE_SOURCE;
use common::{Availability, Error};

use crate::decide::Target;
use crate::route_files::Listed;
use crate::workflows::WorkflowRun;

pub trait Ops: AirflowRest {
    /// Whether the environment can run DAGs now, and which Airflow it runs.
    fn environment(&self, name: &str) -> impl Future<Output = Result<Availability, Error>> + Send;
    /// Whether a pause has marked the environment (its `pausing/<environment>` object exists).
    fn pausing(&self, environment: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Keeps a target until its environment is back (same target twice: one record).
    fn hold(&self, target: &Target) -> impl Future<Output = Result<(), Error>> + Send;
    /// Up to `limit` of the targets held for an environment (one listing page).
    fn held(
        &self,
        environment: &str,
        limit: usize,
    ) -> impl Future<Output = Result<HeldPage, Error>> + Send;
    /// Forgets a held target once its run exists.
    fn release(&self, target: &Target) -> impl Future<Output = Result<(), Error>> + Send;
    /// Moves a held target that can never run aside (kept, with the reason), for people to look at.
    fn set_aside(
        &self,
        target: &Target,
        reason: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// StartWorkflowRun with the run's client token and parameters; MWAA Serverless's run id.
    fn start_workflow_run(
        &self,
        run: &WorkflowRun,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// The objects under `prefix` in the suite bucket (routes files), every page.
    fn list_route_files(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<Listed>, Error>> + Send;
    /// One routes file's content (`None`: deleted since it was listed).
    fn route_file(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;
    /// Puts a suite event ([`SUITE_SOURCE`]) on the default bus.
    fn publish(
        &self,
        detail_type: &str,
        detail: Value,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// One page of held targets.
#[derive(Debug, Default)]
pub struct HeldPage {
    pub targets: Vec<Target>,
    /// More records were held than the page holds.
    pub more: bool,
}

/// The real thing.
pub struct AwsOps {
    pub mwaa: aws_sdk_mwaa::Client,
    pub serverless: aws_sdk_mwaaserverless::Client,
    pub s3: aws_sdk_s3::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub bucket: String,
}

/// The MWAA Serverless client (endpoint override: `AWS_ENDPOINT_URL_MWAA_SERVERLESS`), each
/// attempt bounded like MWAA's calls ([`common::aws::MWAA_ATTEMPT_TIMEOUT`]): a hung call
/// is tried again, and the client token makes that safe.
pub fn serverless_client(config: &common::aws::SdkConfig) -> aws_sdk_mwaaserverless::Client {
    aws_sdk_mwaaserverless::Client::new(&common::aws::bounded_like_mwaa(config))
}

/// `pausing/<environment>`: the mark a pause sets before its export and removes when the
/// environment stays up (or the resume after it is done); the state machines write it.
pub fn pausing_key(environment: &str) -> String {
    format!("pausing/{environment}")
}

/// `held/<environment>/<dag>/<run id>.json`: one object per run, so holding twice is harmless.
pub fn held_key(target: &Target) -> String {
    format!(
        "held/{}/{}/{}.json",
        target.environment, target.dag_id, target.run_id
    )
}

impl AirflowRest for AwsOps {
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
        self.mwaa.invoke(request).await
    }
}

impl Ops for AwsOps {
    async fn environment(&self, name: &str) -> Result<Availability, Error> {
        let environment = common::aws::get_environment(&self.mwaa, name).await?;
        Availability::of(name, environment.as_ref())
    }

    /// A listing, not a read: the role may list `pausing/*` but not the whole bucket, and S3
    /// answers a read of a missing object 403 (not 404) to a role without ListBucket on the
    /// bucket itself, which an unmarked environment would be. The exact key sorts first among
    /// keys it prefixes (`pausing/dev` before `pausing/dev-2`), so one key is enough.
    async fn pausing(&self, environment: &str) -> Result<bool, Error> {
        let key = pausing_key(environment);
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| Error::aws("S3", "ListObjectsV2", &e))?;
        Ok(page
            .contents()
            .iter()
            .any(|o| o.key() == Some(key.as_str())))
    }

    async fn hold(&self, target: &Target) -> Result<(), Error> {
        let body = serde_json::to_vec(target).expect("a target serializes");
        common::aws::put_json(&self.s3, &self.bucket, &held_key(target), body).await
    }

    async fn held(&self, environment: &str, limit: usize) -> Result<HeldPage, Error> {
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("held/{environment}/"))
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::aws("S3", "ListObjectsV2", &e))?;
        let mut targets = vec![];
        for object in page.contents().iter().filter_map(|o| o.key()) {
            // Gone between the listing and the read: a concurrent replay released it.
            let Some(bytes) = self.read(object).await? else {
                continue;
            };
            let target = serde_json::from_slice(&bytes).map_err(|e| Error::Unreadable {
                what: format!("held arrival s3://{}/{object}", self.bucket),
                reason: e.to_string(),
            })?;
            targets.push(target);
        }
        Ok(HeldPage {
            targets,
            more: page.is_truncated().unwrap_or(false),
        })
    }

    async fn release(&self, target: &Target) -> Result<(), Error> {
        common::aws::delete_object(&self.s3, &self.bucket, &held_key(target)).await
    }

    async fn set_aside(&self, target: &Target, reason: &str) -> Result<(), Error> {
        let record = json!({"target": target, "reason": reason});
        let key = format!("failed/{}", held_key(target).trim_start_matches("held/"));
        common::aws::put_json(
            &self.s3,
            &self.bucket,
            &key,
            record.to_string().into_bytes(),
        )
        .await?;
        self.release(target).await
    }

    async fn start_workflow_run(&self, run: &WorkflowRun) -> Result<String, Error> {
        let parameters = run
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), common::document::to_document(v)))
            .collect();
        let out = self
            .serverless
            .start_workflow_run()
            .workflow_arn(&run.workflow_arn)
            .client_token(&run.client_token)
            .set_override_parameters(Some(parameters))
            .send()
            .await
            .map_err(|e| Error::aws("MWAA Serverless", "StartWorkflowRun", &e))?;
        // The model makes RunId optional; an answer without one still started the run.
        Ok(out.run_id().unwrap_or_default().to_owned())
    }

    async fn list_route_files(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        self.list(prefix).await
    }

    async fn route_file(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.read(key).await
    }

    async fn publish(&self, detail_type: &str, detail: Value) -> Result<(), Error> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(SUITE_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| Error::aws("EventBridge", "PutEvents", &e))?;
        if out.failed_entry_count() > 0 {
            return Err(Error::Aws {
                service: "EventBridge",
                operation: "PutEvents",
                message: format!("{:?}", out.entries()),
                retryable: true,
            });
        }
        Ok(())
    }
}

impl AwsOps {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        list_objects(&self.s3, &self.bucket, prefix).await
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        read_object(&self.s3, &self.bucket, key).await
    }
}

/// Every object under `prefix` of `bucket`, all pages (also the CLI's `held`).
pub async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Listed>, Error> {
    let mut listed = vec![];
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("S3", "ListObjectsV2", &e))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            listed.push(Listed {
                key: key.to_owned(),
                etag: object.e_tag().map(str::to_owned),
                last_modified: object.last_modified().map(|t| t.secs()),
                size: object.size(),
            });
        }
    }
    Ok(listed)
}

use common::aws::read_object;
