//! The template's roles on the bed: a function's clients sign with an access key that names
//! its role, and moto and the local MWAA control plane authorise every call against that
//! role's statements as the SAM-translated template has them (tests/bed/iam_moto.py).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::{json, Map, Value};

use crate::Bed;

/// A role of the template (its logical id), with the parameters and the names of the bed's
/// resources its policies refer to (`SuiteBucket` -> `mwaa-ops-suite`, ...).
#[derive(Clone, Debug)]
pub struct Role {
    name: String,
    parameters: Map<String, Value>,
    resources: Map<String, Value>,
    without: Vec<String>,
}

impl Role {
    pub fn new(logical_id: &str) -> Role {
        Role {
            name: logical_id.into(),
            parameters: Map::new(),
            resources: Map::new(),
            without: vec![],
        }
    }

    /// A template parameter's value (others keep their defaults).
    pub fn parameter(mut self, name: &str, value: &str) -> Role {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// What `Ref`/`Fn::GetAtt` of a template resource are on the bed: a bucket's name, an
    /// ARN, or `{"Ref": .., "Arn": ..}`. A resource left out matches nothing.
    pub fn resource(mut self, logical_id: &str, physical: Value) -> Role {
        self.resources.insert(logical_id.into(), physical);
        self
    }

    /// The role with its statement `sid` taken out (to see a call refused).
    pub fn without(mut self, sid: &str) -> Role {
        self.without.push(sid.into());
        self
    }
}

/// AWS configurations acting as a role: for moto, and for the MWAA control planes.
#[derive(Clone, Debug)]
pub struct AsRole {
    /// The access key naming the role (a function deployed with it is held to the role).
    pub key: String,
    pub aws: SdkConfig,
    pub mwaa: SdkConfig,
    pub serverless: SdkConfig,
}

impl AsRole {
    /// An S3 client (path-style, as moto serves it).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.aws)
                .force_path_style(true)
                .build(),
        )
    }

    /// The MWAA client the functions use, on the local control plane.
    pub fn mwaa(&self) -> aws_sdk_mwaa::Client {
        common::aws::mwaa_client(&self.mwaa)
    }
}

impl Bed {
    /// Registers `role` with the bed and returns configurations whose calls IAM holds to it.
    pub async fn as_role(&self, role: &Role) -> AsRole {
        let url = format!("{}/moto-api/bed-iam/roles", self.moto_url);
        let response = reqwest::Client::new()
            .post(&url)
            .json(&json!({"role": role.name, "parameters": role.parameters,
                          "resources": role.resources, "without": role.without}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{url}: {status} {body}");
        let key = body["access_key"]
            .as_str()
            .expect("an access key")
            .to_owned();
        let aws = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                key.clone(),
                "unchecked",
                None,
                None,
                "bed-role",
            ))
            .endpoint_url(&self.moto_url)
            .load()
            .await;
        let at = |url: &str| aws.clone().into_builder().endpoint_url(url).build();
        AsRole {
            key,
            mwaa: at(&self.mwaa_url),
            serverless: at(&self.serverless_url),
            aws,
        }
    }

    /// The calls IAM refused on moto so far: `{role, action, resource, decision, context}`.
    pub async fn iam_refusals(&self) -> Vec<Value> {
        let url = format!("{}/moto-api/bed-iam/refused", self.moto_url);
        let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        body.as_array().cloned().unwrap_or_default()
    }
}
