//! In-memory stand-ins for MWAA and S3, for the steps' unit tests; Airflow behind MWAA is
//! the workspace's one fake, `common::testing::FakeAirflow`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_mwaa::types::builders::EnvironmentBuilder;
use aws_sdk_mwaa::types::{
    Environment, EnvironmentStatus, LastUpdate, NetworkConfiguration, UpdateError,
};
use serde_json::{json, Value};

use common::airflow::{AirflowRest, RestRequest, RestResponse};
use common::testing::FakeAirflow;

use crate::configuration::SavedConfiguration;
use crate::digest::ObjectDigest;
use crate::ops::{Created, Deleted, Described, Environments, Objects};
use common::{Deadline, Error};

/// MWAA environments in memory, with the Airflow their REST calls reach.
#[derive(Default)]
pub struct FakeMwaa {
    pub environments: Mutex<BTreeMap<String, Environment>>,
    pub created: Mutex<Vec<SavedConfiguration>>,
    pub deleted: Mutex<Vec<String>>,
    /// CreateEnvironment answers "already exists" (a concurrent create won the race).
    pub create_races: bool,
    /// DeleteEnvironment refuses with this message.
    pub delete_refusal: Option<String>,
    /// The Airflow of every environment (what a REST call reaches once MWAA knows the name).
    pub airflow: FakeAirflow,
    /// Members GetEnvironment's raw answer has beyond `Name` (those the SDK does not model).
    pub raw_members: Mutex<BTreeMap<String, serde_json::Map<String, Value>>>,
    /// CreateEnvironment refuses with this ValidationException message.
    pub create_refusal: Option<String>,
}

/// `dev` in `status`, its Airflow knowing the export DAG and `etl`.
pub fn with_dags(status: EnvironmentStatus, version: &str) -> FakeMwaa {
    FakeMwaa {
        airflow: FakeAirflow::knowing(&["mwaa_ops_export", "etl"]),
        ..FakeMwaa::with(&[environment("dev", status, version)])
    }
}

/// A whole invocation's time, as the template gives run-dag and enable-dags.
pub fn budget() -> Deadline {
    Deadline::after(std::time::Duration::from_secs(120))
}

/// enable-dags for `dags` of `environment`, as the resume invokes it.
pub async fn enable(mwaa: &FakeMwaa, environment: &str, dags: &[&str]) -> Result<Value, Error> {
    let input = json!({"environment": environment, "dags": dags});
    crate::steps::enable_dags::enable_dags(mwaa, input, budget()).await
}

/// An environment with what CreateEnvironment requires and nothing else.
pub fn creatable(name: &str) -> EnvironmentBuilder {
    Environment::builder()
        .name(name)
        .airflow_version("3.0.6")
        .execution_role_arn("arn:aws:iam::111122223333:role/exec")
        .source_bucket_arn("arn:aws:s3:::dags")
        .dag_s3_path("dags")
        .network_configuration(
            NetworkConfiguration::builder()
                .subnet_ids("subnet-a")
                .security_group_ids("sg-1")
                .build(),
        )
}

/// The suite's bucket in the steps' tests.
pub const BUCKET: &str = "suite";

/// A step's input naming one environment.
pub fn input(name: &str) -> Value {
    json!({"environment": name})
}

/// An AVAILABLE environment save-configuration can save.
pub fn saveable(name: &str) -> Environment {
    creatable(name)
        .status(EnvironmentStatus::Available)
        .airflow_version("2.10.3")
        .tags("team", "data")
        .build()
}

/// `dev` in a failed status, with the error MWAA reports for it.
pub fn failed(status: EnvironmentStatus) -> Environment {
    Environment::builder()
        .name("dev")
        .status(status)
        .last_update(
            LastUpdate::builder()
                .error(
                    UpdateError::builder()
                        .error_code("INCORRECT_CONFIGURATION")
                        .error_message("subnets have no NAT")
                        .build(),
                )
                .build(),
        )
        .build()
}

pub fn environment(name: &str, status: EnvironmentStatus, version: &str) -> Environment {
    Environment::builder()
        .name(name)
        .status(status)
        .airflow_version(version)
        .build()
}

