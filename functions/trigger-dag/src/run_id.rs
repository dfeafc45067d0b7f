//! DAG run ids derived from what was delivered, so every redelivery names the same run and
//! Airflow answers 409 instead of starting a second one.
//!
//! Airflow allows run ids of up to 250 characters matching `^[A-Za-z0-9_.~:+-]+$`
//! (`[scheduler] allowed_run_id_pattern`). We use the safer `[A-Za-z0-9_.-]` (no URL
//! escaping needed in REST paths): a readable part for people, then a hash that carries
//! the identity, so long or non-ASCII keys still give short, distinct ids.

use sha2::{Digest, Sha256};

/// Longest readable part kept in an id.
const READABLE_MAX: usize = 64;
/// Hex digits of SHA-256 kept (96 bits).
const HASH_HEX: usize = 24;

/// The run id of one object version: bucket, key, and version id (versioned buckets) or
/// sequencer (unique per write of a key) — whichever S3 gave.
pub fn arrival_run_id(bucket: &str, key: &str, version: &str) -> String {
    let file = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or(key);
    format!(
        "s3__{}__{}",
        readable(file),
        digest(&[bucket, key, version])
    )
}

/// The run id of one firing of a schedule: environment, DAG and the scheduled time.
pub fn schedule_run_id(environment: &str, dag: &str, scheduled_time: &str) -> String {
    format!(
        "schedule__{}__{}",
        readable(scheduled_time),
        digest(&[environment, dag, scheduled_time])
    )
}

/// The MWAA Serverless `ClientToken` of one object version started by one route on one
/// workflow: `s3-` and the SHA-256 (64 hex digits) of bucket, key, version id or sequencer,
/// workflow ARN and route name. A redelivery gives the same token, hence the same run; two
/// routes to one workflow are two runs. 67 characters of `[0-9a-z-]`, within the model's
/// `IdempotencyTokenString` (1..128 characters of `[\x21-\x7E]`).
pub fn arrival_client_token(
    bucket: &str,
    key: &str,
    version: &str,
    workflow_arn: &str,
    route: &str,
) -> String {
    format!(
        "s3-{}",
        sha256_hex(&[bucket, key, version, workflow_arn, route])
    )
}

/// The MWAA Serverless `ClientToken` of one firing of a schedule naming a workflow:
/// `schedule-` and the SHA-256 of workflow ARN, scheduled time and the run's parameters
/// (as JSON). A retried invocation carries the same input, hence the same token and run.
/// The parameters are in it because MWAA Serverless refuses a token reused with other
/// parameters (`ConflictException`) where Airflow would quietly answer 409: two schedules
/// starting one workflow at the same time with different conf are two runs, not a refusal.
/// 73 characters of `[0-9a-z-]`, within `IdempotencyTokenString`.
pub fn schedule_client_token(
    workflow_arn: &str,
    scheduled_time: &str,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let parameters = serde_json::Value::Object(parameters.clone()).to_string();
    format!(
        "schedule-{}",
        sha256_hex(&[workflow_arn, scheduled_time, &parameters])
    )
}

fn readable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(READABLE_MAX)
        .collect()
}

fn digest(parts: &[&str]) -> String {
    sha256_hex(parts)[..HASH_HEX].to_owned()
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn within_airflow_rules(id: &str) -> bool {
        id.len() <= 250
            && !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    }

    proptest! {
        #[test]
        fn ids_are_deterministic_and_within_airflow_rules(
            bucket in "[a-z0-9.-]{3,63}", key in "\\PC{1,1024}", version in "[A-Za-z0-9._]{0,40}",
        ) {
            let id = arrival_run_id(&bucket, &key, &version);
            prop_assert_eq!(&id, &arrival_run_id(&bucket, &key, &version));
            prop_assert!(within_airflow_rules(&id), "{}", id);
        }

        #[test]
        fn distinct_versions_give_distinct_ids(
            key in "\\PC{1,300}", v1 in "[A-Za-z0-9]{1,32}", v2 in "[A-Za-z0-9]{1,32}",
        ) {
            prop_assume!(v1 != v2);
            prop_assert_ne!(arrival_run_id("b-1", &key, &v1), arrival_run_id("b-1", &key, &v2));
        }

        #[test]
        fn client_tokens_fit_the_idempotency_token_string_and_follow_the_version(
            key in "\\PC{1,1024}", v1 in "[A-Za-z0-9]{1,32}", v2 in "[A-Za-z0-9]{1,32}",
        ) {
            let arn = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-abcdef0123";
            let token = arrival_client_token("b-1", &key, &v1, arn, "r");
            prop_assert_eq!(&token, &arrival_client_token("b-1", &key, &v1, arn, "r"));
            prop_assert!((1..=128).contains(&token.len()), "{}", token);
            prop_assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{}", token);
            prop_assume!(v1 != v2);
            prop_assert_ne!(token.clone(), arrival_client_token("b-1", &key, &v2, arn, "r"));
            prop_assert_ne!(token, arrival_client_token("b-1", &key, &v1, arn, "other-route"));
        }

        #[test]
        fn schedule_client_tokens_fit_the_idempotency_token_string(
            time in "\\PC{0,64}", value in "\\PC{0,200}",
        ) {
            let arn = "arn:aws:airflow-serverless:us-east-1:123456789012:workflow/etl-abcdef0123";
            let mut parameters = serde_json::Map::new();
            parameters.insert("scheduled_time".into(), time.clone().into());
            parameters.insert("x".into(), value.into());
            let token = schedule_client_token(arn, &time, &parameters);
            prop_assert_eq!(&token, &schedule_client_token(arn, &time, &parameters.clone()));
            prop_assert!((1..=128).contains(&token.len()), "{}", token);
            prop_assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{}", token);
        }

        #[test]
        fn schedule_ids_are_within_airflow_rules(env in "[a-zA-Z][a-zA-Z0-9_-]{0,79}", time in "\\PC{0,64}") {
            prop_assert!(within_airflow_rules(&schedule_run_id(&env, "dag", &time)));
        }
    }

    #[test]
    fn hard_keys_work() {
        for key in [
            "a b+c%20.csv",
            "données/été ☀.csv",
            &"k/".repeat(512),
            "/",
            "+",
            "%",
        ] {
            assert!(
                within_airflow_rules(&arrival_run_id("bucket", key, "seq1")),
                "{key}"
            );
        }
        assert_ne!(
            arrival_run_id("b", "a+b", "1"),
            arrival_run_id("b", "a b", "1")
        );
        assert_ne!(
            arrival_run_id("ab", "c", "1"),
            arrival_run_id("a", "bc", "1")
        );
    }

    #[test]
    fn the_readable_part_is_the_file_name() {
        let id = arrival_run_id("landing", "orders/2026/11/orders 1.csv", "v1");
        assert!(id.starts_with("s3__orders_1.csv__"), "{id}");
        let id = schedule_run_id("dev", "daily", "2026-11-21T06:00:00Z");
        assert!(id.starts_with("schedule__2026-11-21T06_00_00Z__"), "{id}");
    }
}
