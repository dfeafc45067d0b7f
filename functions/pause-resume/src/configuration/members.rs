//! Which settings of an environment the saved configuration cannot carry. GetEnvironment's
//! answer is read raw (members aws-sdk-mwaa does not model, such as
//! `IdentityCenterConfiguration` and `Teams`, are there too) and every member is compared
//! with what the recreate carries: a member that is neither carried nor a fact of this one
//! environment would be lost in silence, so the pause stops before it changes anything.
//! Pure: no I/O.

use serde_json::{Map, Value};

/// GetEnvironment members that CreateEnvironment takes and [`super::SavedConfiguration`]
/// carries (structures are compared member by member below).
const CARRIED: &[&str] = &[
    "Name",
    "AirflowVersion",
    "ExecutionRoleArn",
    "SourceBucketArn",
    "DagS3Path",
    "EnvironmentClass",
    "Schedulers",
    "MinWorkers",
    "MaxWorkers",
    "MinWebservers",
    "MaxWebservers",
    "AirflowConfigurationOptions",
    "PluginsS3Path",
    "PluginsS3ObjectVersion",
    "RequirementsS3Path",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3Path",
    "StartupScriptS3ObjectVersion",
    "KmsKey",
    "WebserverAccessMode",
    "EndpointManagement",
    "WeeklyMaintenanceWindowStart",
    "Tags",
];

/// Facts of this environment, not settings: MWAA assigns them anew (README "Not carried").
const OF_THIS_ENVIRONMENT: &[&str] = &[
    "Status",
    "LastUpdate",
    "Arn",
    "CreatedAt",
    "WebserverUrl",
    "ServiceRoleArn",
    "CeleryExecutorQueue",
    "DatabaseVpcEndpointService",
    "WebserverVpcEndpointService",
];

const NETWORK: &[&str] = &["SubnetIds", "SecurityGroupIds"];
const LOG_MODULES: &[&str] = &[
    "DagProcessingLogs",
    "SchedulerLogs",
    "TaskLogs",
    "WebserverLogs",
    "WorkerLogs",
];
/// Of a log module: `CloudWatchLogGroupArn` is named by MWAA, the rest is carried.
const LOG_MODULE: &[&str] = &["Enabled", "LogLevel"];
const LOG_GROUP: &str = "CloudWatchLogGroupArn";

/// Whether a value says nothing (absent, null, empty): nothing is lost by leaving it out.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        Value::String(text) => text.is_empty(),
        _ => false,
    }
}

/// The members of GetEnvironment's `Environment` (raw JSON) that the resume could not create
/// again, as dotted paths (`Teams`, `NetworkConfiguration.VpcId`), sorted.
pub fn not_carried(environment: &Map<String, Value>) -> Vec<String> {
    let mut lost = vec![];
    for (name, value) in environment {
        if is_empty(value) || CARRIED.contains(&name.as_str()) {
            continue;
        }
        if OF_THIS_ENVIRONMENT.contains(&name.as_str()) {
            continue;
        }
        match (name.as_str(), value) {
            ("NetworkConfiguration", Value::Object(network)) => {
                unknown_members(name, network, NETWORK, &mut lost)
            }
            ("LoggingConfiguration", Value::Object(logging)) => {
                for (module, settings) in logging {
                    let path = format!("{name}.{module}");
                    match settings {
                        _ if is_empty(settings) => {}
                        Value::Object(settings) if LOG_MODULES.contains(&module.as_str()) => {
                            let settings: Map<String, Value> = settings
                                .iter()
                                .filter(|(k, _)| k.as_str() != LOG_GROUP)
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            unknown_members(&path, &settings, LOG_MODULE, &mut lost)
                        }
                        _ => lost.push(path),
                    }
                }
            }
            _ => lost.push(name.clone()),
        }
    }
    lost.sort();
    lost
}

/// The non-empty members of `structure` not in `known`, as `path.member`.
fn unknown_members(
    path: &str,
    structure: &Map<String, Value>,
    known: &[&str],
    lost: &mut Vec<String>,
) {
    for (member, value) in structure {
        if !is_empty(value) && !known.contains(&member.as_str()) {
            lost.push(format!("{path}.{member}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn nested_members_are_compared_and_empty_ones_lose_nothing() {
        let env = members(json!({
            "Name": "dev",
            "NetworkConfiguration": {"SubnetIds": ["s"], "SecurityGroupIds": ["g"], "VpcId": "v"},
            "LoggingConfiguration": {
                "TaskLogs": {"Enabled": true, "LogLevel": "INFO", "CloudWatchLogGroupArn": "arn"},
                "WorkerLogs": {"Enabled": true, "Retention": 7},
                "AuditLogs": {"Enabled": true},
                "SchedulerLogs": null
            },
            "Teams": {},
            "IdentityCenterConfiguration": null,
            "Status": "AVAILABLE",
            "Tags": {"aws:cloudformation:stack-name": "s"}
        }));
        assert_eq!(
            not_carried(&env),
            [
                "LoggingConfiguration.AuditLogs",
                "LoggingConfiguration.WorkerLogs.Retention",
                "NetworkConfiguration.VpcId"
            ]
        );
        let env = members(json!({"Teams": {"a": {"DagS3Path": "a"}}, "FutureSetting": 1}));
        assert_eq!(not_carried(&env), ["FutureSetting", "Teams"]);
    }
}
