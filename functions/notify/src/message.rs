//! The email: a subject under SNS's 100 characters, a plain-text body a person reads in ten
//! seconds, and JSON in a message attribute for machines. Secrets never get in.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// SNS refuses longer subjects.
pub const MAX_SUBJECT: usize = 100;
/// Original events are trimmed to this many characters in the body.
pub const MAX_EVENT_TEXT: usize = 1500;
/// Error causes and messages are trimmed to this many characters.
pub const MAX_CAUSE: usize = 600;

const REDACTED: &str = "***";

/// One alert, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What kind of failure: `execution-failed`, `environment-failed`, ...
    pub kind: &'static str,
    pub environment: Option<String>,
    pub subject: String,
    /// Labelled lines, in order: What, Environment, Error, Cause, Console, ...
    pub lines: Vec<(&'static str, String)>,
    /// The original event (redacted), shown at the end when it helps.
    pub event: Option<Value>,
    /// Identifies "the same failure" for de-duplication.
    pub fingerprint: String,
}

impl Alert {
    /// The subject as SNS accepts it: printable ASCII, one line, at most 100 characters.
    pub fn subject(&self) -> String {
        let mut text: String = redact_text(&self.subject)
            .chars()
            .map(|c| match c {
                ' '..='~' => c,
                _ => '?',
            })
            .collect();
        if text.len() > MAX_SUBJECT {
            text.truncate(MAX_SUBJECT - 3);
            text.push_str("...");
        }
        text
    }

    pub fn body(&self) -> String {
        let width = self.lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        let mut body = String::new();
        for (label, value) in &self.lines {
            let value = redact_text(value).replace('\n', &format!("\n{:width$} ", ""));
            body.push_str(&format!("{:width$} {value}\n", format!("{label}:")));
        }
        if let Some(event) = &self.event {
            let text = serde_json::to_string_pretty(&redact(event)).unwrap_or_default();
            body.push_str("\nThe event (secrets removed, trimmed):\n");
            body.push_str(&trim(&text, MAX_EVENT_TEXT));
            body.push('\n');
        }
        body.push_str("\n-- mwaa-ops\n");
        body
    }

    /// Message attributes: `kind` and `environment` for subscription filter policies, and
    /// `alert`, the whole alert as JSON.
    pub fn attributes(&self) -> BTreeMap<&'static str, String> {
        let mut fields = Map::new();
        for (label, value) in &self.lines {
            fields.insert(
                label.to_lowercase().replace(' ', "_"),
                json!(redact_text(value)),
            );
        }
        let alert = json!({
            "kind": self.kind,
            "environment": self.environment,
            "subject": self.subject(),
            "fields": fields,
            "fingerprint": self.fingerprint_hash(),
        });
        let mut attributes =
            BTreeMap::from([("kind", self.kind.to_owned()), ("alert", alert.to_string())]);
        // SNS refuses an empty String attribute: leave it out rather than lose the alert.
        if let Some(environment) = self.environment.as_ref().filter(|e| !e.is_empty()) {
            attributes.insert("environment", environment.clone());
        }
        attributes
    }

    /// A short, stable name for the fingerprint (used as the de-duplication key).
    pub fn fingerprint_hash(&self) -> String {
        hex::encode(Sha256::digest(self.fingerprint.as_bytes()))
    }
}

/// Removes secrets from free text that may be a JSON document (an execution's cause, an
/// error message), then cuts it to `max` characters. Redact first: a cut could split a
/// `user:password@` and hide it from the URL scrub.
pub fn clean(text: &str, max: usize) -> String {
    let redacted = match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => redact(&value).to_string(),
        _ => redact_text(text),
    };
    trim(&redacted, max)
}

/// Cuts `text` to `max` characters (not bytes), saying how much was left out.
pub fn trim(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}... ({} more characters)", count - max)
}

/// Whether a field's name says it holds a secret.
fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "private",
        "api_key",
        "apikey",
        "authorization",
        "conn_uri",
        "connection_string",
        "extra",
        "fernet",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Removes secrets from a JSON value: values of secret-named fields, and user:password in
