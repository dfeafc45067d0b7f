//! An environment's configuration, saved before a pause and used to create it again on
//! resume: the explicit mapping from GetEnvironment's `Environment` to CreateEnvironment's
//! input, field by field. Pure: no I/O. This module reads GetEnvironment's answer into the
//! saved type; [`request`] writes the saved type into a CreateEnvironment request.
//!
//! The saved JSON has the shape of CreateEnvironment's request (`Name` plus the request
//! body's members, same names), so a person can read it against the API reference. What
//! GetEnvironment reports but CreateEnvironment does not take is listed in the README
//! ("Not carried").

use std::collections::{BTreeMap, HashMap};

use aws_sdk_mwaa::types::{Environment, ModuleLoggingConfiguration};
use serde::{Deserialize, Serialize};

use common::{versions, Error, ErrorKind};

mod members;
mod request;

pub use members::not_carried;

/// Tag keys with this prefix (any case) are AWS's own; CreateEnvironment refuses them.
const RESERVED_TAG_PREFIX: &str = "aws:";

/// CreateEnvironment's input, as saved in `configurations/<environment>/latest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SavedConfiguration {
    pub name: String,
    /// Required here although optional in the API: without it MWAA would pick its default
    /// version, and the metadata import refuses a database of another version.
    pub airflow_version: String,
    pub execution_role_arn: String,
    pub source_bucket_arn: String,
    pub dag_s3_path: String,
    pub network_configuration: Network,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedulers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_workers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_webservers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_webservers: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub airflow_configuration_options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins_s3_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins_s3_object_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements_s3_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements_s3_object_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_script_s3_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_script_s3_object_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_configuration: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webserver_access_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_management: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_maintenance_window_start: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Subnets and security groups (both required by CreateEnvironment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

/// Per Airflow module: CreateEnvironment takes whether it logs and at which level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_processing_logs: Option<ModuleLogging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_logs: Option<ModuleLogging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webserver_logs: Option<ModuleLogging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_logs: Option<ModuleLogging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_logs: Option<ModuleLogging>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModuleLogging {
    pub enabled: bool,
    pub log_level: String,
}

impl SavedConfiguration {
    /// Maps GetEnvironment's answer. Fails (`ConfigurationInvalid`, naming every missing
    /// field) when the environment lacks something CreateEnvironment needs.
    pub fn from_environment(env: &Environment) -> Result<Self, Error> {
        let mut missing = vec![];
        let mut required = |field: &'static str, value: Option<&str>| {
            let value = value.filter(|v| !v.is_empty());
            if value.is_none() {
                missing.push(field);
            }
            value.unwrap_or_default().to_owned()
        };
        let name = required("Name", env.name());
        let airflow_version = required("AirflowVersion", env.airflow_version());
        let execution_role_arn = required("ExecutionRoleArn", env.execution_role_arn());
        let source_bucket_arn = required("SourceBucketArn", env.source_bucket_arn());
        let dag_s3_path = required("DagS3Path", env.dag_s3_path());
        let network = env.network_configuration();
        let network_configuration = Network {
            subnet_ids: network.map(|n| n.subnet_ids().to_vec()).unwrap_or_default(),
            security_group_ids: network
                .map(|n| n.security_group_ids().to_vec())
                .unwrap_or_default(),
        };
        if network_configuration.subnet_ids.is_empty() {
            missing.push("NetworkConfiguration.SubnetIds");
        }
        if network_configuration.security_group_ids.is_empty() {
            missing.push("NetworkConfiguration.SecurityGroupIds");
        }
        if !airflow_version.is_empty() && !versions::is_supported(&airflow_version) {
            // The export/import DAGs and the resume are tested on these versions only: an
            // environment on another one is not deleted on the hope that it comes back.
            return Err(Error::new(
                ErrorKind::ConfigurationInvalid,
                format!(
                    "environment {name} runs Airflow {airflow_version}, which mwaa-ops does not support \
                     (supported: {}): it is not paused",
                    versions::listed()
                ),
            ));
        }
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::ConfigurationInvalid,
                format!(
                    "environment {} cannot be saved for re-creation: GetEnvironment reports no {}",
                    env.name().unwrap_or("(unnamed)"),
                    missing.join(", ")
                ),
            ));
        }
        Ok(Self {
            name,
            airflow_version,
            execution_role_arn,
            source_bucket_arn,
            dag_s3_path,
            network_configuration,
            environment_class: env.environment_class().map(str::to_owned),
            schedulers: env.schedulers(),
            min_workers: env.min_workers(),
            max_workers: env.max_workers(),
            min_webservers: env.min_webservers(),
            max_webservers: env.max_webservers(),
            airflow_configuration_options: sorted(env.airflow_configuration_options()),
            plugins_s3_path: env.plugins_s3_path().map(str::to_owned),
            plugins_s3_object_version: env.plugins_s3_object_version().map(str::to_owned),
            requirements_s3_path: env.requirements_s3_path().map(str::to_owned),
            requirements_s3_object_version: env.requirements_s3_object_version().map(str::to_owned),
            startup_script_s3_path: env.startup_script_s3_path().map(str::to_owned),
            startup_script_s3_object_version: env
                .startup_script_s3_object_version()
                .map(str::to_owned),
            logging_configuration: env.logging_configuration().and_then(|l| {
                let logging = Logging {
                    dag_processing_logs: ModuleLogging::from_module(l.dag_processing_logs()),
                    scheduler_logs: ModuleLogging::from_module(l.scheduler_logs()),
                    webserver_logs: ModuleLogging::from_module(l.webserver_logs()),
                    worker_logs: ModuleLogging::from_module(l.worker_logs()),
                    task_logs: ModuleLogging::from_module(l.task_logs()),
                };
                (logging != Logging::default()).then_some(logging)
            }),
            kms_key: env.kms_key().map(str::to_owned),
            webserver_access_mode: env.webserver_access_mode().map(|m| m.as_str().to_owned()),
            endpoint_management: env.endpoint_management().map(|m| m.as_str().to_owned()),
            weekly_maintenance_window_start: env
                .weekly_maintenance_window_start()
                .map(str::to_owned),
            tags: user_tags(env.tags()),
        })
    }
}

impl ModuleLogging {
    /// A module is carried when MWAA reports both whether it logs and its level (the input
    /// requires both); otherwise MWAA's default applies on re-creation. The log group ARN is
    /// MWAA's to choose.
    fn from_module(module: Option<&ModuleLoggingConfiguration>) -> Option<Self> {
        let module = module?;
        Some(Self {
            enabled: module.enabled()?,
            log_level: module.log_level()?.as_str().to_owned(),
        })
    }
}

/// The user's tags: keys AWS reserves (`aws:...`) are dropped.
fn user_tags(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.into_iter()
        .flatten()
        .filter(|(key, _)| {
            !key.get(..RESERVED_TAG_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_TAG_PREFIX))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Sorted for a stable, diffable JSON file.
fn sorted(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
