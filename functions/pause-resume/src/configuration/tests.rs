//! The mapping's round trip: every member GetEnvironment reports reaches CreateEnvironment.

use super::*;
use crate::fakes::creatable;
use aws_sdk_mwaa::operation::create_environment::builders::CreateEnvironmentFluentBuilder;
use aws_sdk_mwaa::types::{
    EndpointManagement, EnvironmentStatus, LastUpdate, LoggingConfiguration, LoggingLevel,
    ModuleLoggingConfigurationInput, NetworkConfiguration, UpdateError, UpdateStatus,
    WebserverAccessMode,
};
use serde_json::Value;

fn module(enabled: bool, level: LoggingLevel, group: &str) -> ModuleLoggingConfiguration {
    ModuleLoggingConfiguration::builder()
        .enabled(enabled)
        .log_level(level)
        .cloud_watch_log_group_arn(format!(
            "arn:aws:logs:eu-west-1:111122223333:log-group:airflow-dev-{group}"
        ))
        .build()
}

/// Every field GetEnvironment can report, with distinct values.
fn full_environment() -> Environment {
    Environment::builder()
        .name("dev-analytics")
        .status(EnvironmentStatus::Available)
        .arn("arn:aws:airflow:eu-west-1:111122223333:environment/dev-analytics")
        .created_at(aws_sdk_mwaa::primitives::DateTime::from_secs(1_700_000_000))
        .webserver_url("abc.eu-west-1.airflow.amazonaws.com")
        .execution_role_arn("arn:aws:iam::111122223333:role/mwaa-exec")
        .service_role_arn("arn:aws:iam::111122223333:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA")
        .kms_key("arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        .airflow_version("2.10.3")
        .source_bucket_arn("arn:aws:s3:::dev-analytics-dags")
        .dag_s3_path("dags")
        .plugins_s3_path("plugins.zip")
        .plugins_s3_object_version("pv1")
        .requirements_s3_path("requirements.txt")
        .requirements_s3_object_version("rv2")
        .startup_script_s3_path("startup.sh")
        .startup_script_s3_object_version("sv3")
        .airflow_configuration_options("core.default_timezone", "utc")
        .airflow_configuration_options("celery.worker_autoscale", "5,5")
        .environment_class("mw1.medium")
        .schedulers(3)
        .min_workers(2)
        .max_workers(7)
        .min_webservers(2)
        .max_webservers(4)
        .network_configuration(
            NetworkConfiguration::builder()
                .subnet_ids("subnet-a")
                .subnet_ids("subnet-b")
                .security_group_ids("sg-1")
                .build(),
        )
        .logging_configuration(
            LoggingConfiguration::builder()
                .dag_processing_logs(module(true, LoggingLevel::Warning, "DAGProcessing"))
                .scheduler_logs(module(false, LoggingLevel::Info, "Scheduler"))
                .webserver_logs(module(true, LoggingLevel::Error, "WebServer"))
                .worker_logs(module(true, LoggingLevel::Critical, "Worker"))
                .task_logs(module(true, LoggingLevel::Debug, "Task"))
                .build(),
        )
        .last_update(
            LastUpdate::builder()
                .status(UpdateStatus::Failed)
                .error(UpdateError::builder().error_code("E").error_message("m").build())
                .build(),
        )
        .weekly_maintenance_window_start("TUE:03:30")
        .tags("team", "data")
        .tags("cost-center", "42")
        .tags("aws:cloudformation:stack-name", "mwaa-dev")
        .tags("AWS:Other", "reserved too")
        .webserver_access_mode(WebserverAccessMode::PrivateOnly)
        .endpoint_management(EndpointManagement::Customer)
        .webserver_vpc_endpoint_service("com.amazonaws.vpce.eu-west-1.vpce-svc-1")
        .database_vpc_endpoint_service("com.amazonaws.vpce.eu-west-1.vpce-svc-2")
        .celery_executor_queue("arn:aws:sqs:eu-west-1:111122223333:airflow-celery-x")
        .build()
}

/// A client is needed to hold a request; building one does no I/O.
fn request() -> CreateEnvironmentFluentBuilder {
    let config = aws_sdk_mwaa::Config::builder()
        .behavior_version(aws_sdk_mwaa::config::BehaviorVersion::latest())
        .region(aws_sdk_mwaa::config::Region::new("eu-west-1"))
        .build();
    aws_sdk_mwaa::Client::from_conf(config).create_environment()
}

/// Environment -> saved -> JSON -> saved -> CreateEnvironment request.
fn round_trip(env: &Environment) -> CreateEnvironmentFluentBuilder {
    let saved = SavedConfiguration::from_environment(env).unwrap();
    let json = serde_json::to_string_pretty(&saved).unwrap();
    let read: SavedConfiguration = serde_json::from_str(&json).unwrap();
    assert_eq!(read, saved);
    read.apply(request())
}

fn module_input(module: Option<&ModuleLoggingConfiguration>) -> Option<(bool, LoggingLevel)> {
    module.map(|m| (m.enabled().unwrap(), m.log_level().unwrap().clone()))
}

fn sent_module(module: Option<&ModuleLoggingConfigurationInput>) -> Option<(bool, LoggingLevel)> {
    module.map(|m| (m.enabled(), m.log_level().clone()))
}

/// Asserts that each member the request sends equals what the environment reported, naming
/// the member when one does not.
macro_rules! assert_carried {
    ($($sent:expr => $had:expr),* $(,)?) => {
        $(assert_eq!($sent, $had, "{}", stringify!($had));)*
    };
}

#[test]
fn every_field_survives_the_round_trip_to_create_environment() {
    let env = full_environment();
    let request = round_trip(&env);
    let sent = request.as_input();
    assert_carried!(
        sent.get_name().as_deref() => env.name(),
        sent.get_airflow_version().as_deref() => env.airflow_version(),
        sent.get_execution_role_arn().as_deref() => env.execution_role_arn(),
        sent.get_source_bucket_arn().as_deref() => env.source_bucket_arn(),
        sent.get_dag_s3_path().as_deref() => env.dag_s3_path(),
        sent.get_network_configuration().as_ref() => env.network_configuration(),
        sent.get_environment_class().as_deref() => env.environment_class(),
        *sent.get_schedulers() => env.schedulers(),
        *sent.get_min_workers() => env.min_workers(),
        *sent.get_max_workers() => env.max_workers(),
        *sent.get_min_webservers() => env.min_webservers(),
        *sent.get_max_webservers() => env.max_webservers(),
        sent.get_airflow_configuration_options().as_ref() => env.airflow_configuration_options(),
        sent.get_plugins_s3_path().as_deref() => env.plugins_s3_path(),
        sent.get_plugins_s3_object_version().as_deref() => env.plugins_s3_object_version(),
        sent.get_requirements_s3_path().as_deref() => env.requirements_s3_path(),
        sent.get_requirements_s3_object_version().as_deref() => env.requirements_s3_object_version(),
        sent.get_startup_script_s3_path().as_deref() => env.startup_script_s3_path(),
        sent.get_startup_script_s3_object_version().as_deref() => env.startup_script_s3_object_version(),
        sent.get_kms_key().as_deref() => env.kms_key(),
        sent.get_webserver_access_mode().as_ref() => env.webserver_access_mode(),
        sent.get_endpoint_management().as_ref() => env.endpoint_management(),
        sent.get_weekly_maintenance_window_start().as_deref() => env.weekly_maintenance_window_start(),
    );

    let (got, had) = (
        sent.get_logging_configuration().as_ref().unwrap(),
        env.logging_configuration().unwrap(),
    );
    assert_carried!(
        sent_module(got.dag_processing_logs()) => module_input(had.dag_processing_logs()),
        sent_module(got.scheduler_logs()) => module_input(had.scheduler_logs()),
        sent_module(got.webserver_logs()) => module_input(had.webserver_logs()),
        sent_module(got.worker_logs()) => module_input(had.worker_logs()),
        sent_module(got.task_logs()) => module_input(had.task_logs()),
    );
    assert_eq!(
        sent_module(got.scheduler_logs()),
        Some((false, LoggingLevel::Info)),
        "a disabled module stays disabled, with its level"
    );

    let tags = sent.get_tags().as_ref().unwrap();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert_eq!(tags["team"], "data");
    assert_eq!(tags["cost-center"], "42");
}

#[test]
fn reserved_tags_are_dropped_whatever_their_case() {
    let saved = SavedConfiguration::from_environment(&full_environment()).unwrap();
    assert!(saved
        .tags
        .keys()
        .all(|k| !k.to_ascii_lowercase().starts_with("aws:")));
    let mut tags = HashMap::new();
    tags.insert("aws:x".to_string(), "1".to_string());
    tags.insert("awsome".to_string(), "2".to_string());
    tags.insert("a".to_string(), "3".to_string());
    let kept = user_tags(Some(&tags));
    assert_eq!(kept.keys().collect::<Vec<_>>(), ["a", "awsome"]);
    let only_reserved: HashMap<_, _> = [("aws:y".to_string(), "1".to_string())].into();
    let env = Environment::builder().set_tags(Some(only_reserved)).build();
    assert!(user_tags(env.tags()).is_empty());
}

#[test]
fn an_environment_with_only_the_required_fields_sends_nothing_else() {
    let request = round_trip(&creatable("min").build());
    let sent = request.as_input();
    assert_eq!(sent.get_name().as_deref(), Some("min"));
    assert_eq!(sent.get_airflow_version().as_deref(), Some("3.0.6"));
    assert!(sent.get_environment_class().is_none());
    assert!(sent.get_schedulers().is_none());
    assert!(sent.get_min_workers().is_none());
    assert!(sent.get_max_webservers().is_none());
    assert!(sent.get_airflow_configuration_options().is_none());
    assert!(sent.get_plugins_s3_path().is_none());
    assert!(sent.get_requirements_s3_object_version().is_none());
    assert!(sent.get_startup_script_s3_path().is_none());
    assert!(sent.get_logging_configuration().is_none());
    assert!(sent.get_kms_key().is_none());
    assert!(sent.get_webserver_access_mode().is_none());
    assert!(sent.get_endpoint_management().is_none());
    assert!(sent.get_weekly_maintenance_window_start().is_none());
    assert!(sent.get_tags().is_none());
}

#[test]
fn empty_maps_and_incomplete_log_modules_are_left_to_mwaa() {
    let env = creatable("min")
        .set_airflow_configuration_options(Some(HashMap::new()))
        .set_tags(Some(HashMap::new()))
        .logging_configuration(
            LoggingConfiguration::builder()
                .task_logs(ModuleLoggingConfiguration::builder().enabled(true).build())
                .worker_logs(
                    ModuleLoggingConfiguration::builder()
                        .log_level(LoggingLevel::Info)
                        .build(),
                )
                .build(),
        )
        .build();
    let saved = SavedConfiguration::from_environment(&env).unwrap();
    assert!(saved.airflow_configuration_options.is_empty());
    assert!(saved.tags.is_empty());
    assert_eq!(saved.logging_configuration, None);
    let json = serde_json::to_value(&saved).unwrap();
    for absent in [
        "AirflowConfigurationOptions",
        "Tags",
        "LoggingConfiguration",
    ] {
        assert!(json.get(absent).is_none(), "{absent} in {json}");
    }
    let sent = saved.apply(request());
    assert!(sent.as_input().get_tags().is_none());
    assert!(sent
        .as_input()
        .get_airflow_configuration_options()
        .is_none());
}

#[test]
fn one_carried_log_module_keeps_the_others_absent() {
    let env = creatable("min")
        .logging_configuration(
            LoggingConfiguration::builder()
                .task_logs(module(true, LoggingLevel::Info, "Task"))
                .build(),
        )
        .build();
    let sent = round_trip(&env);
    let logging = sent.as_input().get_logging_configuration().clone().unwrap();
    assert_eq!(
        sent_module(logging.task_logs()),
        Some((true, LoggingLevel::Info))
    );
    assert!(logging.worker_logs().is_none());
    assert!(logging.dag_processing_logs().is_none());
}

#[test]
fn missing_required_fields_are_named_together() {
    let env = Environment::builder()
        .name("broken")
        .airflow_version("2.10.3")
        .dag_s3_path("")
        .build();
    let err = SavedConfiguration::from_environment(&env).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigurationInvalid);
    for field in [
        "ExecutionRoleArn",
        "SourceBucketArn",
        "DagS3Path",
        "NetworkConfiguration.SubnetIds",
        "NetworkConfiguration.SecurityGroupIds",
    ] {
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    assert!(err.to_string().contains("broken"), "{err}");
    assert!(!err.to_string().contains("AirflowVersion"), "{err}");
}

#[test]
fn an_airflow_version_the_suite_does_not_support_is_not_saved() {
    for version in ["3.3.1", "2.6.3"] {
        let env = creatable("dev-analytics").airflow_version(version).build();
        let err = SavedConfiguration::from_environment(&env).unwrap_err();
        common::testing::assert_fails_as(
            err,
            ErrorKind::ConfigurationInvalid,
            &[version, "dev-analytics", "3.2.1"],
        );
    }
    for version in ["2.7.2", "3.2.1"] {
        let env = creatable("dev-analytics").airflow_version(version).build();
        let saved = SavedConfiguration::from_environment(&env).unwrap();
        assert_eq!(saved.airflow_version, version);
    }
}

/// The saved file uses CreateEnvironment's member names: `Name` (in the request's
/// path) and the body members the SDK serializes (aws-sdk-mwaa
/// `protocol_serde/shape_create_environment_input.rs`).
#[test]
fn the_saved_json_uses_create_environments_member_names() {
    let saved = SavedConfiguration::from_environment(&full_environment()).unwrap();
    let json = serde_json::to_value(&saved).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "Name",
        "AirflowConfigurationOptions",
        "AirflowVersion",
        "DagS3Path",
        "EndpointManagement",
        "EnvironmentClass",
        "ExecutionRoleArn",
        "KmsKey",
        "LoggingConfiguration",
        "MaxWebservers",
        "MaxWorkers",
        "MinWebservers",
        "MinWorkers",
        "NetworkConfiguration",
        "PluginsS3ObjectVersion",
        "PluginsS3Path",
        "RequirementsS3ObjectVersion",
        "RequirementsS3Path",
        "Schedulers",
        "SourceBucketArn",
        "StartupScriptS3ObjectVersion",
        "StartupScriptS3Path",
        "Tags",
        "WebserverAccessMode",
        "WeeklyMaintenanceWindowStart",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(
        json["LoggingConfiguration"]["DagProcessingLogs"],
        serde_json::json!({"Enabled": true, "LogLevel": "WARNING"})
    );
    assert_eq!(
        json["NetworkConfiguration"],
        serde_json::json!({"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})
    );
    assert_eq!(json["WebserverAccessMode"], "PRIVATE_ONLY");
    assert_eq!(json["EndpointManagement"], "CUSTOMER");
}

#[test]
fn a_hand_written_file_with_extra_keys_still_reads() {
    let text = r#"{"Name": "x", "AirflowVersion": "2.11.0", "ExecutionRoleArn": "r",
        "SourceBucketArn": "arn:aws:s3:::b", "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["s"], "SecurityGroupIds": ["g"]},
        "Comment": "restored by hand"}"#;
    let saved: SavedConfiguration = serde_json::from_str(text).unwrap();
    assert_eq!(saved.airflow_version, "2.11.0");
    let missing_version: Result<SavedConfiguration, _> =
        serde_json::from_value(serde_json::json!({"Name": "x"}));
    assert!(missing_version.is_err());
    let _: Value = serde_json::to_value(&saved).unwrap();
}
