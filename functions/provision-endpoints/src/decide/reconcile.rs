//! What the reconciler cleans up: endpoints this suite made for an environment that no
//! longer exists in its account (the DELETED event was lost). What it provisions needs no
//! decision of its own: a listed environment's status goes through [`super::step`] as an
//! event's would.

use std::collections::BTreeSet;

use super::endpoints::{
    Endpoint, ENVIRONMENT_ARN_KEY, ENVIRONMENT_KEY, MANAGED_BY_KEY, MANAGED_BY_VALUE,
};

/// One account's environment names, as ListEnvironments gave them; `None` when the account
/// could not be read (then none of its endpoints is taken for an orphan).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub account: String,
    pub names: Option<BTreeSet<String>>,
}

/// An environment gone from its account whose endpoints are still there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Orphan {
    pub account: String,
    pub name: String,
    pub arn: Option<String>,
}

/// The environments to clean up: live endpoints tagged as ours, with this deployment's
/// prefix, whose environment is missing from its account's listing. An endpoint without an
/// account (made before the account tag, without an ARN tag) is the owner's.
pub fn orphans(listings: &[Listing], ours: &[Endpoint], owner: &str, prefix: &str) -> Vec<Orphan> {
    let mut found = BTreeSet::new();
    for endpoint in ours.iter().filter(|e| e.is_live()) {
        if endpoint.tag(MANAGED_BY_KEY) != Some(MANAGED_BY_VALUE) {
            continue;
        }
        let Some(name) = endpoint
            .tag(ENVIRONMENT_KEY)
            .filter(|n| n.starts_with(prefix))
        else {
            continue;
        };
        let account = endpoint.environment_account().unwrap_or(owner);
        let listed = listings.iter().find(|l| l.account == account);
        match listed.and_then(|l| l.names.as_ref()) {
            Some(names) if !names.contains(name) => {
                found.insert(Orphan {
                    account: account.to_owned(),
                    name: name.to_owned(),
                    arn: endpoint.tag(ENVIRONMENT_ARN_KEY).map(str::to_owned),
                });
            }
            // Listed (still there), or an account not served or not readable: leave it.
            _ => {}
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::endpoints::ACCOUNT_KEY;

    fn endpoint(id: &str, tags: &[(&str, &str)], state: &str) -> Endpoint {
        Endpoint {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718".into(),
            endpoint_type: "Interface".into(),
            state: state.into(),
            policy: None,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn ours(id: &str, name: &str, account: Option<&str>) -> Endpoint {
        let mut tags = vec![(MANAGED_BY_KEY, MANAGED_BY_VALUE), (ENVIRONMENT_KEY, name)];
        if let Some(a) = account {
            tags.push((ACCOUNT_KEY, a));
        }
        endpoint(id, &tags, "available")
    }

    fn listing(account: &str, names: Option<&[&str]>) -> Listing {
        Listing {
            account: account.into(),
            names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn an_environment_gone_from_its_account_is_an_orphan_the_same_name_elsewhere_is_not() {
        let endpoints = [
            ours("e1", "pe-analytics", Some("111111111111")),
            ours("e2", "pe-analytics", Some("222222222222")),
            ours("e3", "pe-analytics", Some("222222222222")),
        ];
        let listings = [
            listing("123456789012", Some(&[])),
            listing("111111111111", Some(&["pe-analytics"])),
            listing("222222222222", Some(&["pe-other"])),
        ];
        assert_eq!(
            orphans(&listings, &endpoints, "123456789012", "pe-"),
            [Orphan {
                account: "222222222222".into(),
                name: "pe-analytics".into(),
                arn: None
            }],
            "one orphan for two endpoints of one environment"
        );
    }

    #[test]
    fn unreadable_or_unserved_accounts_deleted_foreign_and_unprefixed_endpoints_are_left() {
        let endpoints = [
            ours("e1", "pe-a", Some("111111111111")),
            ours("e2", "pe-b", Some("999999999999")),
            endpoint(
                "e3",
                &[
                    (MANAGED_BY_KEY, MANAGED_BY_VALUE),
                    (ENVIRONMENT_KEY, "pe-c"),
                ],
                "deleted",
            ),
            endpoint("e4", &[(ENVIRONMENT_KEY, "pe-d")], "available"),
            ours("e5", "prod-e", None),
        ];
        let listings = [
            listing("123456789012", Some(&[])),
            listing("111111111111", None),
        ];
        assert!(orphans(&listings, &endpoints, "123456789012", "pe-").is_empty());
    }

    #[test]
    fn an_endpoint_without_an_account_tag_belongs_to_its_arns_account_else_the_owner() {
        let by_arn = endpoint(
            "e1",
            &[
                (MANAGED_BY_KEY, MANAGED_BY_VALUE),
                (ENVIRONMENT_KEY, "pe-a"),
                (
                    ENVIRONMENT_ARN_KEY,
                    "arn:aws:airflow:us-east-1:111111111111:environment/pe-a",
                ),
            ],
            "available",
        );
        let old = ours("e2", "pe-b", None);
        let listings = [
            listing("123456789012", Some(&[])),
            listing("111111111111", Some(&[])),
        ];
        let found = orphans(&listings, &[by_arn, old], "123456789012", "pe-");
        let accounts: Vec<(&str, &str)> = found
            .iter()
            .map(|o| (o.account.as_str(), o.name.as_str()))
            .collect();
        assert_eq!(
            accounts,
            [("111111111111", "pe-a"), ("123456789012", "pe-b")]
        );
    }
}
