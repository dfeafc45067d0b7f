//! GetEnvironment's record -> the endpoints to create; our tags -> the endpoints to delete.
use super::*;
use common::EnvironmentName;

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:airflow-celery-6f1d2c3b";
const DB: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718";
const WEB: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0f1e2d3c4b5a69788";

fn env(access: &str) -> Environment {
    Environment {
        name: "analytics".into(),
        arn: Some("arn:aws:airflow:us-east-1:123456789012:environment/analytics".into()),
        status: Status::Pending,
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

/// The database and the webserver endpoint services, in the order `needs` lists them.
fn both_services() -> Vec<(Kind, String)> {
    vec![(Kind::Database, DB.into()), (Kind::Webserver, WEB.into())]
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
        name: EnvironmentName::new("analytics").unwrap(),
        arn: Some("arn:aws:airflow:us-east-1:123456789012:environment/analytics".into()),
        account: Some("123456789012".into()),
        status: Some(Status::parse(status)),
        celery_queue: None,
        subnets: vec![],
    }
}

#[test]
fn public_environments_need_the_database_endpoint_private_ones_both() {
    let public = needs(&env("PUBLIC_ONLY"));
    assert_eq!(public.services, vec![(Kind::Database, DB.to_owned())]);
    assert_eq!(public.queue, QUEUE);
    let private = needs(&env("PRIVATE_ONLY"));
    assert_eq!(private.services, both_services());
}

#[test]
fn public_and_private_environments_need_the_webserver_endpoint_for_their_workers() {
    let both = needs(&env("PUBLIC_AND_PRIVATE"));
    assert_eq!(both.services, both_services());
    let mut e = env("PUBLIC_AND_PRIVATE");
    e.webserver_service = None;
    let err = requirements(&e).unwrap_err().to_string();
    assert!(err.contains("no webserver endpoint service"), "{err}");
    let err = requirements(&env("SOMETHING_NEW")).unwrap_err().to_string();
    assert!(
        err.contains("SOMETHING_NEW") && err.contains("PUBLIC_AND_PRIVATE"),
        "{err}"
    );
}

#[test]
fn service_managed_or_dying_environments_need_nothing() {
    let mut e = env("PUBLIC_ONLY");
    e.endpoint_management = "SERVICE".into();
    assert!(matches!(requirements(&e).unwrap(), Requirement::Nothing(_)));
    let mut e = env("PUBLIC_ONLY");
    e.status = Status::Deleting;
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
