//! The AWS calls the steps make, behind two narrow traits: MWAA's environment calls and S3
//! objects. The SDK clients implement them in Lambda; unit tests use fakes. Airflow's REST
//! API is `common::airflow::AirflowRest`, which the MWAA client implements already.

use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_mwaa::error::ProvideErrorMetadata;
use aws_sdk_mwaa::operation::create_environment::CreateEnvironmentError;
use aws_sdk_mwaa::operation::delete_environment::DeleteEnvironmentError;
use aws_sdk_mwaa::types::Environment;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Map, Value};

use common::{Error, ErrorKind};

use crate::configuration::SavedConfiguration;
use crate::digest::ObjectDigest;

/// What CreateEnvironment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// MWAA says an environment of that name exists already (a concurrent or earlier create).
    AlreadyExists,
}

/// What DeleteEnvironment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// MWAA refused (ValidationException), e.g. while the environment is changing state.
    Refused(String),
}

/// GetEnvironment's answer both ways: as the SDK reads it, and every member of the raw
/// `Environment` (members the SDK does not model included).
#[derive(Debug, Clone)]
pub struct Described {
    pub environment: Environment,
    pub members: Map<String, Value>,
}

/// MWAA's environment calls.
pub trait Environments: Send + Sync {
    /// GetEnvironment; `None` when MWAA does not know the environment.
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Environment>, Error>> + Send;
    /// GetEnvironment, with the raw answer's members; `None` when MWAA does not know it.
    fn describe(&self, name: &str)
        -> impl Future<Output = Result<Option<Described>, Error>> + Send;
    /// CreateEnvironment with every field of the saved configuration.
    fn create(
        &self,
        configuration: &SavedConfiguration,
    ) -> impl Future<Output = Result<Created, Error>> + Send;
    /// DeleteEnvironment.
    fn delete(&self, name: &str) -> impl Future<Output = Result<Deleted, Error>> + Send;
}

