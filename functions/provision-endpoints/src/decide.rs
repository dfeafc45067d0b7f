//! The decisions, without I/O: what a status change asks for, which endpoints to create or
//! delete, and how the SQS endpoint policy changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::Error;

use crate::event::StatusChange;

/// Tags on every endpoint this suite creates. Clean-up deletes only endpoints carrying
/// `MANAGED_BY_KEY = MANAGED_BY_VALUE` and naming the environment.
pub const MANAGED_BY_KEY: &str = "mwaa-ops:managed-by";
pub const MANAGED_BY_VALUE: &str = "mwaa-ops";
pub const ENVIRONMENT_KEY: &str = "mwaa-ops:environment";
pub const ENVIRONMENT_ARN_KEY: &str = "mwaa-ops:environment-arn";
pub const ENDPOINT_KIND_KEY: &str = "mwaa-ops:endpoint";
/// The environment's Celery queue, kept on the endpoint: after DELETED, GetEnvironment can
/// no longer tell it, and the queue must leave the SQS endpoint policy again.
pub const QUEUE_KEY: &str = "mwaa-ops:celery-queue";

/// Endpoint states that mean "not there" (AWS keeps deleted endpoints listed for a while).
const GONE_STATES: [&str; 5] = ["deleted", "deleting", "rejected", "failed", "expired"];

/// What GetEnvironment tells about an environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    pub name: String,
    pub arn: Option<String>,
    pub status: String,
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

    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
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

/// What a status change asks this function to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Provision,
    CleanUp,
    Ignore(String),
}

pub fn step(change: &StatusChange) -> Step {
    match change.status.as_str() {
        "PENDING" => Step::Provision,
        "DELETED" => Step::CleanUp,
        other => Step::Ignore(format!("nothing to do for status {other}")),
    }
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
    if matches!(
        env.status.as_str(),
        "DELETING" | "DELETED" | "CREATE_FAILED"
    ) {
        return Ok(Requirement::Nothing(format!(
            "environment is {} now",
            env.status
        )));
    }
    let bad = |reason: String| Error::InvalidRequest {
        environment: env.name.clone(),
        reason,
    };
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
        "PRIVATE_ONLY" => services.push(service(Kind::Webserver, &env.webserver_service)?),
        "PUBLIC_ONLY" => {}
        other => {
            return Err(bad(format!(
                "webserver access mode {other:?} is neither PRIVATE_ONLY nor PUBLIC_ONLY"
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
    let bad = |reason: String| Error::InvalidRequest {
        environment: environment.to_owned(),
        reason,
    };
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

/// Endpoints in any state tagged as ours for this environment (by ARN when both the event
/// and the tag know it, else by name). Deleted ones still name the VPC and the queue when a
/// clean-up is retried after its deletion went through.
pub fn ours<'a>(change: &StatusChange, candidates: &'a [Endpoint]) -> Vec<&'a Endpoint> {
    candidates
        .iter()
        .filter(|e| e.tag(MANAGED_BY_KEY) == Some(MANAGED_BY_VALUE))
        .filter(|e| e.tag(ENVIRONMENT_KEY) == Some(change.name.as_str()))
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

/// How an endpoint policy changes.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChange {
    Unchanged(&'static str),
    Changed(String),
}

/// Why a policy cannot be changed; the handler turns it into an alerting error.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyProblem {
    NotJson(String),
    NoStatement,
    NoAllowStatement,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyProblem::NotJson(e) => write!(f, "the policy is not a JSON object: {e}"),
            PolicyProblem::NoStatement => write!(f, "the policy has no Statement"),
            PolicyProblem::NoAllowStatement => write!(
                f,
                "the policy has no Allow statement with a Resource to add the queue to"
            ),
        }
    }
}

/// The statements of a policy, whether `Statement` is one object or a list.
fn statements(policy: &mut Value) -> Result<Vec<&mut Value>, PolicyProblem> {
    match policy.get_mut("Statement") {
        Some(Value::Array(list)) => {
            if list.is_empty() {
                Err(PolicyProblem::NoStatement)
            } else {
                Ok(list.iter_mut().collect())
            }
        }
        Some(one) if one.is_object() => Ok(vec![one]),
        _ => Err(PolicyProblem::NoStatement),
    }
}

fn parse_policy(policy: &str) -> Result<Value, PolicyProblem> {
    match serde_json::from_str::<Value>(policy) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(PolicyProblem::NotJson(format!("got {other}"))),
        Err(e) => Err(PolicyProblem::NotJson(e.to_string())),
    }
}

