//! A shared VPC's accounts on the bed (`tests/bed/accounts.py`): the owner (moto's default
//! account) with the owner's side of the template, participants with `infra/participant.yaml`
//! deployed through moto's CloudFormation, and credentials acting in each.

use std::collections::BTreeMap;
use std::process::Command;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::Deserialize;

use crate::{bed_python, repo_root, Bed};

#[derive(Debug, Clone, Deserialize)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
}

/// What `accounts.py` set up.
#[derive(Debug, Deserialize)]
pub struct SharedVpcAccounts {
    /// The owner's provision-endpoints function's key: the bed's IAM holds it to the
    /// template's ProvisionEndpointsFunctionRole (what Lambda would hand the function).
    pub function: Keys,
    pub function_role_arn: String,
    /// An administrator of each participant account.
    pub participants: BTreeMap<String, Keys>,
}

/// How a test sets the accounts up.
#[derive(Debug, Default)]
pub struct AccountsSetUp<'a> {
    pub external_id: &'a str,
    pub prefix: &'a str,
    /// `(account, Some(external id))` gives that participant another ExternalId than the owner's.
    pub participants: Vec<(&'a str, Option<&'a str>)>,
    /// Accounts that deploy the participant stack but are not in the owner's bus policy.
    pub unlisted: Vec<&'a str>,
    /// Sids of `infra/participant.yaml`'s role policies every participant deploys without.
    pub without: Vec<&'a str>,
}

impl Bed {
    /// Sets up the owner and the participants in moto (after [`Bed::reset`]).
    pub fn shared_vpc_accounts(&self, set_up: &AccountsSetUp<'_>) -> SharedVpcAccounts {
        let mut command = Command::new(bed_python());
        command
            .current_dir(repo_root().join("tests/bed"))
            .arg("accounts.py")
            .args(["--moto-url", &self.moto_url, "--owner", &self.account])
            .args([
                "--external-id",
                set_up.external_id,
                "--prefix",
                set_up.prefix,
            ]);
        for (account, external_id) in &set_up.participants {
            let arg = match external_id {
                Some(id) => format!("{account}:{id}"),
                None => account.to_string(),
            };
            command.args(["--participant", &arg]);
        }
        for account in &set_up.unlisted {
            command.args(["--unlisted", account]);
        }
        for sid in &set_up.without {
            command.args(["--without", sid]);
        }
        let out = command.output().expect("run tests/bed/accounts.py");
        assert!(
            out.status.success(),
            "accounts.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("accounts.py prints JSON")
    }

    /// AWS configuration pointing at moto, acting with `keys`.
    pub async fn aws_config_as(&self, keys: &Keys) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "bed-account",
            ))
            .endpoint_url(&self.moto_url)
            .load()
            .await
    }

    /// `config` with MWAA calls going to the local control plane.
    pub fn mwaa_config(&self, config: &SdkConfig) -> SdkConfig {
        config
            .clone()
            .into_builder()
            .endpoint_url(&self.mwaa_url)
            .build()
    }

    /// Events the bed's moto refused to forward to another account's bus (its policy did
    /// not allow the sender), oldest first.
    pub async fn refused_events(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/moto-api/refused-events", self.moto_url);
        reqwest::get(&url).await.unwrap().json().await.unwrap()
    }
}
