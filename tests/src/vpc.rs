//! A VPC in moto the way an MWAA environment needs one: two subnets in two zones and a
//! security group for the workers; and what tests read back of its endpoints.

use aws_sdk_ec2::types::{Filter, VpcEndpoint};
use serde_json::Value;

/// What [`private_network`] made.
pub struct PrivateNetwork {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub security_group: String,
}

/// A VPC `10.{octet}.0.0/16` with subnets in zones a and b of `region` and a security group.
pub async fn private_network(ec2: &aws_sdk_ec2::Client, region: &str, octet: u8) -> PrivateNetwork {
    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{octet}.0.0/16"))
        .send()
        .await
        .expect("CreateVpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("vpc id");
    let mut subnets = vec![];
    for (i, az) in ["a", "b"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.{octet}.{i}.0/24"))
            .availability_zone(format!("{region}{az}"))
            .send()
            .await
            .expect("CreateSubnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("subnet id");
        subnets.push(subnet);
    }
    let security_group = ec2
        .create_security_group()
        .group_name(format!("mwaa-{octet}"))
        .description("MWAA workers")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("group id");
    PrivateNetwork {
        vpc,
        subnets,
        security_group,
    }
}

/// Every endpoint in `vpc`, deleted ones included (moto keeps them a while, as EC2 does).
pub async fn endpoints_in(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Vec<VpcEndpoint> {
    ec2.describe_vpc_endpoints()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await
        .expect("DescribeVpcEndpoints")
        .vpc_endpoints
        .unwrap_or_default()
}

/// The policy document of one endpoint, parsed.
pub async fn endpoint_policy(ec2: &aws_sdk_ec2::Client, endpoint: &str) -> Value {
    let out = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(endpoint)
        .send()
        .await
        .expect("DescribeVpcEndpoints");
    let document = out.vpc_endpoints()[0]
        .policy_document()
        .expect("an endpoint policy");
    serde_json::from_str(document).expect("the policy is JSON")
}
