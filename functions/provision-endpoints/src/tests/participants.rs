//! Owner and participants: whose credentials read an environment, an unlisted account, the
//! account tag; and the reconciler (a lost PENDING, a lost DELETED) on the same fake.
use super::*;
use decide::{ACCOUNT_KEY, ENVIRONMENT_ARN_KEY, QUEUE_KEY};

const OWNER: &str = "123456789012";

/// The sample events' account (210987654321) is a participant of `OWNER`'s deployment.
fn as_participant(fake: Fake) -> ProvisionEndpoints<Fake> {
    ProvisionEndpoints {
        ops: fake,
        environment_prefix: PREFIX.into(),
        accounts: accounts::Accounts::from_settings(
            "aws",
            OWNER,
            SAMPLE_ACCOUNT,
            "mwaa-ops-participant",
            "ext",
        )
        .unwrap(),
    }
}

fn participant() -> Reader {
    Reader::Participant {
        account: SAMPLE_ACCOUNT.into(),
        role_arn: format!("arn:aws:iam::{SAMPLE_ACCOUNT}:role/mwaa-ops-participant"),
    }
}

#[tokio::test]
async fn an_event_from_an_unlisted_account_is_refused_before_any_call() {
    for name in ["pending", "sparse", "deleted"] {
        let function = ProvisionEndpoints {
            ops: Fake::pending("PRIVATE_ONLY"),
            environment_prefix: PREFIX.into(),
            accounts: accounts::Accounts::owner_only(OWNER),
        };
        let err = function.run(event(name)).await.unwrap_err();
        assert_eq!(err.kind(), common::ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(SAMPLE_ACCOUNT) && text.contains("`account`"),
            "{text}"
        );
        assert!(function.ops.readers.lock().unwrap().is_empty(), "{name}");
        assert!(function.ops.mutations().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_participants_environment_is_read_through_its_role_and_its_endpoints_name_the_account() {
    let function = as_participant(Fake::pending("PRIVATE_ONLY"));
    let report = function.run(event("sparse")).await.unwrap();
    assert_eq!(report["action"], "provisioned", "{report}");
    assert_eq!(report["account"], SAMPLE_ACCOUNT, "{report}");
    assert_eq!(*function.ops.readers.lock().unwrap(), [participant()]);
    let made = function.ops.live("");
    let ours: Vec<_> = made
        .iter()
        .filter(|e| e.tags.contains_key(MANAGED_BY_KEY))
        .collect();
    assert_eq!(ours.len(), 2);
    assert!(ours
        .iter()
        .all(|e| e.tags.get(ACCOUNT_KEY).map(String::as_str) == Some(SAMPLE_ACCOUNT)));
}

/// EventBridge documents `account` on every event; one without it is still read in the
/// account its environment ARN names, never as the owner's (where a participant's
/// environment would look gone and its endpoints be cleaned up).
#[tokio::test]
async fn an_event_without_account_is_read_in_the_account_of_its_environment_arn() {
    let function = as_participant(Fake::pending("PRIVATE_ONLY"));
    let mut sparse = event("sparse");
    sparse.as_object_mut().unwrap().remove("account");
    let report = function.run(sparse).await.unwrap();
    assert_eq!(report["action"], "provisioned", "{report}");
    assert_eq!(report["account"], SAMPLE_ACCOUNT, "{report}");
    assert_eq!(*function.ops.readers.lock().unwrap(), [participant()]);

    // Neither `account` nor a resource ARN: the name comes from the detail, the owner reads.
    let owner = ProvisionEndpoints {
        ops: Fake::pending("PRIVATE_ONLY"),
        environment_prefix: PREFIX.into(),
        accounts: accounts::Accounts::owner_only(OWNER),
    };
    let mut bare = event("pending");
    bare.as_object_mut().unwrap().remove("account");
    bare["resources"] = json!([]);
    let report = owner.run(bare).await.unwrap();
    assert_eq!(report["action"], "provisioned", "{report}");
    assert_eq!(
        *owner.ops.readers.lock().unwrap(),
        [Reader::Own {
            account: OWNER.into()
        }]
    );
}

#[tokio::test]
async fn the_clean_up_of_one_account_leaves_the_same_name_of_another_alone() {
    let function = as_participant(Fake::pending("PUBLIC_ONLY"));
    function.run(event("pending")).await.unwrap();
    // The same environment name in another account, with an endpoint of its own.
    let other = {
        let mut e = function.ops.live("")[1].clone();
        assert!(e.tags.contains_key(MANAGED_BY_KEY), "{e:?}");
        e.id = "vpce-other".into();
        e.tags.insert(ACCOUNT_KEY.into(), "222222222222".into());
        e.tags.insert(
            ENVIRONMENT_ARN_KEY.into(),
            "arn:aws:airflow:us-east-1:222222222222:environment/analytics-shared".into(),
        );
        e
    };
    function.ops.endpoints.lock().unwrap().push(other);
    let report = function.run(event("deleted")).await.unwrap();
    assert_eq!(report["action"], "cleaned_up", "{report}");
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{report}");
    let left: Vec<String> = function
        .ops
        .live("")
        .iter()
        .filter(|e| e.tags.contains_key(MANAGED_BY_KEY))
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(left, ["vpce-other"]);
}

fn reconcile_event() -> Value {
    serde_json::json!({"reconcile": {}})
}

#[tokio::test]
async fn the_reconciler_provisions_a_pending_environment_whose_event_was_lost_once() {
    let function = as_participant(Fake::pending("PRIVATE_ONLY"));
    let report = function.run(reconcile_event()).await.unwrap();
    assert_eq!(report["action"], "reconciled", "{report}");
    let fixed = report["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1, "{report}");
    assert_eq!(fixed[0]["fix"], "provisioned");
    assert_eq!(fixed[0]["account"], SAMPLE_ACCOUNT);
    assert_eq!(fixed[0]["report"]["created"].as_array().unwrap().len(), 2);
    // Both accounts were listed, the participant's through its role.
    let readers = function.ops.readers.lock().unwrap().clone();
    assert_eq!(readers[0].account(), OWNER);
    assert!(
        readers[1..].iter().all(|r| *r == participant()),
        "{readers:?}"
    );
    // Idempotent: a second run finds nothing to fix.
    let again = function.run(reconcile_event()).await.unwrap();
    assert_eq!(again["fixed"], serde_json::json!([]), "{again}");
    assert_eq!(queue_count(&function.ops), 1);
}

#[tokio::test]
async fn the_reconciler_cleans_up_after_an_environment_whose_deleted_event_was_lost() {
    let function = as_participant(Fake::pending("PUBLIC_ONLY"));
    function.run(event("pending")).await.unwrap();
    // The environment is gone; no event said so.
    let gone = Fake {
        env: None,
        endpoints: Mutex::new(function.ops.endpoints.lock().unwrap().clone()),
        subnets: function.ops.subnets.clone(),
        ..Fake::default()
    };
    let function = as_participant(gone);
    let report = function.run(reconcile_event()).await.unwrap();
    let fixed = report["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1, "{report}");
    assert_eq!(fixed[0]["fix"], "cleaned_up");
    assert_eq!(fixed[0]["environment"], "analytics-shared");
    assert_eq!(
        fixed[0]["report"]["queue"], QUEUE,
        "from the endpoint's tag"
    );
    assert!(function
        .ops
        .live("")
        .iter()
        .all(|e| !e.tags.contains_key(QUEUE_KEY)));
    assert_eq!(queue_count(&function.ops), 0);
    let again = function.run(reconcile_event()).await.unwrap();
    assert_eq!(again["fixed"], serde_json::json!([]), "{again}");
}

#[tokio::test]
async fn an_account_the_reconciler_cannot_read_fails_the_run_after_the_others_and_loses_nothing() {
    let function = as_participant(Fake {
        throttled: Some("ListEnvironments"),
        ..Fake::pending("PUBLIC_ONLY")
    });
    let err = function.run(reconcile_event()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("could not handle 2"), "{text}");
    assert!(function.ops.mutations().is_empty());
}