impl FakeMwaa {
    pub fn with(environments: &[Environment]) -> Self {
        let fake = Self::default();
        for env in environments {
            fake.put(env.clone());
        }
        fake
    }

    pub fn put(&self, env: Environment) {
        let name = env.name().unwrap().to_owned();
        self.environments.lock().unwrap().insert(name, env);
    }

    pub fn status(&self, name: &str) -> Option<String> {
        let envs = self.environments.lock().unwrap();
        envs.get(name)
            .map(|e| e.status().unwrap().as_str().to_owned())
    }
}

impl Environments for FakeMwaa {
    async fn get(&self, name: &str) -> Result<Option<Environment>, Error> {
        Ok(self.environments.lock().unwrap().get(name).cloned())
    }

    async fn describe(&self, name: &str) -> Result<Option<Described>, Error> {
        let Some(environment) = self.get(name).await? else {
            return Ok(None);
        };
        let mut members = serde_json::Map::new();
        members.insert("Name".into(), json!(name));
        members.extend(
            self.raw_members
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .unwrap_or_default(),
        );
        Ok(Some(Described {
            environment,
            members,
        }))
    }

    async fn create(&self, configuration: &SavedConfiguration) -> Result<Created, Error> {
        if let Some(message) = &self.create_refusal {
            let (name, version) = (&configuration.name, &configuration.airflow_version);
            return Err(crate::ops::version_refused(name, version, message)
                .unwrap_or_else(|| Error::new(common::ErrorKind::OperationFailed, message)));
        }
        if self.create_races {
            self.put(environment(
                &configuration.name,
                EnvironmentStatus::Creating,
                &configuration.airflow_version,
            ));
            return Ok(Created::AlreadyExists);
        }
        self.created.lock().unwrap().push(configuration.clone());
        self.put(environment(
            &configuration.name,
            EnvironmentStatus::Creating,
            &configuration.airflow_version,
        ));
        Ok(Created::Created)
    }

    async fn delete(&self, name: &str) -> Result<Deleted, Error> {
        if let Some(message) = &self.delete_refusal {
            return Ok(Deleted::Refused(message.clone()));
        }
        let mut envs = self.environments.lock().unwrap();
        let Some(env) = envs.get_mut(name) else {
            return Ok(Deleted::NotFound);
        };
        *env = environment(
            name,
            EnvironmentStatus::Deleting,
            env.airflow_version().unwrap(),
        );
        self.deleted.lock().unwrap().push(name.to_owned());
        Ok(Deleted::Deleted)
    }
}

impl AirflowRest for FakeMwaa {
    /// MWAA forwards a REST call only to an environment it knows; Airflow answers the rest.
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, Error> {
        if !self
            .environments
            .lock()
            .unwrap()
            .contains_key(&request.environment)
        {
            return Err(Error::EnvironmentNotFound(request.environment.clone()));
        }
        self.airflow.invoke(request).await
    }
}

/// `text` as one gzip member, as the export DAG writes its objects.
pub fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// S3 in memory; `digest` feeds objects in small chunks, as a stream would.
#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryObjects {
    pub fn insert(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.objects
            .lock()
            .unwrap()
            .insert((bucket.into(), key.into()), body);
    }

    pub fn remove(&self, bucket: &str, key: &str) {
        self.objects
            .lock()
            .unwrap()
            .remove(&(bucket.to_owned(), key.to_owned()));
    }

    pub fn body(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.objects
            .lock()
            .unwrap()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .objects
            .lock()
            .unwrap()
            .keys()
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }
}

impl Objects for MemoryObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.body(bucket, key))
    }

    async fn put_json(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.insert(bucket, key, body);
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), Error> {
        self.objects
            .lock()
            .unwrap()
            .remove(&(bucket.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn digest(
        &self,
        bucket: &str,
        key: &str,
        digest: &mut ObjectDigest,
    ) -> Result<bool, Error> {
        let Some(body) = self.body(bucket, key) else {
            return Ok(false);
        };
        body.chunks(7).for_each(|c| digest.update(c));
        Ok(true)
    }
}
