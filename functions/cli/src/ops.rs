//! The AWS calls the CLI makes, with the caller's own credentials. Endpoints come from the
//! standard variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary
//! works against AWS and the local bed.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sfn::types::ExecutionStatus;
use common::{Error, ErrorKind};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// One pause or resume execution, as the CLI shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub arn: String,
    pub environment: Option<String>,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; SKIPPED for a pause that skipped.
    pub result: String,
    pub started: Timestamp,
    pub stopped: Option<Timestamp>,
    /// Why it was skipped or failed (the error and its cause), when it was.
    pub reason: Option<String>,
}

/// An arrival held while its environment was away.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub dag_id: String,
    pub run_id: String,
    pub key: String,
    pub held_since: Option<Timestamp>,
}

/// How many of a state machine's newest executions `status` reads (one DescribeExecution
/// each): enough for the last pause and resume of a few dozen environments.
pub const RECENT_EXECUTIONS: i32 = 40;

pub struct Aws {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub s3: aws_sdk_s3::Client,
    pub mwaa: aws_sdk_mwaa::Client,
    pub lambda: aws_sdk_lambda::Client,
}

fn timestamp(t: &aws_sdk_sfn::primitives::DateTime) -> Timestamp {
    Timestamp::from_second(t.secs()).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Aws {
    pub async fn from_env() -> Aws {
        let config = common::aws::load_config().await;
        Aws {
            cloudformation: aws_sdk_cloudformation::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            s3: aws_sdk_s3::Client::new(&config),
            mwaa: common::aws::mwaa_client(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
        }
    }

    /// Every MWAA environment whose name starts with `prefix` (ListEnvironments, every page).
    pub async fn environments(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut names = vec![];
        let mut pages = self.mwaa.list_environments().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::aws("MWAA", "ListEnvironments", &e))?;
            names.extend(
                page.environments()
                    .iter()
                    .filter(|n| n.starts_with(prefix))
                    .cloned(),
            );
        }
        Ok(names)
    }

    /// MWAA's status of the environment, `NOT_FOUND` when MWAA does not know it.
    pub async fn status(&self, environment: &str) -> Result<String, Error> {
        let found = common::aws::get_environment(&self.mwaa, environment).await?;
        Ok(common::Status::of(found.as_ref()).as_str().to_string())
    }

    /// The folder names one level under `prefix` in the bucket (`snapshots/<env>/`).
    pub async fn folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
        let mut names = vec![];
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::aws("S3", "ListObjectsV2", &e))?;
            for folder in page.common_prefixes() {
                if let Some(name) = folder.prefix().and_then(|p| p.strip_prefix(prefix)) {
                    names.push(name.trim_end_matches('/').to_string());
                }
            }
        }
        Ok(names)
    }

    /// An object's text; `None` when there is none.
    pub async fn read(&self, bucket: &str, key: &str) -> Result<Option<String>, Error> {
        let body = common::aws::read_object(&self.s3, bucket, key).await?;
        Ok(body.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Writes an override, encrypted with the bucket's KMS key as everything there: by the
    /// bucket's default, since `aws:kms` without a key id would mean the AWS managed key.
    pub async fn write(&self, bucket: &str, key: &str, body: &str) -> Result<(), Error> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("text/plain")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| Error::aws("S3", "PutObject", &e))?;
        Ok(())
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), Error> {
        common::aws::delete_object(&self.s3, bucket, key).await
    }

    /// The arrivals held for `environment` (trigger-dag keeps each as
    /// `held/<environment>/<dag>/<run id>.json`).
    pub async fn held(&self, bucket: &str, environment: &str) -> Result<Vec<Held>, Error> {
        let prefix = format!("held/{environment}/");
        let objects = trigger_dag::ops::list_objects(&self.s3, bucket, &prefix).await?;
        Ok(objects
            .into_iter()
            .filter_map(|object| {
                let rest = object.key.strip_prefix(&prefix)?;
                let (dag_id, file) = rest.split_once('/')?;
                Some(Held {
                    dag_id: dag_id.to_string(),
                    run_id: file.trim_end_matches(".json").to_string(),
                    held_since: object
                        .last_modified
                        .and_then(|s| Timestamp::from_second(s).ok()),
                    key: object.key,
                })
            })
            .collect())
    }

    /// Starts an execution named `name`; returns its ARN.
    pub async fn start(&self, machine: &str, name: &str, input: &Value) -> Result<String, Error> {
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| Error::aws("Step Functions", "StartExecution", &e))?;
        Ok(started.execution_arn)
    }

    /// One execution, read in full.
    pub async fn execution(&self, arn: &str) -> Result<Execution, Error> {
        let e = self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| Error::aws("Step Functions", "DescribeExecution", &e))?;
        let input: Value = e
            .input()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_default();
        let output: Value = e
            .output()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        let skipped = output["skipped"].as_str().map(String::from);
        let failure = match (e.error(), e.cause()) {
            (Some(error), Some(cause)) => Some(format!("{error}: {cause}")),
            (Some(error), None) => Some(error.to_string()),
            (None, cause) => cause.map(String::from),
        };
        let result = match (&e.status, &skipped) {
            (ExecutionStatus::Succeeded, Some(_)) => "SKIPPED".to_string(),
            (status, _) => status.as_str().to_string(),
        };
        Ok(Execution {
            arn: e.execution_arn.clone(),
            environment: input["environment"].as_str().map(String::from),
            result,
            started: timestamp(&e.start_date),
            stopped: e.stop_date().map(timestamp),
            reason: skipped.or(failure),
        })
    }

    /// The newest executions of a state machine (at most `limit`), newest first;
    /// `running` keeps only those still running.
    pub async fn recent(
        &self,
        machine: &str,
        limit: i32,
        running: bool,
    ) -> Result<Vec<Execution>, Error> {
        let mut list = self
            .sfn
            .list_executions()
            .state_machine_arn(machine)
            .max_results(limit);
        if running {
            list = list.status_filter(ExecutionStatus::Running);
        }
        let listed = list
            .send()
            .await
            .map_err(|e| Error::aws("Step Functions", "ListExecutions", &e))?;
        let mut items: Vec<_> = listed.executions().to_vec();
        items.sort_by_key(|e| std::cmp::Reverse(e.start_date.secs()));
        let mut out = vec![];
        for item in items.iter().take(limit as usize) {
            out.push(self.execution(&item.execution_arn).await?);
        }
        Ok(out)
    }

    /// Invokes a function and waits for its answer; its failure is an error naming it.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, Error> {
        let answer = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| Error::aws("Lambda", "Invoke", &e))?;
        let body: Value = answer
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or_default();
        if let Some(kind) = answer.function_error() {
            return Err(Error::new(
                ErrorKind::OperationFailed,
                format!(
                    "{function} failed ({kind}): {} {}",
                    body["errorType"].as_str().unwrap_or_default(),
                    body["errorMessage"].as_str().unwrap_or_default()
                ),
            ));
        }
        Ok(body)
    }
}
