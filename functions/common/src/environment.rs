//! The MWAA vocabulary the functions share: an environment's name (checked once, with one
//! message), its status (what the functions ask of it), whether it can run DAGs now, and the
//! events MWAA and the suite put on the bus.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::airflow::AirflowMajor;
use crate::Error;

/// Source and detail-type of MWAA's status-change events (AWS documents only these two and
/// best-effort delivery: every detail field is optional).
pub const MWAA_SOURCE: &str = "aws.airflow";
pub const MWAA_STATUS_CHANGE: &str = "MWAA Environment Status Change";
/// Source of the events the suite puts on the default bus.
pub const SUITE_SOURCE: &str = "mwaa-ops";

/// What MWAA's name rule says, for people reading a refusal.
pub const NAME_RULE: &str = "a letter, then letters, digits, - or _; at most 80";

/// An MWAA environment name that MWAA's rule accepts. Deserializing checks it, so a bad name
/// in an event or a step input is refused once, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// Checks `name` against MWAA's rule.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(EnvironmentName(name))
        } else {
            Err(format!(
                "{name:?} is not an MWAA environment name ({NAME_RULE})"
            ))
        }
    }

    /// Checks a name taken from `field` of event `event_id`.
    pub fn parse(event_id: &str, field: &str, name: &str) -> Result<Self, Error> {
        Self::new(name).map_err(|reason| Error::invalid_event(event_id, field, reason))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnvironmentName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        Self::new(name)
    }
}

impl From<EnvironmentName> for String {
    fn from(name: EnvironmentName) -> String {
        name.0
    }
}

impl AsRef<str> for EnvironmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for EnvironmentName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for EnvironmentName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EnvironmentName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// MWAA's environment name rule: a letter, then letters, digits, `-` or `_`; 1 to 80.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 80
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An environment's status as MWAA reports it, plus `NotFound` when MWAA does not know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Creating,
    CreateFailed,
    Available,
    Updating,
    Deleting,
    Deleted,
    Unavailable,
    UpdateFailed,
    RollingBack,
    CreatingSnapshot,
    Pending,
    Maintenance,
    /// MWAA does not know the environment (deleted and forgotten, or never created).
    NotFound,
    /// A status this build does not know yet (MWAA adds them).
    Other(String),
}

impl Status {
    /// Reads MWAA's status string ("AVAILABLE"); `NOT_FOUND` is the suite's own.
    pub fn parse(status: &str) -> Self {
        match status {
            "CREATING" => Status::Creating,
            "CREATE_FAILED" => Status::CreateFailed,
            "AVAILABLE" => Status::Available,
            "UPDATING" => Status::Updating,
            "DELETING" => Status::Deleting,
            "DELETED" => Status::Deleted,
            "UNAVAILABLE" => Status::Unavailable,
            "UPDATE_FAILED" => Status::UpdateFailed,
            "ROLLING_BACK" => Status::RollingBack,
            "CREATING_SNAPSHOT" => Status::CreatingSnapshot,
            "PENDING" => Status::Pending,
            "MAINTENANCE" => Status::Maintenance,
            "NOT_FOUND" => Status::NotFound,
            other => Status::Other(other.to_owned()),
        }
    }

    /// The status of an environment as GetEnvironment answered (`None`: not found).
    pub fn of(environment: Option<&aws_sdk_mwaa::types::Environment>) -> Self {
        match environment {
            None => Status::NotFound,
            Some(env) => Status::parse(env.status().map(|s| s.as_str()).unwrap_or_default()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Creating => "CREATING",
            Status::CreateFailed => "CREATE_FAILED",
            Status::Available => "AVAILABLE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
            Status::Deleted => "DELETED",
            Status::Unavailable => "UNAVAILABLE",
            Status::UpdateFailed => "UPDATE_FAILED",
            Status::RollingBack => "ROLLING_BACK",
            Status::CreatingSnapshot => "CREATING_SNAPSHOT",
            Status::Pending => "PENDING",
            Status::Maintenance => "MAINTENANCE",
            Status::NotFound => "NOT_FOUND",
            Status::Other(other) => other,
        }
    }

    /// It can run DAGs and answer REST calls now.
    pub fn is_available(&self) -> bool {
        *self == Status::Available
    }

    /// It failed and needs a person (or a new create).
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            Status::CreateFailed | Status::UpdateFailed | Status::Unavailable
        )
    }

    /// It is gone or going: nothing will run there again.
    pub fn is_gone(&self) -> bool {
        matches!(self, Status::Deleting | Status::Deleted | Status::NotFound)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an environment can run a DAG now, and on which Airflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// AVAILABLE, running this Airflow major.
    Available(AirflowMajor),
    /// Exists but cannot run DAGs now (paused for the night, updating, failed).
    NotAvailable(Status),
    /// MWAA does not know it.
    Missing,
}

