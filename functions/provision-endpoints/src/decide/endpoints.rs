//! Which endpoints an environment needs, and which of ours to delete: GetEnvironment's record
//! checked (CUSTOMER-managed, MWAA's endpoint services and Celery queue), its one VPC, the
//! interface endpoints to create (tagged as ours, with a ClientToken), and on clean-up the
//! endpoints tagged for that environment.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use common::{Error, ErrorKind, Status};

use crate::event::StatusChange;

/// Tags on every endpoint this suite creates. Clean-up deletes only endpoints carrying
/// `MANAGED_BY_KEY = MANAGED_BY_VALUE` and naming the environment.
pub const MANAGED_BY_KEY: &str = "mwaa-ops:managed-by";
pub const MANAGED_BY_VALUE: &str = "mwaa-ops";
pub const ENVIRONMENT_KEY: &str = "mwaa-ops:environment";
pub const ENVIRONMENT_ARN_KEY: &str = "mwaa-ops:environment-arn";
pub const ENDPOINT_KIND_KEY: &str = "mwaa-ops:endpoint";
/// The account the environment lives in: two participants may both have `analytics`.
pub const ACCOUNT_KEY: &str = "mwaa-ops:account";
/// The environment's Celery queue, kept on the endpoint: after DELETED, GetEnvironment can
/// no longer tell it, and the queue must leave the SQS endpoint policy again.
pub const QUEUE_KEY: &str = "mwaa-ops:celery-queue";

/// Endpoint states that mean "not there" (AWS keeps deleted endpoints listed for a while).
const GONE_STATES: [&str; 5] = ["deleted", "deleting", "rejected", "failed", "expired"];

/// What GetEnvironment tells about an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    pub arn: Option<String>,
    pub status: Status,
    pub endpoint_management: String,
    pub access_mode: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub database_service: Option<String>,
    pub webserver_service: Option<String>,
    pub celery_queue: Option<String>,
}

/// A VPC endpoint as DescribeVpcEndpoints shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    pub endpoint_type: String,
    pub state: String,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Endpoint {
    pub fn is_live(&self) -> bool {
        !GONE_STATES.contains(&self.state.to_ascii_lowercase().as_str())
    }

    pub fn is_interface(&self) -> bool {
        self.endpoint_type.eq_ignore_ascii_case("interface")
    }

    /// An SQS interface endpoint (`com.amazonaws.REGION.sqs`, `cn.com.amazonaws.REGION.sqs`).
    pub fn is_sqs(&self) -> bool {
        self.is_interface() && self.is_live() && self.service_name.ends_with(".sqs")
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The account of the environment this endpoint was made for: its account tag, else
    /// the account in its environment ARN tag (endpoints made before the account tag).
    pub fn environment_account(&self) -> Option<&str> {
        self.tag(ACCOUNT_KEY)
            .or_else(|| self.tag(ENVIRONMENT_ARN_KEY).and_then(arn_account))
    }
}

/// Which of an environment's endpoint services an endpoint connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Database,
    Webserver,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::Webserver => "webserver",
        }
    }
}

/// The account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// An MWAA endpoint service name: `com.amazonaws.vpce.REGION.vpce-svc-HEX`.
pub fn valid_endpoint_service(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("com.amazonaws.vpce.") else {
        return false;
    };
    let Some((region, svc)) = rest.split_once(".vpce-svc-") else {
        return false;
    };
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && (8..=17).contains(&svc.len())
        && svc.chars().all(|c| c.is_ascii_hexdigit())
}

/// An SQS queue ARN: `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
pub fn valid_queue_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, name] = parts[..] else {
        return false;
    };
    scheme == "arn"
        && partition.starts_with("aws")
        && service == "sqs"
        && !region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && (1..=80).contains(&name.len())
        && name
            .trim_end_matches(".fifo")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The environment, as it was set up, lacks what its endpoints need: a VPC without the SQS
/// endpoint MWAA's workers use, subnets this account cannot see or in two VPCs, an endpoint
/// service or Celery queue not of MWAA's form. `ConfigurationInvalid`, not `InvalidInput`:
/// the event was fine, and no retry helps until a person fixes the set-up and redrives it.
pub fn cannot_provision(environment: &str, reason: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConfigurationInvalid,
        format!("cannot provision the endpoints of environment {environment}: {reason}"),
    )
}

