//! In-memory stand-ins for MWAA, Airflow's REST API and S3, for the steps' unit tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_mwaa::types::builders::EnvironmentBuilder;
use aws_sdk_mwaa::types::{Environment, EnvironmentStatus, NetworkConfiguration};
use serde_json::{json, Value};

use common::airflow::{AirflowRest, RestRequest, RestResponse};

use crate::configuration::SavedConfiguration;
use crate::ops::{Created, Deleted, Environments, Objects};
use crate::verify::ObjectDigest;
use common::Error;

/// MWAA environments and one Airflow per environment, in memory. Airflow knows the DAGs
/// in `dags` and remembers run ids (a repeated run id answers 409).
#[derive(Default)]
pub struct FakeMwaa {
    pub environments: Mutex<BTreeMap<String, Environment>>,
    pub created: Mutex<Vec<SavedConfiguration>>,
    pub deleted: Mutex<Vec<String>>,
    /// CreateEnvironment answers "already exists" (a concurrent create won the race).
    pub create_races: bool,
    /// DeleteEnvironment refuses with this message.
    pub delete_refusal: Option<String>,
    pub dags: HashSet<String>,
    pub paused: Mutex<HashMap<String, bool>>,
    pub runs: Mutex<Vec<(String, String, Value)>>,
    pub requests: Mutex<Vec<RestRequest>>,
    /// The next this many REST calls reach Airflow, but their answer is lost on the way back
    /// (MWAA answers RestApiServerException 504): the work is done all the same.
    pub lost_answers: Mutex<u32>,
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

    async fn create(&self, configuration: &SavedConfiguration) -> Result<Created, Error> {
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
    async fn invoke(&self, request: &RestRequest) -> Result<RestResponse, common::Error> {
        self.requests.lock().unwrap().push(request.clone());
        if !self
            .environments
            .lock()
            .unwrap()
            .contains_key(&request.environment)
        {
            return Err(Error::EnvironmentNotFound(request.environment.clone()));
        }
        let dag = request
            .path
            .split('/')
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        let lost = {
            let mut lost = self.lost_answers.lock().unwrap();
            let now = *lost > 0;
            *lost = lost.saturating_sub(1);
            now
        };
        let answer = |status: u16, body: Value| {
            if lost {
                return Err(Error::AirflowUnavailable {
                    environment: request.environment.clone(),
                    method: request.method.as_str().to_owned(),
                    path: request.path.clone(),
                    status: 504,
                    body: "Gateway Timeout".into(),
                });
            }
            Ok(RestResponse { status, body })
        };
        if !self.dags.contains(&dag) {
            return answer(404, json!({"title": "DAG not found"}));
        }
        let body = request.body.clone().unwrap_or(Value::Null);
        if request.path.ends_with("/dagRuns") {
            let run_id = body["dag_run_id"].as_str().unwrap().to_owned();
            let mut runs = self.runs.lock().unwrap();
            if runs.iter().any(|(d, r, _)| *d == dag && *r == run_id) {
                return answer(409, json!({"title": "DAGRun already exists"}));
            }
            runs.push((dag, run_id, body));
            return answer(200, json!({"state": "queued"}));
        }
        let paused = body["is_paused"].as_bool().unwrap();
        self.paused.lock().unwrap().insert(dag, paused);
        answer(200, json!({"is_paused": paused}))
    }
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
