//! The AWS calls provision-endpoints makes, behind one narrow trait: the SDK in Lambda and on
//! the bed, a fake in unit tests.

use std::future::Future;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification, VpcEndpointType};

use common::Error;

use crate::accounts::Reader;
use crate::decide::{
    Endpoint, Environment, NewEndpoint, ENVIRONMENT_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use crate::environments::{environment_of, Environments, Participants};

pub trait Ops {
    /// `(subnet, vpc)` for each of `subnets` this account can see.
    fn subnet_vpcs(
        &self,
        subnets: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send;
    /// Every endpoint of a VPC (any state).
    fn endpoints_in_vpc(
        &self,
        vpc: &str,
    ) -> impl Future<Output = Result<Vec<Endpoint>, Error>> + Send;
    /// Endpoints tagged as created by this suite for `environment` (any VPC, any state);
    /// for every environment when `None` (the reconciler).
    fn managed_endpoints(
        &self,
        environment: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Endpoint>, Error>> + Send;
    /// Creates an interface endpoint; returns its id.
    fn create_endpoint(
        &self,
        endpoint: &NewEndpoint,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// Replaces an endpoint's policy.
    fn set_policy(
        &self,
        endpoint_id: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn delete_endpoints(&self, ids: &[String]) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The real thing.
pub struct AwsOps {
    /// MWAA in the function's own account (the VPC owner's).
    pub mwaa: aws_sdk_mwaa::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// MWAA in participant accounts, through their roles (see `environments.rs`).
    pub participants: Participants,
}

fn endpoint_of(e: &aws_sdk_ec2::types::VpcEndpoint) -> Endpoint {
    Endpoint {
        id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
        vpc_id: e.vpc_id().unwrap_or_default().to_owned(),
        service_name: e.service_name().unwrap_or_default().to_owned(),
        endpoint_type: e
            .vpc_endpoint_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        state: e.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        policy: e.policy_document().map(str::to_owned),
        tags: e
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
    }
}

impl AwsOps {
    async fn describe_endpoints(&self, filters: Vec<Filter>) -> Result<Vec<Endpoint>, Error> {
        let mut out = vec![];
        let mut pages = self
            .ec2
            .describe_vpc_endpoints()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::aws("EC2", "DescribeVpcEndpoints", &e))?;
            out.extend(page.vpc_endpoints().iter().map(endpoint_of));
        }
        Ok(out)
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl Ops for AwsOps {
    async fn subnet_vpcs(&self, subnets: &[String]) -> Result<Vec<(String, String)>, Error> {
        let out = self
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(subnets.to_vec()))
            .send()
            .await
            .map_err(|e| Error::aws("EC2", "DescribeSubnets", &e))?;
        Ok(out
            .subnets()
            .iter()
            .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.vpc_id()?.to_owned())))
            .collect())
    }

    async fn endpoints_in_vpc(&self, vpc: &str) -> Result<Vec<Endpoint>, Error> {
        self.describe_endpoints(vec![filter("vpc-id", vpc)]).await
    }

    async fn managed_endpoints(&self, environment: Option<&str>) -> Result<Vec<Endpoint>, Error> {
        let mut filters = vec![filter(&format!("tag:{MANAGED_BY_KEY}"), MANAGED_BY_VALUE)];
        if let Some(environment) = environment {
            filters.push(filter(&format!("tag:{ENVIRONMENT_KEY}"), environment));
        }
        self.describe_endpoints(filters).await
    }

    async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<String, Error> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::VpcEndpoint)
            .set_tags(Some(
                endpoint
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let out = self
            .ec2
            .create_vpc_endpoint()
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .vpc_id(&endpoint.vpc_id)
            .service_name(&endpoint.service_name)
            .set_subnet_ids(Some(endpoint.subnets.clone()))
            .set_security_group_ids(Some(endpoint.security_groups.clone()))
            .private_dns_enabled(endpoint.private_dns)
            .tag_specifications(tags)
            .client_token(&endpoint.client_token)
            .send()
            .await
            .map_err(|e| Error::aws("EC2", "CreateVpcEndpoint", &e))?;
        out.vpc_endpoint()
            .and_then(|e| e.vpc_endpoint_id())
            .map(str::to_owned)
            .ok_or_else(|| Error::Aws {
                service: "EC2",
                operation: "CreateVpcEndpoint",
                message: "the answer names no endpoint".into(),
                retryable: false,
            })
    }

    async fn set_policy(&self, endpoint_id: &str, policy: &str) -> Result<(), Error> {
        self.ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(endpoint_id)
            .policy_document(policy)
            .send()
            .await
            .map_err(|e| Error::aws("EC2", "ModifyVpcEndpoint", &e))?;
        Ok(())
    }

    async fn delete_endpoints(&self, ids: &[String]) -> Result<(), Error> {
        let out = self
            .ec2
            .delete_vpc_endpoints()
            .set_vpc_endpoint_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| Error::aws("EC2", "DeleteVpcEndpoints", &e))?;
        // Already gone is what we want; anything else is reported.
        let failed: Vec<String> = out
            .unsuccessful()
            .iter()
            .filter(|u| {
                u.error()
                    .and_then(|e| e.code())
                    .is_none_or(|c| !c.contains("NotFound"))
            })
            .map(|u| {
                format!(
                    "{}: {}",
                    u.resource_id().unwrap_or("?"),
                    u.error().and_then(|e| e.message()).unwrap_or("failed")
                )
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::transient(
                "EC2",
                "DeleteVpcEndpoints",
                failed.join("; "),
            ))
        }
    }
}

impl AwsOps {
    async fn mwaa_of(&self, reader: &Reader) -> Result<aws_sdk_mwaa::Client, Error> {
        match reader {
            Reader::Own { .. } => Ok(self.mwaa.clone()),
            Reader::Participant { account, role_arn } => {
                self.participants.client(account, role_arn).await
            }
        }
    }
}

impl Environments for AwsOps {
    async fn environment(&self, reader: &Reader, name: &str) -> Result<Option<Environment>, Error> {
        let mwaa = self.mwaa_of(reader).await?;
        let env = common::aws::get_environment(&mwaa, name).await?;
        Ok(env.map(|e| environment_of(name, &e)))
    }

    async fn environment_names(&self, reader: &Reader) -> Result<Vec<String>, Error> {
        let mwaa = self.mwaa_of(reader).await?;
        let mut names = vec![];
        let mut pages = mwaa.list_environments().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::aws("MWAA", "ListEnvironments", &e))?;
            names.extend(page.environments().iter().cloned());
        }
        Ok(names)
    }
}
