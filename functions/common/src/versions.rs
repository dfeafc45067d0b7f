//! The Airflow versions MWAA accepts and the suite supports. The list lives in
//! `airflow-versions.json` (next to this crate's Cargo.toml), which the bed's MWAA control
//! plane, `scripts/install`, `scripts/metadata-matrix` and the docs' tests read too: one list,
//! embedded here at build time.

use std::sync::OnceLock;

use serde::Deserialize;

const LIST: &str = include_str!("../airflow-versions.json");

#[derive(Debug, Deserialize)]
struct List {
    default: String,
    versions: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    version: String,
}

fn list() -> &'static List {
    static PARSED: OnceLock<List> = OnceLock::new();
    // The file is part of the source: a malformed one fails this crate's tests, never Lambda.
    PARSED.get_or_init(|| serde_json::from_str(LIST).expect("airflow-versions.json is valid"))
}

/// Every Airflow version the suite supports, oldest first ("2.7.2", ..., "3.2.1").
pub fn supported() -> impl Iterator<Item = &'static str> {
    list().versions.iter().map(|v| v.version.as_str())
}

/// Whether the suite knows how to pause and resume an environment on `version`.
pub fn is_supported(version: &str) -> bool {
    supported().any(|v| v == version)
}

/// The version MWAA gives an environment created without one (the newest).
pub fn default_version() -> &'static str {
    &list().default
}

/// "2.7.2, 2.8.1, ..." for messages.
pub fn listed() -> String {
    supported().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airflow::AirflowMajor;

    fn key(version: &str) -> Vec<u32> {
        version.split('.').map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn the_list_is_ordered_unique_and_every_version_has_a_known_major() {
        let versions: Vec<_> = supported().collect();
        assert!(versions.len() >= 8, "{versions:?}");
        for pair in versions.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{pair:?} out of order");
        }
        for v in &versions {
            assert!(AirflowMajor::from_version(v).is_some(), "{v}");
        }
        assert_eq!(default_version(), *versions.last().unwrap());
    }

    #[test]
    fn mwaa_s_current_versions_are_supported_and_others_are_not() {
        for v in ["2.7.2", "2.10.3", "2.11.0", "3.0.6", "3.2.1"] {
            assert!(is_supported(v), "{v}");
        }
        for v in ["3.1.6", "3.3.1", "2.6.3", "", "3.2"] {
            assert!(!is_supported(v), "{v}");
        }
        assert!(listed().starts_with("2.7.2, 2.8.1"), "{}", listed());
    }
}