/// URLs anywhere (connection strings). JSON documents inside strings are redacted too.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if secret_name(k) && !v.is_null() {
                        json!(REDACTED)
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => {
                Value::String(redact(&inner).to_string())
            }
            _ => Value::String(redact_text(text)),
        },
        other => other.clone(),
    }
}

/// Removes `user:password@` from URLs in free text (`scheme://user:password@host`).
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                rest = &tail[userinfo_end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC): an execution's start in an
/// email, and the time of a one-time schedule.
pub fn iso8601(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(subject: &str) -> Alert {
        Alert {
            kind: "test",
            environment: Some("dev".into()),
            subject: subject.into(),
            lines: vec![("What", "it broke".into()), ("Cause", "a\nb".into())],
            event: Some(json!({"password": "hunter2"})),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn subjects_fit_sns_and_stay_ascii_on_one_line() {
        let long = alert(&format!("Pause failed: {} é\nnext", "x".repeat(200)));
        let subject = long.subject();
        assert_eq!(subject.len(), MAX_SUBJECT);
        assert!(subject.ends_with("..."));
        assert!(
            subject.chars().all(|c| (' '..='~').contains(&c)),
            "{subject}"
        );
        assert_eq!(alert("short é").subject(), "short ?");
    }

    #[test]
    fn the_body_has_aligned_labels_and_no_secrets() {
        let body = alert("s").body();
        assert!(
            body.starts_with("What:  it broke\nCause: a\n       b\n"),
            "{body}"
        );
        assert!(body.contains("\"password\": \"***\""), "{body}");
        assert!(!body.contains("hunter2"), "{body}");
    }

    #[test]
    fn secret_fields_connection_strings_and_nested_json_are_redacted() {
        let event = json!({
            "environment": "dev",
            "conf": {"task_token": "AAAA", "Password": "p", "extra": "{\"k\": 1}", "rows": 3},
            "input": "{\"conn_uri\": \"x\", \"note\": \"see postgres://u:hunter2@db:5432/af\"}",
            "cause": "could not reach mysql://root:s3cret@10.0.0.1/db; retry",
            "list": [{"api_key": "k"}],
        });
        let text = redact(&event).to_string();
        for secret in ["AAAA", "\"p\"", "hunter2", "s3cret", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("\"rows\":3"), "{text}");
        assert!(text.contains("mysql://***@10.0.0.1/db; retry"), "{text}");
        assert!(text.contains("\"environment\":\"dev\""), "{text}");
    }

    #[test]
    fn urls_without_credentials_are_left_alone() {
        let text = "https://us-east-1.console.aws.amazon.com/states/home?a=b#x@y";
        assert_eq!(redact_text(text), text);
    }

    #[test]
    fn cleaning_redacts_before_cutting_and_reads_json_causes() {
        let url = format!("{}postgres://etl:hunter2@db/x", "x".repeat(20));
        let cut = clean(&url, 34);
        assert!(!cut.contains("hunter2") && !cut.contains("hunt"), "{cut}");
        let cause = r#"{"errorMessage": "boom", "task_token": "AAAA-secret-token"}"#;
        let cleaned = clean(cause, 600);
        assert!(
            !cleaned.contains("AAAA") && cleaned.contains("boom"),
            "{cleaned}"
        );
    }

    #[test]
    fn an_empty_environment_is_no_attribute() {
        let mut a = alert("s");
        a.environment = Some(String::new());
        assert!(!a.attributes().contains_key("environment"));
    }

    #[test]
    fn trimming_counts_characters_and_says_what_was_cut() {
        assert_eq!(trim("ééé", 5), "ééé");
        assert_eq!(trim("abcdef", 2), "ab... (4 more characters)");
    }

    #[test]
    fn attributes_carry_json_for_machines() {
        let attributes = alert("s").attributes();
        assert_eq!(attributes["kind"], "test");
        assert_eq!(attributes["environment"], "dev");
        let parsed: Value = serde_json::from_str(&attributes["alert"]).unwrap();
        assert_eq!(parsed["fields"]["what"], "it broke");
    }

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_298_400_000), "2026-11-21T22:00:00Z");
    }
}
