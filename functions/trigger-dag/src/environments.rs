//! What a warm instance knows of each environment, so that in the steady state an arrival
//! costs one MWAA call (the InvokeRestApi that starts its run), not two.
//!
//! Two facts, each trusted for `trust` since it was last shown:
//! - the environment is up with a given Airflow major: shown by a GetEnvironment answering
//!   AVAILABLE, and again by every start Airflow answered (run started, or already there).
//!   Such an answer is Airflow's web server of that major recording the run in the metadata
//!   database, the very thing GetEnvironment would have been asked to predict; so arrivals
//!   that keep coming keep the status known, and GetEnvironment is asked again only after a
//!   quiet spell longer than `trust` or an answer that may show a change (see `deliver`).
//! - no pause has marked it (`pausing/<environment>`): shown only by listing the mark, never
//!   by Airflow (a pause marks an environment that still runs). It is listed again once it
//!   is `trust` old, so the pause's wait (`pausing_wait_seconds`) bounds a warm instance.
//!
//! Only AVAILABLE is remembered: any other answer decides a hold and is asked again next time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::airflow::AirflowMajor;
use common::Availability;

/// How long an answer is trusted when `ENVIRONMENT_CACHE_SECONDS` is not set.
pub const DEFAULT_TRUST: Duration = Duration::from_secs(30);

/// Where the time comes from (tests move it by hand).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// What an instance knows of one AVAILABLE environment, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub major: AirflowMajor,
    /// Last shown up (GetEnvironment AVAILABLE, or a start Airflow answered).
    pub up_at: Instant,
    /// Last listed without a pause's mark.
    pub unmarked_at: Instant,
}

/// What must be asked before starting a run in an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Up with this major and unmarked: start the run.
    Start(AirflowMajor),
    /// Up with this major, but the mark is `trust` old: list it again (S3), then start.
    ListMark(AirflowMajor),
    /// Nothing trusted: GetEnvironment, then the mark if AVAILABLE.
    Read,
}

/// The decision, given what is known, the trust and the time.
pub fn check(known: Option<&Known>, trust: Duration, now: Instant) -> Check {
    let fresh = |at: Instant| now.saturating_duration_since(at) < trust;
    match known {
        Some(k) if fresh(k.up_at) && fresh(k.unmarked_at) => Check::Start(k.major),
        Some(k) if fresh(k.up_at) => Check::ListMark(k.major),
        _ => Check::Read,
    }
}

pub struct KnownEnvironments {
    trust: Duration,
    clock: Clock,
    known: Mutex<HashMap<String, Known>>,
}

impl KnownEnvironments {
    /// `trust`: how long an answer stands; zero asks MWAA every time.
    pub fn new(trust: Duration) -> Self {
        Self::with_clock(trust, Arc::new(Instant::now))
    }

    pub fn with_clock(trust: Duration, clock: Clock) -> Self {
        KnownEnvironments {
            trust,
            clock,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to ask of `environment` before starting a run there.
    pub fn check(&self, environment: &str) -> Check {
        check(self.known().get(environment), self.trust, (self.clock)())
    }

    /// Keeps what GetEnvironment answered for an unmarked environment: AVAILABLE is
    /// remembered, anything else forgotten.
    pub fn learn(&self, environment: &str, availability: &Availability) {
        let now = (self.clock)();
        let mut known = self.known();
        match availability {
            Availability::Available(major) if !self.trust.is_zero() => {
                known.insert(
                    environment.to_owned(),
                    Known {
                        major: *major,
                        up_at: now,
                        unmarked_at: now,
                    },
                );
            }
            _ => {
                known.remove(environment);
            }
        }
    }

    /// The mark was listed again and is not there.
    pub fn unmarked(&self, environment: &str) {
        let now = (self.clock)();
        if let Some(k) = self.known().get_mut(environment) {
            k.unmarked_at = now;
        }
    }

    /// Airflow of `major` answered a start (run started or already there): still up.
    /// Never creates an entry, so the mark is always listed first.
    pub fn answered(&self, environment: &str, major: AirflowMajor) {
        let now = (self.clock)();
        if let Some(k) = self.known().get_mut(environment) {
            if k.major == major {
                k.up_at = now;
            }
        }
    }

    pub fn forget(&self, environment: &str) {
        self.known().remove(environment);
    }
}

impl Default for KnownEnvironments {
    fn default() -> Self {
        KnownEnvironments::new(DEFAULT_TRUST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::Status;

    const TRUST: Duration = Duration::from_secs(30);

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn each_fact_is_trusted_for_the_trust_since_it_was_last_shown() {
        let t0 = Instant::now();
        let k = Known {
            major: AirflowMajor::V3,
            up_at: at(t0, 0),
            unmarked_at: at(t0, 0),
        };
        assert_eq!(
            check(Some(&k), TRUST, at(t0, 29)),
            Check::Start(AirflowMajor::V3)
        );
        assert_eq!(
            check(Some(&k), TRUST, at(t0, 30)),
            Check::Read,
            "both stale"
        );
        let answered = Known {
            up_at: at(t0, 25),
            ..k
        };
        assert_eq!(
            check(Some(&answered), TRUST, at(t0, 30)),
            Check::ListMark(AirflowMajor::V3),
            "up (Airflow answered) but the mark is due"
        );
        let listed = Known {
            unmarked_at: at(t0, 30),
            ..answered
        };
        assert_eq!(
            check(Some(&listed), TRUST, at(t0, 54)),
            Check::Start(AirflowMajor::V3)
        );
        assert_eq!(
            check(Some(&listed), TRUST, at(t0, 55)),
            Check::Read,
            "quiet for 30 s"
        );
        assert_eq!(check(None, TRUST, t0), Check::Read);
        assert_eq!(
            check(Some(&k), Duration::ZERO, t0),
            Check::Read,
            "zero trust"
        );
    }

    /// A clock the test moves.
    fn manual() -> (Arc<Mutex<Instant>>, Clock) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (now, Arc::new(move || *read.lock().unwrap()))
    }

    #[test]
    fn only_available_answers_are_kept_and_answers_renew_only_their_major() {
        let (now, clock) = manual();
        let known = KnownEnvironments::with_clock(TRUST, clock);
        known.learn("a", &Availability::Available(AirflowMajor::V2));
        known.learn("b", &Availability::NotAvailable(Status::Updating));
        known.learn("c", &Availability::Missing);
        assert_eq!(known.check("a"), Check::Start(AirflowMajor::V2));
        assert_eq!(known.check("b"), Check::Read);
        assert_eq!(known.check("c"), Check::Read);
        known.answered("c", AirflowMajor::V2);
        assert_eq!(
            known.check("c"),
            Check::Read,
            "an answer alone is not an entry"
        );
        *now.lock().unwrap() += Duration::from_secs(20);
        known.answered("a", AirflowMajor::V3);
        *now.lock().unwrap() += Duration::from_secs(20);
        assert_eq!(
            known.check("a"),
            Check::Read,
            "another major's answer renews nothing"
        );
        known.learn("a", &Availability::Available(AirflowMajor::V2));
        known.learn("a", &Availability::NotAvailable(Status::Deleting));
        assert_eq!(known.check("a"), Check::Read, "a later answer replaces it");
        known.learn("a", &Availability::Available(AirflowMajor::V2));
        known.forget("a");
        assert_eq!(known.check("a"), Check::Read);
        let never = KnownEnvironments::new(Duration::ZERO);
        never.learn("a", &Availability::Available(AirflowMajor::V2));
        assert_eq!(never.check("a"), Check::Read, "zero trust asks every time");
    }
}
