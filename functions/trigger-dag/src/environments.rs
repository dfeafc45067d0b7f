//! What a warm instance knows of each environment: that it is AVAILABLE, and its Airflow
//! major, for a bounded time. So in the steady state an arrival costs one MWAA call (the
//! InvokeRestApi that starts its run), not two. Only AVAILABLE is remembered: any other
//! answer decides a hold and is asked again next time, and a failed start forgets the entry
//! so the environment is looked at before the arrival is held or failed (see `deliver`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::airflow::AirflowMajor;
use common::Availability;

/// How long an AVAILABLE answer is trusted when `ENVIRONMENT_CACHE_SECONDS` is not set.
pub const DEFAULT_TRUST: Duration = Duration::from_secs(30);

pub struct KnownEnvironments {
    trust: Duration,
    available: Mutex<HashMap<String, (AirflowMajor, Instant)>>,
}

impl KnownEnvironments {
    /// `trust`: how long an AVAILABLE answer stands; zero asks MWAA every time.
    pub fn new(trust: Duration) -> Self {
        KnownEnvironments {
            trust,
            available: Mutex::new(HashMap::new()),
        }
    }

    /// The Airflow major of `environment` if it was AVAILABLE less than `trust` ago.
    pub fn available(&self, environment: &str) -> Option<AirflowMajor> {
        let mut known = self.available.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(environment) {
            Some((major, at)) if at.elapsed() < self.trust => Some(*major),
            Some(_) => {
                known.remove(environment);
                None
            }
            None => None,
        }
    }

    /// Keeps what GetEnvironment answered: AVAILABLE is remembered, anything else forgotten.
    pub fn learn(&self, environment: &str, availability: &Availability) {
        let mut known = self.available.lock().unwrap_or_else(|e| e.into_inner());
        match availability {
            Availability::Available(major) if !self.trust.is_zero() => {
                known.insert(environment.to_owned(), (*major, Instant::now()));
            }
            _ => {
                known.remove(environment);
            }
        }
    }

    pub fn forget(&self, environment: &str) {
        let mut known = self.available.lock().unwrap_or_else(|e| e.into_inner());
        known.remove(environment);
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

    #[test]
    fn only_a_fresh_available_answer_is_known() {
        let known = KnownEnvironments::new(Duration::from_secs(60));
        known.learn("a", &Availability::Available(AirflowMajor::V3));
        known.learn("b", &Availability::NotAvailable(Status::Updating));
        known.learn("c", &Availability::Missing);
        assert_eq!(known.available("a"), Some(AirflowMajor::V3));
        assert_eq!(known.available("b"), None);
        assert_eq!(known.available("c"), None);
        known.learn("a", &Availability::NotAvailable(Status::Deleting));
        assert_eq!(known.available("a"), None, "a later answer replaces it");
        known.learn("a", &Availability::Available(AirflowMajor::V2));
        known.forget("a");
        assert_eq!(known.available("a"), None);
    }

    #[test]
    fn an_answer_older_than_the_trust_is_asked_again() {
        let known = KnownEnvironments::new(Duration::from_millis(20));
        known.learn("a", &Availability::Available(AirflowMajor::V2));
        assert!(known.available("a").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(known.available("a"), None);
        let never = KnownEnvironments::new(Duration::ZERO);
        never.learn("a", &Availability::Available(AirflowMajor::V2));
        assert_eq!(never.available("a"), None, "zero trust asks every time");
    }
}