impl Availability {
    /// Reads a GetEnvironment answer (`None`: not found). An AVAILABLE environment whose
    /// Airflow version this build cannot read is an error: no request shape fits it.
    pub fn of(
        name: &str,
        environment: Option<&aws_sdk_mwaa::types::Environment>,
    ) -> Result<Self, Error> {
        let Some(env) = environment else {
            return Ok(Availability::Missing);
        };
        let status = Status::of(Some(env));
        if !status.is_available() {
            return Ok(Availability::NotAvailable(status));
        }
        let version = env.airflow_version().unwrap_or_default();
        AirflowMajor::from_version(version)
            .map(Availability::Available)
            .ok_or_else(|| Error::InvalidRequest {
                environment: name.to_owned(),
                reason: format!("unsupported Airflow version {version:?}"),
            })
    }

    /// The status, as people read it.
    pub fn status(&self) -> Status {
        match self {
            Availability::Available(_) => Status::Available,
            Availability::NotAvailable(status) => status.clone(),
            Availability::Missing => Status::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_mwaa::types::{Environment, EnvironmentStatus};
    use serde_json::json;

    #[test]
    fn mwaa_environment_names_follow_its_rule() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("dev-analytics_2"));
        assert!(!is_valid_name("2dev"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(81)));
        assert!(is_valid_name(&"a".repeat(80)));
        assert!(!is_valid_name("dev/x"));
        assert!(!is_valid_name("dots.are.not.allowed"));
    }

    #[test]
    fn a_bad_name_in_an_event_names_the_field_and_the_event() {
        #[derive(Debug, Deserialize)]
        struct Input {
            #[allow(dead_code)]
            environment: EnvironmentName,
        }
        let event = json!({"id": "ev-9", "environment": "../x"});
        let err = crate::event::parse::<Input>("ev-9", &event).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ev-9") && text.contains("`environment`"),
            "{text}"
        );
        assert!(text.contains("not an MWAA environment name"), "{text}");
        let good: Input = crate::event::parse("ev", &json!({"environment": "dev"})).unwrap();
        assert_eq!(good.environment, "dev");
        let err = EnvironmentName::parse("ev-1", "detail.name", "2x").unwrap_err();
        assert!(err.to_string().contains("detail.name"), "{err}");
    }

    #[test]
    fn statuses_round_trip_and_say_what_they_mean() {
        for text in [
            "CREATING",
            "CREATE_FAILED",
            "AVAILABLE",
            "UPDATING",
            "DELETING",
            "DELETED",
            "UNAVAILABLE",
            "UPDATE_FAILED",
            "ROLLING_BACK",
            "CREATING_SNAPSHOT",
            "PENDING",
            "MAINTENANCE",
            "NOT_FOUND",
            "SOMETHING_NEW",
        ] {
            assert_eq!(Status::parse(text).as_str(), text);
        }
        assert!(Status::parse("AVAILABLE").is_available());
        assert!(Status::parse("UPDATE_FAILED").is_failed());
        assert!(!Status::parse("ROLLING_BACK").is_failed());
        assert!(Status::NotFound.is_gone() && Status::Deleting.is_gone());
        assert!(!Status::Pending.is_gone());
        assert_eq!(Status::of(None), Status::NotFound);
    }

    #[test]
    fn availability_reads_status_and_major() {
        let env = |status, version: &str| {
            Environment::builder()
                .name("e")
                .status(status)
                .airflow_version(version)
                .build()
        };
        let up = env(EnvironmentStatus::Available, "3.0.6");
        assert_eq!(
            Availability::of("e", Some(&up)).unwrap(),
            Availability::Available(AirflowMajor::V3)
        );
        let busy = env(EnvironmentStatus::Updating, "2.10.3");
        assert_eq!(
            Availability::of("e", Some(&busy)).unwrap(),
            Availability::NotAvailable(Status::Updating)
        );
        assert_eq!(Availability::of("e", None).unwrap(), Availability::Missing);
        assert_eq!(Availability::Missing.status(), Status::NotFound);
        let odd = env(EnvironmentStatus::Available, "1.10.12");
        let err = Availability::of("e", Some(&odd)).unwrap_err();
        assert!(err.to_string().contains("1.10.12"), "{err}");
    }
}
