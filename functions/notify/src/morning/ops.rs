//! The AWS calls the morning digest makes, behind one narrow trait: the resume executions
//! (Step Functions), the pause's snapshot record and the digest's marker (S3), the email
//! (SNS). The failed step comes from [`crate::ops::Ops::failed_step`].

use std::future::Future;

use aws_sdk_sfn::types::ExecutionStatus;
use common::Error;
use serde_json::Value;

use super::{marker_key, ResumeRun, RunDetail};
use crate::ops::AwsOps;

/// ListExecutions pages read at most (100 executions each): far more than a morning's.
const MAX_PAGES: usize = 5;

pub trait DigestOps: Send + Sync {
    /// The state machine's executions started at or after `since_ms`, newest first.
    fn resume_runs(
        &self,
        state_machine_arn: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<ResumeRun>, Error>> + Send;
    fn run_detail(
        &self,
        execution_arn: &str,
    ) -> impl Future<Output = Result<RunDetail, Error>> + Send;
    /// A JSON object of the suite bucket; `None` when there is none.
    fn record(&self, key: &str) -> impl Future<Output = Result<Option<Value>, Error>> + Send;
    /// Whether the digest of `date` was sent.
    fn digest_sent(&self, date: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Writes the marker of `date` unless there is one (S3's conditional write), saying
    /// `claim`; `false` when there is one already.
    fn claim_digest(
        &self,
        date: &str,
        claim: &Value,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Removes the marker of `date` (the email it claimed could not be sent).
    fn release_digest(&self, date: &str) -> impl Future<Output = Result<(), Error>> + Send;
    fn publish_digest(
        &self,
        topic_arn: &str,
        subject: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

fn millis(t: Option<&aws_sdk_sfn::primitives::DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

impl DigestOps for AwsOps {
    async fn resume_runs(
        &self,
        state_machine_arn: &str,
        since_ms: i64,
    ) -> Result<Vec<ResumeRun>, Error> {
        let mut runs = vec![];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .sfn
                .list_executions()
                .state_machine_arn(state_machine_arn)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| Error::aws("Step Functions", "ListExecutions", &e))?;
            let mut older = false;
            for e in out.executions() {
                let started = millis(Some(e.start_date())).unwrap_or(0);
                if started < since_ms {
                    older = true;
                    continue;
                }
                runs.push(ResumeRun {
                    execution_arn: e.execution_arn().to_owned(),
                    status: e.status().as_str().to_owned(),
                    started_ms: started,
                });
            }
            token = out.next_token().map(str::to_owned);
            if older || token.is_none() {
                break;
            }
        }
        Ok(runs)
    }

    async fn run_detail(&self, execution_arn: &str) -> Result<RunDetail, Error> {
        let out = self
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| Error::aws("Step Functions", "DescribeExecution", &e))?;
        Ok(RunDetail {
            input: out.input().map(str::to_owned),
            output: out
                .output()
                .filter(|_| *out.status() == ExecutionStatus::Succeeded)
                .map(str::to_owned),
            started_ms: millis(Some(out.start_date())),
        })
    }

    async fn record(&self, key: &str) -> Result<Option<Value>, Error> {
        let bytes = common::aws::read_object(&self.s3, &self.bucket, key).await?;
        // A record someone broke is no reason to send no digest: it says nothing.
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    async fn digest_sent(&self, date: &str) -> Result<bool, Error> {
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(marker_key(date))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(Error::aws("S3", "HeadObject", &e)),
        }
    }

    async fn claim_digest(&self, date: &str, claim: &Value) -> Result<bool, Error> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(marker_key(date))
            .content_type("application/json")
            .if_none_match("*")
            .body(claim.to_string().into_bytes().into())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // 412: the marker is there. 409: another conditional write of it is under way,
            // maybe our own first attempt; S3 says to retry, and the retry's 412 is then
            // told apart by the claim the marker carries (see `run.rs`).
            Err(e) if e.code() == Some("PreconditionFailed") => Ok(false),
            Err(e) if e.code() == Some("ConditionalRequestConflict") => Err(Error::transient(
                "S3",
                "PutObject",
                format!("{}: ConditionalRequestConflict", marker_key(date)),
            )),
            Err(e) => Err(Error::aws("S3", "PutObject", &e)),
        }
    }

    async fn release_digest(&self, date: &str) -> Result<(), Error> {
        common::aws::delete_object(&self.s3, &self.bucket, &marker_key(date)).await
    }

    async fn publish_digest(
        &self,
        topic_arn: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), Error> {
        let kind = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value("morning-digest")
            .build()
            .map_err(|e| Error::Build {
                what: "SNS message attribute kind".into(),
                reason: e.to_string(),
            })?;
        self.sns
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(body)
            .message_attributes("kind", kind)
            .send()
            .await
            .map_err(|e| Error::aws("SNS", "Publish", &e))?;
        Ok(())
    }
}
