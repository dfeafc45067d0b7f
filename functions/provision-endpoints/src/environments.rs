//! Reading MWAA environments in the owner's account or a participant's: GetEnvironment for
//! one, ListEnvironments for the reconciler. A participant's are read through its role
//! (`infra/participant.yaml`), assumed once per cold start and refreshed by the SDK.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_config::sts::AssumeRoleProvider;
use aws_sdk_mwaa::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;

use common::aws::SdkConfig;
use common::{Error, ErrorKind, Status};

use crate::accounts::Reader;
use crate::decide::Environment;

/// The MWAA reads, per account.
pub trait Environments {
    /// GetEnvironment; `None` when the environment does not exist (any more).
    fn environment(
        &self,
        reader: &Reader,
        name: &str,
    ) -> impl Future<Output = Result<Option<Environment>, Error>> + Send;
    /// ListEnvironments: every environment name of the reader's account.
    fn environment_names(
        &self,
        reader: &Reader,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

/// MWAA clients acting as participants' roles, made on first use.
pub struct Participants {
    /// Credentials and STS endpoint for AssumeRole (the function's own).
    sts: SdkConfig,
    /// What the participant's MWAA client is built from (endpoint overrides included).
    mwaa: SdkConfig,
    external_id: String,
    clients: Mutex<HashMap<String, aws_sdk_mwaa::Client>>,
}

/// The role session's name, shown in the participant's CloudTrail.
const SESSION_NAME: &str = "mwaa-ops-provision-endpoints";

impl Participants {
    pub fn new(sts: &SdkConfig, mwaa: &SdkConfig, external_id: &str) -> Participants {
        Participants {
            sts: sts.clone(),
            mwaa: mwaa.clone(),
            external_id: external_id.to_owned(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The MWAA client of a participant. The role is assumed here, before any other call,
    /// so a refused AssumeRole is one clear error and nothing has been changed.
    pub(crate) async fn client(
        &self,
        account: &str,
        role_arn: &str,
    ) -> Result<aws_sdk_mwaa::Client, Error> {
        if let Some(client) = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(account).cloned())
        {
            return Ok(client);
        }
        let provider = AssumeRoleProvider::builder(role_arn)
            .external_id(&self.external_id)
            .session_name(SESSION_NAME)
            .configure(&self.sts)
            .build()
            .await;
        if let Err(e) = provider.provide_credentials().await {
            let detail = DisplayErrorContext(&e).to_string();
            let transient = [
                "Throttl",
                "timed out",
                "ServiceUnavailable",
                "InternalError",
            ]
            .iter()
            .any(|t| detail.contains(t));
            return Err(Error::new(
                if transient {
                    ErrorKind::Retryable
                } else {
                    ErrorKind::OperationFailed
                },
                format!(
                    "cannot read the environments of participant account {account}: \
                     sts:AssumeRole into {role_arn} (with this deployment's ExternalId) failed: \
                     {detail}. Nothing was changed. Check that infra/participant.yaml is deployed \
                     in {account} with this stack's ExternalId and function role."
                ),
            ));
        }
        let config = self
            .mwaa
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        let client = common::aws::mwaa_client(&config);
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(account.to_owned(), client.clone());
        }
        Ok(client)
    }
}

/// GetEnvironment's answer as the decisions see it.
pub fn environment_of(name: &str, env: &aws_sdk_mwaa::types::Environment) -> Environment {
    let network = env.network_configuration();
    Environment {
        name: env.name().unwrap_or(name).to_owned(),
        arn: env.arn().map(str::to_owned),
        status: Status::of(Some(env)),
        endpoint_management: env
            .endpoint_management()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "SERVICE".into()),
        access_mode: env
            .webserver_access_mode()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        subnets: network.map(|n| n.subnet_ids().to_vec()).unwrap_or_default(),
        security_groups: network
            .map(|n| n.security_group_ids().to_vec())
            .unwrap_or_default(),
        database_service: env.database_vpc_endpoint_service().map(str::to_owned),
        webserver_service: env.webserver_vpc_endpoint_service().map(str::to_owned),
        celery_queue: env.celery_executor_queue().map(str::to_owned),
    }
}
