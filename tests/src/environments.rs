//! MWAA environments in the local control plane, made the way users make them.

use std::time::{Duration, Instant};

use aws_sdk_mwaa::types::{EndpointManagement, NetworkConfiguration, WebserverAccessMode};

/// What a test may vary about a new environment.
#[derive(Debug, Clone)]
pub struct NewEnvironment<'a> {
    pub name: &'a str,
    pub airflow_version: &'a str,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub endpoint_management: EndpointManagement,
    pub access_mode: WebserverAccessMode,
}

impl<'a> NewEnvironment<'a> {
    pub fn new(name: &'a str, airflow_version: &'a str) -> Self {
        NewEnvironment {
            name,
            airflow_version,
            subnets: vec!["subnet-0a1".into(), "subnet-0b2".into()],
            security_groups: vec!["sg-0c3".into()],
            endpoint_management: EndpointManagement::Service,
            access_mode: WebserverAccessMode::PublicOnly,
        }
    }

    pub async fn create(&self, mwaa: &aws_sdk_mwaa::Client) -> String {
        let out = mwaa
            .create_environment()
            .name(self.name)
            .airflow_version(self.airflow_version)
            .execution_role_arn("arn:aws:iam::123456789012:role/mwaa-exec")
            .source_bucket_arn("arn:aws:s3:::mwaa-ops-dags")
            .dag_s3_path("dags")
            .network_configuration(
                NetworkConfiguration::builder()
                    .set_subnet_ids(Some(self.subnets.clone()))
                    .set_security_group_ids(Some(self.security_groups.clone()))
                    .build(),
            )
            .endpoint_management(self.endpoint_management.clone())
            .webserver_access_mode(self.access_mode.clone())
            .tags("team", "data-platform")
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateEnvironment {}: {}",
                    self.name,
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            });
        out.arn().unwrap_or_default().to_owned()
    }
}

/// Polls GetEnvironment until `name` reaches `status`; panics on a timeout or a *_FAILED status.
pub async fn wait_for_status(
    mwaa: &aws_sdk_mwaa::Client,
    name: &str,
    status: &str,
    timeout: Duration,
) -> aws_sdk_mwaa::types::Environment {
    let deadline = Instant::now() + timeout;
    let mut seen = String::new();
    while Instant::now() < deadline {
        let env = mwaa
            .get_environment()
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetEnvironment {name}: {e:?}"))
            .environment
            .expect("environment in GetEnvironment output");
        seen = env
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if seen == status {
            return env;
        }
        assert!(
            !seen.ends_with("_FAILED") || status.ends_with("_FAILED"),
            "{name} is {seen} while waiting for {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{name} did not reach {status} within {timeout:?} (last seen {seen})");
}