/// What a PENDING environment needs, once its GetEnvironment record checks out.
#[derive(Debug, Clone, PartialEq)]
pub struct Needs {
    pub services: Vec<(Kind, String)>,
    pub queue: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Needs(Needs),
    /// Nothing to create (not CUSTOMER-managed, or the environment is going away).
    Nothing(String),
}

/// Checks GetEnvironment's record and says which endpoint services it needs.
pub fn requirements(env: &Environment) -> Result<Requirement, Error> {
    if env.endpoint_management != "CUSTOMER" {
        return Ok(Requirement::Nothing(format!(
            "endpoint management is {:?}, not CUSTOMER: MWAA creates the endpoints",
            env.endpoint_management
        )));
    }
    if env.status.is_gone() || env.status == Status::CreateFailed {
        return Ok(Requirement::Nothing(format!(
            "environment is {} now",
            env.status
        )));
    }
    let bad = |reason: String| cannot_provision(&env.name, reason);
    let service = |kind: Kind, name: &Option<String>| -> Result<(Kind, String), Error> {
        match name.as_deref() {
            Some(s) if valid_endpoint_service(s) => Ok((kind, s.to_owned())),
            Some(s) => Err(bad(format!(
                "{} endpoint service {s:?} is not of MWAA's form com.amazonaws.vpce.REGION.vpce-svc-ID",
                kind.as_str()
            ))),
            None => Err(bad(format!(
                "GetEnvironment names no {} endpoint service",
                kind.as_str()
            ))),
        }
    };
    let mut services = vec![service(Kind::Database, &env.database_service)?];
    match env.access_mode.as_str() {
        // PUBLIC_AND_PRIVATE (Airflow 3.2 and later) serves browsers through a public load
        // balancer and the workers through a private webserver endpoint (botocore's MWAA
        // model), so a customer-managed environment needs that endpoint too (README).
        "PRIVATE_ONLY" | "PUBLIC_AND_PRIVATE" => {
            services.push(service(Kind::Webserver, &env.webserver_service)?)
        }
        "PUBLIC_ONLY" => {}
        other => {
            return Err(bad(format!(
                "webserver access mode {other:?} is none of PRIVATE_ONLY, PUBLIC_ONLY and \
                 PUBLIC_AND_PRIVATE"
            )))
        }
    }
    let queue = match env.celery_queue.as_deref() {
        Some(q) if valid_queue_arn(q) => q.to_owned(),
        Some(q) => return Err(bad(format!("Celery queue {q:?} is not an SQS queue ARN"))),
        None => return Err(bad("GetEnvironment names no Celery executor queue".into())),
    };
    if env.subnets.is_empty() {
        return Err(bad("the environment has no subnets".into()));
    }
    Ok(Requirement::Needs(Needs { services, queue }))
}

/// The one VPC of an environment's subnets (`(subnet, vpc)` pairs from DescribeSubnets).
pub fn vpc_of(
    environment: &str,
    subnets: &[String],
    found: &[(String, String)],
) -> Result<String, Error> {
    let bad = |reason: String| cannot_provision(environment, reason);
    if let Some(missing) = subnets.iter().find(|s| !found.iter().any(|(f, _)| f == *s)) {
        return Err(bad(format!(
            "subnet {missing} is not visible to this account (shared with it?)"
        )));
    }
    let vpcs: BTreeSet<&str> = found.iter().map(|(_, v)| v.as_str()).collect();
    match vpcs.len() {
        1 => Ok(vpcs.into_iter().next().unwrap_or_default().to_owned()),
        _ => Err(bad(format!(
            "the subnets are in more than one VPC: {vpcs:?}"
        ))),
    }
}

/// An interface endpoint to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEndpoint {
    pub kind: Kind,
    pub vpc_id: String,
    pub service_name: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// MWAA's endpoint services publish no private DNS name: the environment reaches them
    /// through the endpoint's own DNS entries, so private DNS stays off.
    pub private_dns: bool,
    pub tags: Vec<(String, String)>,
    /// The same request twice (concurrent deliveries) creates one endpoint.
    pub client_token: String,
}

