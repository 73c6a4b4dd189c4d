//! The edit itself: how a pool entry in a parsed `auth.json` is marked dead or revived, touching
//! nothing but its six status fields.
//!
//! The form (which `last_status`, which reset time) is the one [`DeadForm::for_hermes`] chose for
//! the installed Hermes; `last_status_at` is the moment of the mark. Pure: the caller reads and
//! writes the file.

use serde_json::{Map, Number, Value};

use crate::hermes::semantics::DeadForm;
use crate::remediate::pyjson;

/// The status fields Hermes always writes on a pool entry, in its order.
pub const STATUS_FIELDS: [&str; 6] = [
    "last_status",
    "last_status_at",
    "last_error_code",
    "last_error_reason",
    "last_error_message",
    "last_error_reset_at",
];

/// What the mark says about why.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("no credential {id:?} in the {provider} pool")]
    NoEntry { provider: String, id: String },
}

/// The entry `id` of `provider`'s pool in a parsed `auth.json`, if there is one.
pub fn entry_mut<'d>(
    document: &'d mut Value,
    provider: &str,
    id: &str,
) -> Result<&'d mut Map<String, Value>, EditError> {
    document
        .get_mut("credential_pool")
        .and_then(|pools| pools.get_mut(provider))
        .and_then(Value::as_array_mut)
        .and_then(|entries| {
            entries
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .find(|entry| entry.get("id").and_then(Value::as_str) == Some(id))
        })
        .ok_or_else(|| EditError::NoEntry {
            provider: provider.to_owned(),
            id: id.to_owned(),
        })
}

/// Marks the entry dead in `form` at `now` (epoch seconds).
pub fn mark_dead(entry: &mut Map<String, Value>, form: DeadForm, evidence: &Evidence, now: f64) {
    let (status, reset_at) = form.fields();
    let values = [
        Value::from(status.as_str()),
        seconds(now),
        evidence.code.map_or(Value::Null, Value::from),
        evidence.reason.clone().map_or(Value::Null, Value::from),
        Value::from(evidence.message.clone()),
        reset_at.map_or(Value::Null, seconds),
    ];
    set_status_fields(entry, values);
}

/// Clears the status fields, as Hermes does when an entry is reset.
pub fn clear(entry: &mut Map<String, Value>) {
    set_status_fields(entry, std::array::from_fn(|_| Value::Null));
}

/// Replaces each status field's value in place (keeping the key order), adding missing ones
/// at the end as Hermes would.
fn set_status_fields(entry: &mut Map<String, Value>, values: [Value; 6]) {
    for (key, value) in STATUS_FIELDS.into_iter().zip(values) {
        match entry.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                entry.insert(key.to_owned(), value);
            }
        }
    }
}

fn seconds(value: f64) -> Value {
    pyjson::float(value).map_or(Value::Null, |number: Number| Value::Number(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = r#"{
  "version": 1,
  "credential_pool": {
    "openai-codex": [
      {
        "id": "a11ce0",
        "label": "alice@example.com",
        "last_status": "exhausted",
        "last_status_at": 1780000000.25,
        "last_error_code": 401,
        "last_error_reason": null,
        "last_error_message": "Error code: 401 - {'error': {'code': 'token_revoked'}}",
        "last_error_reset_at": null,
        "request_count": 3,
        "extra": "caf\u00e9"
      },
      {
        "id": "b0b000",
        "label": "bob"
      }
    ]
  }
}
"#;

    fn evidence() -> Evidence {
        Evidence {
            code: Some(401),
            reason: Some("token_revoked".into()),
            message: "hermes-warden: token_revoked".into(),
        }
    }

    fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
        before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    }

    #[test]
    fn marks_only_the_status_fields_in_place() {
        let mut document: Value = serde_json::from_str(AUTH).unwrap();
        assert_eq!(
            pyjson::dumps(&document),
            AUTH,
            "the fixture is in Hermes's layout"
        );
        let entry = entry_mut(&mut document, "openai-codex", "a11ce0").unwrap();
        mark_dead(entry, DeadForm::Dead, &evidence(), 1_780_000_100.5);
        let after = pyjson::dumps(&document);
        assert_eq!(after.lines().count(), AUTH.lines().count());
        assert_eq!(
            changed_lines(AUTH, &after),
            [
                (
                    r#"        "last_status": "exhausted","#.into(),
                    r#"        "last_status": "dead","#.into()
                ),
                (
                    r#"        "last_status_at": 1780000000.25,"#.into(),
                    r#"        "last_status_at": 1780000100.5,"#.into()
                ),
                (
                    r#"        "last_error_reason": null,"#.into(),
                    r#"        "last_error_reason": "token_revoked","#.into()
                ),
                (
                    r#"        "last_error_message": "Error code: 401 - {'error': {'code': 'token_revoked'}}","#.into(),
                    r#"        "last_error_message": "hermes-warden: token_revoked","#.into()
                ),
            ]
        );
    }

    #[test]
    fn old_form_is_exhausted_until_far_ahead_and_missing_fields_are_added() {
        let mut document: Value = serde_json::from_str(AUTH).unwrap();
        let entry = entry_mut(&mut document, "openai-codex", "b0b000").unwrap();
        mark_dead(entry, DeadForm::Exhausted, &evidence(), 1_780_000_000.0);
        let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(keys[..2], ["id", "label"]);
        assert_eq!(keys[2..], STATUS_FIELDS);
        assert_eq!(entry["last_status"], "exhausted");
        assert_eq!(entry["last_error_reset_at"].to_string(), "4102444800.0");
        assert_eq!(entry["last_status_at"].to_string(), "1780000000.0");
        clear(entry);
        assert!(STATUS_FIELDS.iter().all(|key| entry[*key].is_null()));
    }

    #[test]
    fn a_missing_entry_is_an_error() {
        let mut document: Value = serde_json::from_str(AUTH).unwrap();
        assert!(entry_mut(&mut document, "openai-codex", "ffffff").is_err());
        assert!(entry_mut(&mut document, "anthropic", "a11ce0").is_err());
    }
}
