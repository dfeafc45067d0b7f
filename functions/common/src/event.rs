//! Parsing events into typed structs with errors that name the field and the event id.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// The event's id (EventBridge `id`, else `event_id`), for error messages and logs.
pub fn event_id(event: &Value) -> String {
    ["id", "event_id", "eventId"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .unwrap_or("(no id)")
        .to_owned()
}

/// Deserializes `value` as `T`; a mismatch names the JSON path of the offending field.
pub fn parse<T: DeserializeOwned>(event_id: &str, value: &Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "(event)" } else { &path };
        Error::invalid_event(event_id, field, e.into_inner().to_string())
    })
}

/// Prefixes the field path of a nested value's parse error with where that value sits.
pub fn nested(parent: &str, err: Error) -> Error {
    match err {
        Error::InvalidEvent {
            event_id,
            field,
            reason,
        } => Error::InvalidEvent {
            event_id,
            field: if field == "(event)" {
                parent.into()
            } else {
                format!("{parent}.{field}")
            },
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[allow(dead_code)]
        detail: Inner,
    }
    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        size: u64,
    }

    #[test]
    fn a_wrong_type_names_the_field_path_and_the_event() {
        let event = json!({"id": "ev-1", "detail": {"size": "big"}});
        let err = parse::<Outer>(&event_id(&event), &event).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ev-1"), "{text}");
        assert!(text.contains("detail.size"), "{text}");
    }

    #[test]
    fn events_without_an_id_say_so() {
        assert_eq!(event_id(&json!({"x": 1})), "(no id)");
    }
}