/// Endpoints to create, and those that exist already.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointPlan {
    pub create: Vec<NewEndpoint>,
    pub existing: Vec<(Kind, String)>,
}

/// For each needed service: a live interface endpoint in the VPC counts (whoever made it);
/// otherwise one is created, tagged as ours.
pub fn plan_endpoints(
    env: &Environment,
    needs: &Needs,
    vpc: &str,
    in_vpc: &[Endpoint],
) -> EndpointPlan {
    let mut plan = EndpointPlan::default();
    let arn = env.arn.clone().unwrap_or_default();
    for (kind, service) in &needs.services {
        let found = in_vpc.iter().find(|e| {
            e.vpc_id == vpc && e.service_name == *service && e.is_interface() && e.is_live()
        });
        if let Some(e) = found {
            plan.existing.push((*kind, e.id.clone()));
            continue;
        }
        let mut tags = vec![
            (
                "Name".to_owned(),
                format!("mwaa-{}-{}", env.name, kind.as_str()),
            ),
            (MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (ENVIRONMENT_KEY.to_owned(), env.name.clone()),
            (ENDPOINT_KIND_KEY.to_owned(), kind.as_str().to_owned()),
            (QUEUE_KEY.to_owned(), needs.queue.clone()),
        ];
        if !arn.is_empty() {
            tags.push((ENVIRONMENT_ARN_KEY.to_owned(), arn.clone()));
        }
        if let Some(account) = arn_account(&arn) {
            tags.push((ACCOUNT_KEY.to_owned(), account.to_owned()));
        }
        plan.create.push(NewEndpoint {
            kind: *kind,
            vpc_id: vpc.to_owned(),
            service_name: service.clone(),
            subnets: env.subnets.clone(),
            security_groups: env.security_groups.clone(),
            private_dns: false,
            tags,
            client_token: client_token(&[&env.name, &arn, service, vpc]),
        });
    }
    plan
}

/// A ClientToken (at most 64 ASCII characters) derived from what makes a request unique.
pub fn client_token(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    format!("mwaa-ops-{}", &hex::encode(digest)[..40])
}

/// The endpoints clean-up deletes: the live ones among [`ours`].
pub fn endpoints_to_delete<'a>(
    change: &StatusChange,
    candidates: &'a [Endpoint],
) -> Vec<&'a Endpoint> {
    ours(change, candidates)
        .into_iter()
        .filter(|e| e.is_live())
        .collect()
}

/// Endpoints in any state tagged as ours for this environment (by name, and by account and
/// ARN when both the event and the tags know them: two accounts may have environments of
/// the same name in one VPC). Deleted ones still name the VPC and the queue when a
/// clean-up is retried after its deletion went through.
pub fn ours<'a>(change: &StatusChange, candidates: &'a [Endpoint]) -> Vec<&'a Endpoint> {
    let account = change
        .account
        .as_deref()
        .or_else(|| change.arn.as_deref().and_then(arn_account));
    candidates
        .iter()
        .filter(|e| e.tag(MANAGED_BY_KEY) == Some(MANAGED_BY_VALUE))
        .filter(|e| e.tag(ENVIRONMENT_KEY) == Some(change.name.as_str()))
        .filter(|e| match (account, e.environment_account()) {
            (Some(wanted), Some(tagged)) => wanted == tagged,
            _ => true,
        })
        .filter(
            |e| match (change.arn.as_deref(), e.tag(ENVIRONMENT_ARN_KEY)) {
                (Some(event_arn), Some(tag_arn)) => event_arn == tag_arn,
                _ => true,
            },
        )
        .collect()
}

/// The Celery queue to take out of the SQS policy after DELETED: the event's, else the one
/// recorded on our endpoints.
pub fn queue_after_delete(change: &StatusChange, ours: &[&Endpoint]) -> Option<String> {
    change
        .celery_queue
        .clone()
        .or_else(|| {
            ours.iter()
                .find_map(|e| e.tag(QUEUE_KEY).map(str::to_owned))
        })
        .filter(|q| valid_queue_arn(q))
}

#[cfg(test)]
mod tests;
