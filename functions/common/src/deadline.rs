//! One time budget per invocation. Every retry loop of an invocation counts down the same
//! [`Deadline`], so retries in sequence can never add up past the time Lambda gives.

use std::time::{Duration, Instant, SystemTime};

/// The moment an invocation's work must be over (Lambda's deadline less a margin kept for
/// reporting the result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// Lambda's deadline for `context`, less `margin`.
    pub fn of_invocation(context: &lambda_runtime::Context, margin: Duration) -> Self {
        let left = context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(margin);
        Self::after(left)
    }

    /// The time left (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }

    /// This deadline, or `budget` from now if that comes sooner: a part of the work that
    /// must leave time for the rest.
    pub fn at_most(&self, budget: Duration) -> Self {
        (*self).min(Self::after(budget))
    }

    /// Whether `wait` from now still ends before the deadline.
    pub fn allows(&self, wait: Duration) -> bool {
        Instant::now() + wait < self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_of_the_budget_never_outlives_the_whole() {
        let whole = Deadline::after(Duration::from_secs(10));
        assert!(whole.at_most(Duration::from_secs(60)) == whole);
        let part = whole.at_most(Duration::from_secs(1));
        assert!(part < whole);
        assert!(part.remaining() <= Duration::from_secs(1));
        assert!(whole.allows(Duration::from_secs(5)));
        assert!(!whole.allows(Duration::from_secs(11)));
    }

    #[test]
    fn a_passed_deadline_leaves_nothing() {
        let gone = Deadline::after(Duration::ZERO);
        assert!(gone.passed());
        assert_eq!(gone.remaining(), Duration::ZERO);
    }

    #[test]
    fn the_invocations_deadline_keeps_the_margin() {
        let mut context = lambda_runtime::Context::default();
        let in_ten = SystemTime::now() + Duration::from_secs(10);
        context.deadline = in_ten
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = Deadline::of_invocation(&context, Duration::from_secs(3));
        let left = deadline.remaining();
        assert!(
            left <= Duration::from_secs(7) && left > Duration::from_secs(6),
            "{left:?}"
        );
    }
}
