//! The reconciler: MWAA delivers status changes best effort, so a schedule
//! (`ReconcileMinutes`) hands the function `{"reconcile": {}}` and it looks for itself. Every
//! environment with the prefix, in the owner's and each participant's account, goes through
//! the same `step` as an event (PENDING: provision, idempotently); every endpoint this suite
//! made for an environment its account no longer lists is cleaned up as after DELETED. The
//! function's reserved concurrency of 1 keeps a run and an event from interleaving.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::retry::with_retries;
use common::{Deadline, EnvironmentName, Error, ErrorKind, Status};

use crate::decide::reconcile::{orphans, Listing};
use crate::decide::{step, Step};
use crate::environments::Environments;
use crate::event::StatusChange;
use crate::ops::Ops;
use crate::ProvisionEndpoints;

/// Whether the invocation is the reconciler's schedule rather than an event.
pub fn is_reconcile(event: &Value) -> bool {
    event.get("reconcile").is_some() && event.get("detail-type").is_none()
}

/// The event id the reconciler's work is reported under.
const RECONCILER: &str = "reconciler";

fn change(
    account: &str,
    name: EnvironmentName,
    arn: Option<String>,
    status: Status,
) -> StatusChange {
    StatusChange {
        event_id: RECONCILER.into(),
        name,
        arn,
        account: Some(account.to_owned()),
        status: Some(status),
        celery_queue: None,
        subnets: vec![],
    }
}

/// Whether a provisioning report changed anything (an endpoint or the SQS policy).
fn changed(report: &Value) -> bool {
    report["created"].as_array().is_some_and(|c| !c.is_empty())
        || report["sqs_endpoints"]
            .as_array()
            .is_some_and(|p| p.iter().any(|e| e["policy"] == "queue added"))
}

/// The endpoints' lines of an environment the run looked after, as an event's would be:
/// what the run created or deleted for it, 0 for the rest (the run only lists environments
/// with the prefix, and orphans it made itself).
fn count(environment: &str, report: &Value) {
    let counted = |key: &str| report[key].as_array().map_or(0, Vec::len) as f64;
    common::metrics::emit(
        "provision-endpoints",
        environment,
        &[
            (common::metrics::ENDPOINTS_CREATED, counted("created")),
            (common::metrics::ENDPOINTS_DELETED, counted("deleted")),
        ],
    );
}

impl<O: Ops + Environments> ProvisionEndpoints<O> {
    /// One reconciliation run. Fails (so the schedule's failure reaches the alerts) when an
    /// account or an environment could not be handled, after doing everything else.
    pub async fn reconcile(&self, deadline: Deadline) -> Result<Value, Error> {
        let ops = &self.ops;
        let mut fixed = vec![];
        let mut problems = vec![];
        let mut listings = vec![];
        let mut checked = 0;
        for reader in self.accounts.all() {
            let account = reader.account().to_owned();
            let names = match with_retries(deadline, || ops.environment_names(&reader)).await {
                Ok(names) => names,
                Err(err) => {
                    problems.push(json!({"account": account, "error": err.to_string()}));
                    listings.push(Listing {
                        account,
                        names: None,
                    });
                    continue;
                }
            };
            for name in names
                .iter()
                .filter(|n| n.starts_with(&self.environment_prefix))
            {
                let Ok(valid) = EnvironmentName::new(name) else {
                    continue;
                };
                checked += 1;
                let env = match with_retries(deadline, || ops.environment(&reader, name)).await {
                    Ok(Some(env)) => env,
                    // Gone since the listing: the next run finds its endpoints orphaned.
                    Ok(None) => continue,
                    Err(err) => {
                        problems.push(json!({"account": account, "environment": name,
                            "error": err.to_string()}));
                        continue;
                    }
                };
                if step(&env.status) != Step::Provision {
                    count(name, &json!({}));
                    continue;
                }
                let pending = change(&account, valid, env.arn.clone(), env.status.clone());
                match self
                    .provision(&reader, &pending, Some(Some(env)), deadline)
                    .await
                {
                    Ok(report) => {
                        count(name, &report);
                        if changed(&report) {
                            fixed.push(json!({"account": account, "environment": name,
                                "fix": "provisioned", "report": report}));
                        }
                    }
                    Err(err) => problems.push(json!({"account": account, "environment": name,
                        "error": err.to_string()})),
                }
            }
            listings.push(Listing {
                account,
                names: Some(names.into_iter().collect::<BTreeSet<_>>()),
            });
        }

        let ours = with_retries(deadline, || ops.managed_endpoints(None)).await?;
        for orphan in orphans(
            &listings,
            &ours,
            &self.accounts.owner,
            &self.environment_prefix,
        ) {
            let Ok(name) = EnvironmentName::new(&orphan.name) else {
                continue;
            };
            // The account no longer knows it: what an event would say once it is gone.
            if step(&Status::NotFound) != Step::CleanUp {
                continue;
            }
            let gone = change(&orphan.account, name, orphan.arn.clone(), Status::NotFound);
            match self.clean_up(&gone, deadline).await {
                Ok(report) => {
                    count(&orphan.name, &report);
                    fixed.push(json!({"account": orphan.account,
                        "environment": orphan.name, "fix": "cleaned_up", "report": report}))
                }
                Err(err) => problems.push(json!({"account": orphan.account,
                    "environment": orphan.name, "error": err.to_string()})),
            }
        }

        let report = json!({
            "action": "reconciled",
            "accounts": listings.iter().map(|l| json!({"account": l.account,
                "read": l.names.is_some()})).collect::<Vec<_>>(),
            "environments_checked": checked,
            "fixed": fixed,
            "problems": problems,
        });
        if problems.is_empty() {
            tracing::info!(report = %report, fixed = fixed.len(), "reconciled");
            Ok(report)
        } else {
            tracing::error!(report = %report, "reconciliation left problems");
            Err(Error::new(
                ErrorKind::OperationFailed,
                format!(
                    "reconciliation fixed {} environment(s) but could not handle {}: {}",
                    fixed.len(),
                    problems.len(),
                    problems
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ))
        }
    }
}
