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
//!
//! Times are the wall clock, each taken when its question was sent (an answer can only show
//! what held then): Lambda freezes an idle instance, and nothing says a monotonic clock runs
//! meanwhile. A wall clock set back past a fact's time makes it stale (asked again); a smaller
//! step back stretches its trust by that step (an NTP correction: milliseconds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::airflow::AirflowMajor;
use common::Availability;

/// How long an answer is trusted when `ENVIRONMENT_CACHE_SECONDS` is not set.
pub const DEFAULT_TRUST: Duration = Duration::from_secs(30);

/// Where the time comes from (tests move it by hand).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What an instance knows of one AVAILABLE environment, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub major: AirflowMajor,
    /// When the question last showing it up was sent (GetEnvironment AVAILABLE, or a start
    /// Airflow answered).
    pub up_at: SystemTime,
    /// When the listing last showing no pause's mark was sent.
    pub unmarked_at: SystemTime,
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
pub fn check(known: Option<&Known>, trust: Duration, now: SystemTime) -> Check {
    // A time after now (the wall clock set back) is no proof of anything.
    let fresh = |at: SystemTime| now.duration_since(at).is_ok_and(|age| age < trust);
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
        Self::with_clock(trust, Arc::new(SystemTime::now))
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

    /// The time to stamp on a question about to be sent.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// What to ask of `environment` before starting a run there.
    pub fn check(&self, environment: &str) -> Check {
        check(self.known().get(environment), self.trust, (self.clock)())
    }

    /// Keeps what GetEnvironment, asked at `asked_at`, answered for an unmarked environment
    /// (listed at `listed_at`): AVAILABLE is remembered, anything else forgotten.
    pub fn learn(
        &self,
        environment: &str,
        availability: &Availability,
        asked_at: SystemTime,
        listed_at: SystemTime,
    ) {
        let mut known = self.known();
        match availability {
            Availability::Available(major) if !self.trust.is_zero() => {
                known.insert(
                    environment.to_owned(),
                    Known {
                        major: *major,
                        up_at: asked_at,
                        unmarked_at: listed_at,
                    },
                );
            }
            _ => {
                known.remove(environment);
            }
        }
    }

    /// The mark, listed at `listed_at`, was not there.
    pub fn unmarked(&self, environment: &str, listed_at: SystemTime) {
        if let Some(k) = self.known().get_mut(environment) {
            k.unmarked_at = k.unmarked_at.max(listed_at);
        }
    }

    /// Airflow of `major` answered a start sent at `asked_at` (run started or already
    /// there): still up. Never creates an entry, so the mark is always listed first.
    pub fn answered(&self, environment: &str, major: AirflowMajor, asked_at: SystemTime) {
        if let Some(k) = self.known().get_mut(environment) {
            if k.major == major {
                k.up_at = k.up_at.max(asked_at);
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

    fn at(start: SystemTime, seconds: u64) -> SystemTime {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn each_fact_is_trusted_for_the_trust_since_it_was_last_shown() {
        let t0 = SystemTime::now();
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
    fn manual() -> (Arc<Mutex<SystemTime>>, Clock) {
        let now = Arc::new(Mutex::new(SystemTime::now()));
        let read = now.clone();
        (now, Arc::new(move || *read.lock().unwrap()))
    }

    #[test]
    fn only_available_answers_are_kept_and_answers_renew_only_their_major() {
        let (now, clock) = manual();
        let known = KnownEnvironments::with_clock(TRUST, clock);
        learn_now(&known, "a", &Availability::Available(AirflowMajor::V2));
        learn_now(&known, "b", &Availability::NotAvailable(Status::Updating));
        known.learn("c", &Availability::Missing, at_now(&known), at_now(&known));
        assert_eq!(known.check("a"), Check::Start(AirflowMajor::V2));
        assert_eq!(known.check("b"), Check::Read);
        assert_eq!(known.check("c"), Check::Read);
        known.answered("c", AirflowMajor::V2, at_now(&known));
        assert_eq!(
            known.check("c"),
            Check::Read,
            "an answer alone is not an entry"
        );
        *now.lock().unwrap() += Duration::from_secs(20);
        known.answered("a", AirflowMajor::V3, at_now(&known));
        *now.lock().unwrap() += Duration::from_secs(20);
        assert_eq!(
            known.check("a"),
            Check::Read,
            "another major's answer renews nothing"
        );
        learn_now(&known, "a", &Availability::Available(AirflowMajor::V2));
        learn_now(&known, "a", &Availability::NotAvailable(Status::Deleting));
        assert_eq!(known.check("a"), Check::Read, "a later answer replaces it");
        learn_now(&known, "a", &Availability::Available(AirflowMajor::V2));
        known.forget("a");
        assert_eq!(known.check("a"), Check::Read);
        let never = KnownEnvironments::new(Duration::ZERO);
        learn_now(&never, "a", &Availability::Available(AirflowMajor::V2));
        assert_eq!(never.check("a"), Check::Read, "zero trust asks every time");
    }

    #[test]
    fn a_fact_counts_from_when_its_question_was_sent_and_a_clock_set_back_trusts_nothing() {
        let (now, clock) = manual();
        let wait = |seconds| *now.lock().unwrap() += Duration::from_secs(seconds);
        let known = KnownEnvironments::with_clock(TRUST, clock);
        let asked = at_now(&known);
        wait(10);
        let listed = at_now(&known);
        // The answers took 15 s to come: they show the environment as it was when asked.
        wait(5);
        known.learn(
            "a",
            &Availability::Available(AirflowMajor::V2),
            asked,
            listed,
        );
        wait(14);
        assert_eq!(known.check("a"), Check::Start(AirflowMajor::V2));
        wait(1);
        assert_eq!(
            known.check("a"),
            Check::Read,
            "30 s since GetEnvironment was asked (15 s since it answered)"
        );
        known.answered("a", AirflowMajor::V2, at_now(&known));
        assert_eq!(known.check("a"), Check::Start(AirflowMajor::V2));
        wait(10);
        assert_eq!(
            known.check("a"),
            Check::ListMark(AirflowMajor::V2),
            "30 s since the mark was listed"
        );
        // A listing sent before the one known proves no more than it.
        known.unmarked("a", asked);
        assert_eq!(known.check("a"), Check::ListMark(AirflowMajor::V2));
        known.unmarked("a", at_now(&known));
        assert_eq!(known.check("a"), Check::Start(AirflowMajor::V2));
        // The wall clock set back by a minute: nothing known is proof any more.
        *now.lock().unwrap() -= Duration::from_secs(60);
        assert_eq!(known.check("a"), Check::Read);
    }

    fn at_now(known: &KnownEnvironments) -> SystemTime {
        known.now()
    }

    /// GetEnvironment and the mark's listing, both asked now.
    fn learn_now(known: &KnownEnvironments, environment: &str, availability: &Availability) {
        known.learn(environment, availability, known.now(), known.now());
    }
}