fn is_allow(statement: &Value) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
}

/// The resources of a statement, whether `Resource` is a string or a list.
fn resources(statement: &Value) -> Vec<&str> {
    match statement.get("Resource") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// IAM resource matching: `*` any run of characters, `?` one character.
pub fn resource_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    let (mut pi, mut ai, mut star, mut mark) = (0, 0, None, 0);
    while ai < a.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == a[ai]) {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Adds `queue` to the first Allow statement's `Resource`, unless an Allow statement already
/// covers it (`*`, a matching wildcard, or the ARN itself).
pub fn allow_queue(policy: &str, queue: &str) -> Result<PolicyChange, PolicyProblem> {
    let mut doc = parse_policy(policy)?;
    let mut list = statements(&mut doc)?;
    let allows: Vec<&mut &mut Value> = list.iter_mut().filter(|s| is_allow(s)).collect();
    if allows.is_empty() {
        return Err(PolicyProblem::NoAllowStatement);
    }
    if allows.iter().any(|s| resources(s).contains(&queue)) {
        return Ok(PolicyChange::Unchanged("the queue is already allowed"));
    }
    if allows
        .iter()
        .any(|s| resources(s).iter().any(|r| resource_matches(r, queue)))
    {
        return Ok(PolicyChange::Unchanged(
            "a wildcard Resource already allows the queue",
        ));
    }
    // A Resource that is neither a string nor a list (null, a number) is no place to add to.
    let Some(target) = allows
        .into_iter()
        .find(|s| matches!(s.get("Resource"), Some(Value::String(_) | Value::Array(_))))
    else {
        return Err(PolicyProblem::NoAllowStatement);
    };
    let resource = target
        .get_mut("Resource")
        .expect("the statement has a Resource");
    match resource {
        Value::Array(list) => list.push(Value::from(queue)),
        other => {
            let before = other.take();
            *other = Value::Array(vec![before, Value::from(queue)]);
        }
    }
    Ok(PolicyChange::Changed(doc.to_string()))
}

/// Takes exactly `queue` out of every Allow statement's `Resource`. A statement whose only
/// resource it is keeps it (an empty `Resource` is invalid, and the queue no longer exists).
pub fn disallow_queue(policy: &str, queue: &str) -> Result<PolicyChange, PolicyProblem> {
    let mut doc = parse_policy(policy)?;
    let mut changed = false;
    for statement in statements(&mut doc)? {
        if !is_allow(statement) {
            continue;
        }
        if let Some(Value::Array(list)) = statement.get_mut("Resource") {
            let others = list.iter().filter(|r| r.as_str() != Some(queue)).count();
            if others > 0 && others < list.len() {
                list.retain(|r| r.as_str() != Some(queue));
                changed = true;
            }
        }
    }
    Ok(if changed {
        PolicyChange::Changed(doc.to_string())
    } else {
        PolicyChange::Unchanged("the queue is not listed")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:airflow-celery-6f1d2c3b";
    const DB: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718";
    const WEB: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0f1e2d3c4b5a69788";

    fn env(access: &str) -> Environment {
        Environment {
            name: "analytics".into(),
            arn: Some("arn:aws:airflow:us-east-1:123456789012:environment/analytics".into()),
            status: "PENDING".into(),
            endpoint_management: "CUSTOMER".into(),
            access_mode: access.into(),
            subnets: vec!["subnet-1".into(), "subnet-2".into()],
            security_groups: vec!["sg-1".into()],
            database_service: Some(DB.into()),
            webserver_service: Some(WEB.into()),
            celery_queue: Some(QUEUE.into()),
        }
    }

    fn endpoint(id: &str, service: &str, state: &str) -> Endpoint {
        Endpoint {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            service_name: service.into(),
            endpoint_type: "Interface".into(),
            state: state.into(),
            policy: None,
            tags: BTreeMap::new(),
        }
    }

    fn needs(env: &Environment) -> Needs {
        match requirements(env).unwrap() {
            Requirement::Needs(n) => n,
            other => panic!("{other:?}"),
        }
    }

    fn change(status: &str) -> StatusChange {
        StatusChange {
            event_id: "ev-1".into(),
            name: "analytics".into(),
            arn: Some("arn:aws:airflow:us-east-1:123456789012:environment/analytics".into()),
            account: Some("123456789012".into()),
            status: status.into(),
            celery_queue: None,
            subnets: vec![],
        }
    }

    #[test]
    fn pending_provisions_deleted_cleans_up_the_rest_is_ignored() {
        assert_eq!(step(&change("PENDING")), Step::Provision);
        assert_eq!(step(&change("DELETED")), Step::CleanUp);
        assert!(matches!(step(&change("AVAILABLE")), Step::Ignore(_)));
    }

    #[test]
    fn public_environments_need_the_database_endpoint_private_ones_both() {
        let public = needs(&env("PUBLIC_ONLY"));
        assert_eq!(public.services, vec![(Kind::Database, DB.to_owned())]);
        assert_eq!(public.queue, QUEUE);
        let private = needs(&env("PRIVATE_ONLY"));
        assert_eq!(
            private.services,
            vec![
                (Kind::Database, DB.to_owned()),
                (Kind::Webserver, WEB.to_owned())
            ]
        );
    }

    #[test]
    fn service_managed_or_dying_environments_need_nothing() {
        let mut e = env("PUBLIC_ONLY");
        e.endpoint_management = "SERVICE".into();
        assert!(matches!(requirements(&e).unwrap(), Requirement::Nothing(_)));
        let mut e = env("PUBLIC_ONLY");
        e.status = "DELETING".into();
        assert!(matches!(requirements(&e).unwrap(), Requirement::Nothing(_)));
    }

    #[test]
    fn malformed_services_and_queues_are_rejected_with_a_clear_message() {
        let mut e = env("PRIVATE_ONLY");
        e.webserver_service = Some("com.amazonaws.us-east-1.sqs".into());
        let err = requirements(&e).unwrap_err().to_string();
        assert!(
            err.contains("webserver endpoint service") && err.contains("analytics"),
            "{err}"
        );
        let mut e = env("PUBLIC_ONLY");
        e.celery_queue = Some("arn:aws:sns:us-east-1:123456789012:topic".into());
        let err = requirements(&e).unwrap_err().to_string();
        assert!(err.contains("not an SQS queue ARN"), "{err}");
        let mut e = env("PUBLIC_ONLY");
        e.database_service = None;
        assert!(requirements(&e)
            .unwrap_err()
            .to_string()
            .contains("database"));
    }

    #[test]
    fn services_follow_mwaa_formats() {
        assert!(valid_endpoint_service(DB));
        assert!(!valid_endpoint_service(
            "com.amazonaws.vpce.us-east-1.vpce-svc-XYZ"
        ));
        assert!(!valid_endpoint_service("com.amazonaws.us-east-1.sqs"));
        assert!(valid_queue_arn(QUEUE));
        assert!(valid_queue_arn(
            "arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo"
        ));
        assert!(!valid_queue_arn("arn:aws:sqs:us-east-1:1234:q"));
        assert!(!valid_queue_arn("*"));
    }

    #[test]
    fn the_vpc_comes_from_the_subnets_and_must_be_one() {
        let subnets = vec!["subnet-1".to_owned(), "subnet-2".to_owned()];
        let one = [
            ("subnet-1".into(), "vpc-1".into()),
            ("subnet-2".into(), "vpc-1".into()),
        ];
        assert_eq!(vpc_of("e", &subnets, &one).unwrap(), "vpc-1");
        let two = [
            ("subnet-1".into(), "vpc-1".into()),
            ("subnet-2".into(), "vpc-2".into()),
        ];
        assert!(vpc_of("e", &subnets, &two)
            .unwrap_err()
            .to_string()
            .contains("more than one VPC"));
        let missing = [("subnet-1".into(), "vpc-1".into())];
        assert!(vpc_of("e", &subnets, &missing)
            .unwrap_err()
            .to_string()
            .contains("subnet-2"));
    }

    #[test]
    fn missing_endpoints_are_created_with_our_tags_and_the_environments_network() {
        let e = env("PRIVATE_ONLY");
        let plan = plan_endpoints(&e, &needs(&e), "vpc-1", &[]);
        assert_eq!(plan.create.len(), 2);
        let db = &plan.create[0];
        assert_eq!((db.kind, db.service_name.as_str()), (Kind::Database, DB));
        assert_eq!(db.subnets, e.subnets);
        assert_eq!(db.security_groups, e.security_groups);
        assert!(!db.private_dns);
        let tags: BTreeMap<_, _> = db.tags.iter().cloned().collect();
        assert_eq!(tags[MANAGED_BY_KEY], MANAGED_BY_VALUE);
        assert_eq!(tags[ENVIRONMENT_KEY], "analytics");
        assert_eq!(tags[QUEUE_KEY], QUEUE);
        assert_eq!(tags["Name"], "mwaa-analytics-database");
        assert!(db.client_token.len() <= 64);
        assert_ne!(db.client_token, plan.create[1].client_token);
    }

    #[test]
    fn live_endpoints_count_whoever_made_them_gone_ones_do_not() {
        let e = env("PRIVATE_ONLY");
        let existing = [
            endpoint("vpce-db", DB, "available"),
            endpoint("vpce-web-old", WEB, "deleted"),
            endpoint("vpce-web-bad", WEB, "Rejected"),
            endpoint("vpce-web-failed", WEB, "failed"),
        ];
        let plan = plan_endpoints(&e, &needs(&e), "vpc-1", &existing);
        assert_eq!(plan.existing, vec![(Kind::Database, "vpce-db".to_owned())]);
        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.create[0].kind, Kind::Webserver);
        // A pending endpoint is on its way: it counts.
        let pending = [
            endpoint("vpce-db", DB, "pending"),
            endpoint("vpce-web", WEB, "pendingAcceptance"),
        ];
        assert!(plan_endpoints(&e, &needs(&e), "vpc-1", &pending)
            .create
            .is_empty());
    }

    #[test]
    fn a_string_resource_becomes_a_list_with_the_queue() {
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": "*", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:123456789012:other"}]});
        let PolicyChange::Changed(new) = allow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let new: Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            new["Statement"][0]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:other", QUEUE])
        );
        assert_eq!(new["Statement"][0]["Action"], "sqs:*", "the rest is kept");
    }

    #[test]
    fn a_list_resource_gains_the_queue_once() {
        let policy = json!({"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "sqs:DeleteQueue", "Resource": "*"},
            {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": ["arn:aws:sqs:us-east-1:123456789012:a"]}]});
        let PolicyChange::Changed(once) = allow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let doc: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"], "*",
            "Deny statements are not touched"
        );
        assert_eq!(
            doc["Statement"][1]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:a", QUEUE])
        );
        assert_eq!(
            allow_queue(&once, QUEUE).unwrap(),
            PolicyChange::Unchanged("the queue is already allowed")
        );
    }

    #[test]
    fn a_resource_that_is_not_a_string_or_list_is_not_added_to() {
        let null = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": null}]});
        assert_eq!(
            allow_queue(&null.to_string(), "arn:aws:sqs:us-east-1:123456789012:q"),
            Err(PolicyProblem::NoAllowStatement)
        );
    }

    #[test]
    fn star_and_matching_wildcards_already_allow() {
        for resource in [
            json!("*"),
            json!(["*"]),
            json!("arn:aws:sqs:us-east-1:123456789012:airflow-celery-*"),
        ] {
            let policy = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": resource}});
            assert!(
                matches!(
                    allow_queue(&policy.to_string(), QUEUE).unwrap(),
                    PolicyChange::Unchanged(_)
                ),
                "{policy}"
            );
        }
        assert!(!resource_matches(
            "arn:aws:sqs:us-east-1:123456789012:other-*",
            QUEUE
        ));
        assert!(resource_matches(
            "arn:aws:sqs:*:123456789012:airflow-celery-????????",
            QUEUE
        ));
    }

    #[test]
    fn policies_without_an_allow_statement_are_problems() {
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]});
        assert_eq!(
            allow_queue(&deny.to_string(), QUEUE),
            Err(PolicyProblem::NoAllowStatement)
        );
        assert_eq!(allow_queue("{}", QUEUE), Err(PolicyProblem::NoStatement));
        assert!(matches!(
            allow_queue("not json", QUEUE),
            Err(PolicyProblem::NotJson(_))
        ));
        let not_resource = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "NotResource": "arn:aws:sqs:*:*:x"}]});
        assert_eq!(
            allow_queue(&not_resource.to_string(), QUEUE),
            Err(PolicyProblem::NoAllowStatement)
        );
    }

    #[test]
    fn clean_up_takes_exactly_the_queue_out_again() {
        let policy = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*",
            "Resource": ["arn:aws:sqs:us-east-1:123456789012:a", QUEUE]}]});
        let PolicyChange::Changed(new) = disallow_queue(&policy.to_string(), QUEUE).unwrap() else {
            panic!("unchanged")
        };
        let doc: Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"],
            json!(["arn:aws:sqs:us-east-1:123456789012:a"])
        );
        assert!(matches!(
            disallow_queue(&new, QUEUE).unwrap(),
            PolicyChange::Unchanged(_)
        ));
        // The only resource stays (an empty Resource is invalid); `*` is not ours to narrow.
        for resource in [json!([QUEUE]), json!(QUEUE), json!("*")] {
            let p = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": resource}]});
            assert!(matches!(
                disallow_queue(&p.to_string(), QUEUE).unwrap(),
                PolicyChange::Unchanged(_)
            ));
        }
    }

    #[test]
    fn clean_up_deletes_only_our_live_endpoints_of_that_environment() {
        let tagged = |id: &str, env: &str, arn: Option<&str>, state: &str| {
            let mut e = endpoint(id, DB, state);
            e.tags
                .insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
            e.tags.insert(ENVIRONMENT_KEY.into(), env.into());
            e.tags.insert(QUEUE_KEY.into(), QUEUE.into());
            if let Some(arn) = arn {
                e.tags.insert(ENVIRONMENT_ARN_KEY.into(), arn.into());
            }
            e
        };
        let mut foreign = endpoint("vpce-foreign", DB, "available");
        foreign
            .tags
            .insert(ENVIRONMENT_KEY.into(), "analytics".into());
        let candidates = [
            tagged(
                "vpce-mine",
                "analytics",
                change("DELETED").arn.as_deref(),
                "available",
            ),
            tagged("vpce-mine-no-arn", "analytics", None, "available"),
            tagged(
                "vpce-other-account",
                "analytics",
                Some("arn:aws:airflow:us-east-1:999999999999:environment/analytics"),
                "available",
            ),
            tagged("vpce-other-env", "reporting", None, "available"),
            tagged("vpce-gone", "analytics", None, "deleted"),
            foreign,
        ];
        let doomed: Vec<&str> = endpoints_to_delete(&change("DELETED"), &candidates)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(doomed, ["vpce-mine", "vpce-mine-no-arn"]);
        let all: Vec<&str> = ours(&change("DELETED"), &candidates)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(all, ["vpce-mine", "vpce-mine-no-arn", "vpce-gone"]);
        let ours_refs = ours(&change("DELETED"), &candidates);
        assert_eq!(
            queue_after_delete(&change("DELETED"), &ours_refs).as_deref(),
            Some(QUEUE)
        );
    }
}
