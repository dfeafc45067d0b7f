//! What a night of the suite sends beside its state machines, as the template deploys it:
//! every MWAA status change goes to notify (alerts) and to provision-endpoints (endpoints),
//! each deciding for itself; and the check that the night's metrics are the stack's
//! dashboard's, no more and no fewer.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::iam::Role;
use crate::lambda::{Deployment, Functions};
use crate::rules::RuleQueue;
use crate::Bed;

/// The template's two rules that take every MWAA status change, to queues.
pub struct StatusChanges {
    /// notify's `EnvironmentStatus` rule.
    pub to_notify: RuleQueue,
    /// provision-endpoints' `StatusChange` rule.
    pub to_endpoints: RuleQueue,
}

impl StatusChanges {
    /// Deploys both rules for environments named `prefix...`; events sent from now on reach them.
    pub async fn deploy(bed: &Bed, prefix: &str) -> StatusChanges {
        let params = [
            ("EnvironmentNamePrefix", prefix),
            ("ArrivalBuckets", "unused"),
        ];
        StatusChanges {
            to_notify: bed
                .rule_to_queue("NotifyFunctionEnvironmentStatus", &params)
                .await,
            to_endpoints: bed
                .rule_to_queue("ProvisionEndpointsFunctionStatusChange", &params)
                .await,
        }
    }

    /// Hands every status change delivered so far to provision-endpoints in `functions` (see
    /// [`with_provision_endpoints`]), one at a time as its reserved concurrency of 1 does;
    /// returns how many. Each must succeed.
    pub async fn to_provision_endpoints(&self, functions: &Functions) -> usize {
        let events = self.to_endpoints.take(1, Duration::from_secs(15)).await;
        for event in &events {
            if let Err(failure) = functions.invoke("provision-endpoints", event).await {
                panic!("provision-endpoints failed {event}: {failure}");
            }
        }
        events.len()
    }
}

/// `deployment` with provision-endpoints as the template deploys it for `prefix`, held to
/// its role.
pub async fn with_provision_endpoints(
    bed: &Bed,
    prefix: &str,
    deployment: Deployment,
) -> Deployment {
    let role =
        Role::new("ProvisionEndpointsFunctionRole").parameter("EnvironmentNamePrefix", prefix);
    let key = bed.as_role(&role).await.key;
    deployment
        .parameter("EnvironmentNamePrefix", prefix)
        .role_key("provision-endpoints", &key)
}

/// The dashboard's namespace and the metric names its SEARCH expressions read, from the
/// template as CloudFormation gets it.
pub fn dashboard_metrics() -> (String, BTreeSet<String>) {
    let template = crate::template::translated(&[]);
    let body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        .as_str()
        .expect("the dashboard body, its Fn::Sub resolved");
    let body: Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let (mut namespaces, mut names) = (BTreeSet::new(), BTreeSet::new());
    for widget in body["widgets"].as_array().unwrap() {
        for line in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for item in line.as_array().unwrap() {
                let expression = item["expression"].as_str().unwrap();
                // SEARCH('{<namespace>,Environment,Function} MetricName="<name>"', ...)
                let (_, rest) = expression.split_once("'{").unwrap();
                let (namespace, rest) = rest.split_once(",Environment,Function}").unwrap();
                let (_, rest) = rest.split_once("MetricName=\"").unwrap();
                namespaces.insert(namespace.to_string());
                names.insert(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    assert_eq!(namespaces.len(), 1, "{namespaces:?}");
    (namespaces.pop_first().unwrap(), names)
}

/// Checks each metric document of a night as CloudWatch would read it: in the dashboard's
/// namespace, dimensions `Environment` and `Function`, an environment (or workflow) of
/// `dimensions`, every value a number; and the night's metric names against the dashboard's:
/// every one emitted is on it, and every one it draws was emitted.
pub fn assert_the_dashboard_draws_the_night(documents: &[Value], dimensions: &[&str]) {
    let (namespace, on_dashboard) = dashboard_metrics();
    let mut seen = BTreeSet::new();
    for doc in documents {
        let definitions = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definitions["Namespace"], namespace, "{doc}");
        assert_eq!(
            definitions["Dimensions"],
            json!([["Environment", "Function"]])
        );
        let environment = doc["Environment"].as_str().unwrap_or_default();
        assert!(dimensions.contains(&environment), "{doc}");
        for definition in definitions["Metrics"].as_array().unwrap() {
            let name = definition["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{doc}");
            seen.insert(name.to_string());
        }
    }
    let not_drawn: Vec<_> = seen.difference(&on_dashboard).collect();
    assert!(
        not_drawn.is_empty(),
        "emitted, not on the dashboard: {not_drawn:?}"
    );
    let never_emitted: Vec<_> = on_dashboard.difference(&seen).collect();
    assert!(
        never_emitted.is_empty(),
        "on the dashboard, never emitted in the night: {never_emitted:?}"
    );
}
