//! The other half of the mapping: a saved configuration, member for member, into a
//! CreateEnvironment request.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_mwaa::operation::create_environment::builders::CreateEnvironmentFluentBuilder;
use aws_sdk_mwaa::types::{
    EndpointManagement, LoggingConfigurationInput, LoggingLevel, ModuleLoggingConfigurationInput,
    NetworkConfiguration, WebserverAccessMode,
};

use super::{Logging, ModuleLogging, SavedConfiguration};

impl SavedConfiguration {
    /// Sets every field of a CreateEnvironment request from the saved configuration.
    pub fn apply(&self, request: CreateEnvironmentFluentBuilder) -> CreateEnvironmentFluentBuilder {
        request
            .name(&self.name)
            .airflow_version(&self.airflow_version)
            .execution_role_arn(&self.execution_role_arn)
            .source_bucket_arn(&self.source_bucket_arn)
            .dag_s3_path(&self.dag_s3_path)
            .network_configuration(
                NetworkConfiguration::builder()
                    .set_subnet_ids(Some(self.network_configuration.subnet_ids.clone()))
                    .set_security_group_ids(Some(
                        self.network_configuration.security_group_ids.clone(),
                    ))
                    .build(),
            )
            .set_environment_class(self.environment_class.clone())
            .set_schedulers(self.schedulers)
            .set_min_workers(self.min_workers)
            .set_max_workers(self.max_workers)
            .set_min_webservers(self.min_webservers)
            .set_max_webservers(self.max_webservers)
            .set_airflow_configuration_options(unsorted(&self.airflow_configuration_options))
            .set_plugins_s3_path(self.plugins_s3_path.clone())
            .set_plugins_s3_object_version(self.plugins_s3_object_version.clone())
            .set_requirements_s3_path(self.requirements_s3_path.clone())
            .set_requirements_s3_object_version(self.requirements_s3_object_version.clone())
            .set_startup_script_s3_path(self.startup_script_s3_path.clone())
            .set_startup_script_s3_object_version(self.startup_script_s3_object_version.clone())
            .set_logging_configuration(self.logging_configuration.as_ref().map(Logging::input))
            .set_kms_key(self.kms_key.clone())
            .set_webserver_access_mode(
                self.webserver_access_mode
                    .as_deref()
                    .map(WebserverAccessMode::from),
            )
            .set_endpoint_management(
                self.endpoint_management
                    .as_deref()
                    .map(EndpointManagement::from),
            )
            .set_weekly_maintenance_window_start(self.weekly_maintenance_window_start.clone())
            .set_tags(unsorted(&self.tags))
    }
}

impl Logging {
    fn input(&self) -> LoggingConfigurationInput {
        LoggingConfigurationInput::builder()
            .set_dag_processing_logs(self.dag_processing_logs.as_ref().map(ModuleLogging::input))
            .set_scheduler_logs(self.scheduler_logs.as_ref().map(ModuleLogging::input))
            .set_webserver_logs(self.webserver_logs.as_ref().map(ModuleLogging::input))
            .set_worker_logs(self.worker_logs.as_ref().map(ModuleLogging::input))
            .set_task_logs(self.task_logs.as_ref().map(ModuleLogging::input))
            .build()
    }
}

impl ModuleLogging {
    fn input(&self) -> ModuleLoggingConfigurationInput {
        ModuleLoggingConfigurationInput::builder()
            .enabled(self.enabled)
            .log_level(LoggingLevel::from(self.log_level.as_str()))
            .build()
            .expect("enabled and log_level are both set")
    }
}

/// An empty map is left out of the request rather than sent empty.
fn unsorted(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!map.is_empty()).then(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}