/// S3 objects.
pub trait Objects: Send + Sync {
    /// A small object's bytes; `None` when there is no such object.
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;
    /// Writes a JSON object, sealed by the bucket's default encryption (the suite key).
    fn put_json(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Deletes an object (no error when it is already gone).
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Streams an object of any size through `digest`; `false` when there is no such object.
    fn digest(
        &self,
        bucket: &str,
        key: &str,
        digest: &mut ObjectDigest,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

impl Environments for aws_sdk_mwaa::Client {
    async fn get(&self, name: &str) -> Result<Option<Environment>, Error> {
        common::aws::get_environment(self, name).await
    }

    async fn describe(&self, name: &str) -> Result<Option<Described>, Error> {
        let raw = RawAnswer::default();
        let answer = self
            .get_environment()
            .name(name)
            .customize()
            .config_override(aws_sdk_mwaa::config::Builder::default().interceptor(raw.clone()))
            .send()
            .await;
        let Some(environment) = common::aws::found_environment(answer)? else {
            return Ok(None);
        };
        let body = raw
            .0
            .lock()
            .expect("not poisoned")
            .take()
            .unwrap_or_default();
        let members = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut answer)) => match answer.remove("Environment") {
                Some(Value::Object(members)) => members,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        if members.is_empty() {
            return Err(Error::Unreadable {
                what: format!("GetEnvironment's answer for {name}"),
                reason: "its members could not be read as JSON".into(),
            });
        }
        Ok(Some(Described {
            environment,
            members,
        }))
    }

    async fn create(&self, configuration: &SavedConfiguration) -> Result<Created, Error> {
        match configuration.apply(self.create_environment()).send().await {
            Ok(_) => Ok(Created::Created),
            Err(err) => {
                let exists = err.as_service_error().is_some_and(|e| {
                    e.code() == Some("ConflictException")
                        || matches!(e, CreateEnvironmentError::ValidationException(v)
                            if v.message().is_some_and(|m| m.to_ascii_lowercase().contains("already exists")))
                });
                let refusal = match err.as_service_error() {
                    Some(CreateEnvironmentError::ValidationException(v)) => v.message(),
                    _ => None,
                };
                if exists {
                    Ok(Created::AlreadyExists)
                } else if let Some(refused) = refusal.and_then(|m| {
                    version_refused(&configuration.name, &configuration.airflow_version, m)
                }) {
                    Err(refused)
                } else {
                    Err(Error::aws("MWAA", "CreateEnvironment", &err))
                }
            }
        }
    }

    async fn delete(&self, name: &str) -> Result<Deleted, Error> {
        match self.delete_environment().name(name).send().await {
            Ok(_) => Ok(Deleted::Deleted),
            Err(err) => match err.as_service_error() {
                Some(DeleteEnvironmentError::ResourceNotFoundException(_)) => Ok(Deleted::NotFound),
                Some(DeleteEnvironmentError::ValidationException(e)) => Ok(Deleted::Refused(
                    e.message().unwrap_or("ValidationException").to_owned(),
                )),
                _ => Err(Error::aws("MWAA", "DeleteEnvironment", &err)),
            },
        }
    }
}

impl Objects for aws_sdk_s3::Client {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(object) = get_object(self, bucket, key).await? else {
            return Ok(None);
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| read_failed(bucket, key, &e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Error> {
        // No encryption header: the bucket's default seals it with the suite key. A header of
        // `aws:kms` without a key id would seal it with the AWS managed key `aws/s3` instead
        // (S3's PutObject), outside the suite key's policy.
        common::aws::put_json(self, bucket, key, body)
            .await
            .map_err(|e| in_object(e, bucket, key))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), Error> {
        common::aws::delete_object(self, bucket, key)
            .await
            .map_err(|e| in_object(e, bucket, key))
    }

    async fn digest(
        &self,
        bucket: &str,
        key: &str,
        digest: &mut ObjectDigest,
    ) -> Result<bool, Error> {
        let Some(object) = get_object(self, bucket, key).await? else {
            return Ok(false);
        };
        let mut body = object.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| read_failed(bucket, key, &e))?
        {
            digest.update(&chunk);
        }
        Ok(true)
    }
}

/// MWAA's ValidationException about the Airflow version, as the error a person acts on: the
/// version, the versions MWAA offers (as its message lists them), and what stays.
pub fn version_refused(environment: &str, version: &str, message: &str) -> Option<Error> {
    let lower = message.to_ascii_lowercase();
    if !(lower.contains("airflowversion") || lower.contains("airflow version")) {
        return None;
    }
    let choices = message
        .split_once("Valid values:")
        .map(|(_, list)| list.trim().trim_end_matches('.').to_owned())
        .unwrap_or_else(|| "not listed in MWAA's answer (see the MWAA versions page)".into());
    Some(Error::new(
        ErrorKind::AirflowVersionRefused,
        format!(
            "MWAA refuses to create environment {environment} with Airflow {version} (its saved \
             configuration): {message}. Versions MWAA offers: {choices}. Nothing was created; the \
             saved configuration and the export stay. The import needs the export's Airflow \
             version: create the environment at a version MWAA offers and import by hand, or \
             upgrade before the next pause."
        ),
    ))
}

/// Keeps the body of the answer it sees (one call's: it is installed per call).
#[derive(Debug, Clone, Default)]
struct RawAnswer(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawAnswer {
    fn name(&self) -> &'static str {
        "RawAnswer"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().expect("not poisoned") = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// The mark as it is in S3: its body (the pause's execution ARN) and the S3 version read,
/// so that only that version is removed (a pause marking again meanwhile keeps its mark).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub body: String,
    pub version: Option<String>,
}

/// The calls behind the decision: the mark, and the state of the execution it names.
pub trait PauseMarks: Send + Sync {
    /// The mark's body and version; `None` when there is no mark.
    fn mark(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Mark>, Error>> + Send;
    /// Removes that version of the mark (the current object when `version` is `None`).
    fn end_mark(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// DescribeExecution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED,
    /// PENDING_REDRIVE); `None` when Step Functions does not know the execution.
    fn execution_status(
        &self,
        execution: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;
    /// Whether any object is under `prefix` (one listing of at most one key).
    fn anything_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

impl PauseMarks for crate::Clients {
    async fn mark(&self, bucket: &str, key: &str) -> Result<Option<Mark>, Error> {
        let Some(object) = get_object(&self.s3, bucket, key).await? else {
            return Ok(None);
        };
        let version = object.version_id().map(String::from);
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| read_failed(bucket, key, &e))?;
        Ok(Some(Mark {
            body: String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
            version,
        }))
    }

    async fn end_mark(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<(), Error> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(String::from))
            .send()
            .await
            .map_err(|e| in_object(Error::aws("S3", "DeleteObject", &e), bucket, key))?;
        Ok(())
    }

    async fn execution_status(&self, execution: &str) -> Result<Option<String>, Error> {
        use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
        match self
            .sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.status().as_str().to_owned())),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("Step Functions", "DescribeExecution", &e)),
        }
    }

    async fn anything_under(&self, bucket: &str, prefix: &str) -> Result<bool, Error> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| in_object(Error::aws("S3", "ListObjectsV2", &e), bucket, prefix))?;
        Ok(listed.key_count().unwrap_or(0) > 0 || !listed.contents().is_empty())
    }
}

/// GetObject ([`common::aws::get_object`]), its error naming the object.
async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, Error> {
    common::aws::get_object(s3, bucket, key)
        .await
        .map_err(|e| in_object(e, bucket, key))
}

/// The body broke off while streaming: a transport failure, worth another try.
fn read_failed(bucket: &str, key: &str, err: &dyn std::fmt::Display) -> Error {
    in_object(
        Error::transient("S3", "GetObject", format!("reading the body failed: {err}")),
        bucket,
        key,
    )
}

/// Names the object in an S3 error's message.
fn in_object(err: Error, bucket: &str, key: &str) -> Error {
    match err {
        Error::Aws {
            service,
            operation,
            message,
            retryable,
        } => Error::Aws {
            service,
            operation,
            message: format!("s3://{bucket}/{key}: {message}"),
            retryable,
        },
        other => other,
    }
}
