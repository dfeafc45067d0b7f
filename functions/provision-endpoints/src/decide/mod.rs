//! The decisions, without I/O:
//! - here: what a status asks for (PENDING: provision, DELETED or gone: clean up, else
//!   nothing), and whether an environment is this deployment's at all;
//! - [`endpoints`]: which endpoints an environment needs, and which of ours clean-up deletes;
//! - [`policy`]: how the VPC's SQS endpoint policy widens and narrows by the Celery queue;
//! - [`reconcile`]: which environments a lost DELETED event left endpoints behind for.

pub mod endpoints;
pub mod policy;
pub mod reconcile;

pub use endpoints::*;
pub use policy::*;

use common::Status;

use crate::event::StatusChange;

/// What a status change asks this function to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Provision,
    CleanUp,
    Ignore(String),
}

/// What `status` asks for. An environment GetEnvironment does not know is gone: its
/// endpoints are cleaned up as after DELETED (the sparse event says no more).
pub fn step(status: &Status) -> Step {
    match status {
        Status::Pending => Step::Provision,
        Status::Deleted | Status::NotFound => Step::CleanUp,
        other => Step::Ignore(format!("nothing to do for status {other}")),
    }
}

/// Why an environment is not this deployment's business (its name lacks the stack's
/// `EnvironmentNamePrefix`): the rule matches every MWAA status change of the account,
/// since the documented event carries no name to filter on.
pub fn not_ours(change: &StatusChange, prefix: &str) -> Option<String> {
    (!change.name.as_str().starts_with(prefix)).then(|| {
        format!(
            "{} is outside this deployment's environments (prefix {prefix:?})",
            change.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::EnvironmentName;

    fn change(status: &str) -> StatusChange {
        StatusChange {
            event_id: "ev-1".into(),
            name: EnvironmentName::new("analytics").unwrap(),
            arn: None,
            account: None,
            status: Some(Status::parse(status)),
            celery_queue: None,
            subnets: vec![],
        }
    }

    #[test]
    fn pending_provisions_deleted_cleans_up_the_rest_is_ignored() {
        let status = |s| change(s).status.unwrap();
        assert_eq!(step(&status("PENDING")), Step::Provision);
        assert_eq!(step(&status("DELETED")), Step::CleanUp);
        assert!(matches!(step(&status("AVAILABLE")), Step::Ignore(_)));
    }

    #[test]
    fn an_environment_mwaa_no_longer_knows_is_cleaned_up() {
        assert_eq!(step(&Status::NotFound), Step::CleanUp);
        for ignored in ["CREATING", "DELETING", "UPDATE_FAILED", "SOMETHING_NEW"] {
            assert!(
                matches!(step(&Status::parse(ignored)), Step::Ignore(r) if r.contains(ignored)),
                "{ignored}"
            );
        }
    }

    #[test]
    fn only_environments_with_the_prefix_are_ours() {
        assert_eq!(not_ours(&change("PENDING"), "analytics"), None);
        assert_eq!(not_ours(&change("PENDING"), ""), None);
        let why = not_ours(&change("PENDING"), "prod-").unwrap();
        assert!(
            why.contains("analytics") && why.contains("\"prod-\""),
            "{why}"
        );
    }
}
