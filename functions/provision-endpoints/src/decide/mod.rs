//! The decisions, without I/O:
//! - here: what a status change asks for (PENDING: provision, DELETED: clean up, else nothing);
//! - [`endpoints`]: which endpoints an environment needs, and which of ours clean-up deletes;
//! - [`policy`]: how the VPC's SQS endpoint policy widens and narrows by the Celery queue.

pub mod endpoints;
pub mod policy;

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

pub fn step(change: &StatusChange) -> Step {
    match &change.status {
        Status::Pending => Step::Provision,
        Status::Deleted => Step::CleanUp,
        other => Step::Ignore(format!("nothing to do for status {other}")),
    }
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
            status: Status::parse(status),
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
}
