//! Provider error payloads in log text, read the way Hermes reads them.
//!
//! The SDKs render an HTTP error as `Error code: <status> - <Python repr of the body>`. This
//! module finds that text, parses the body as a Python literal (tolerating Hermes's truncation)
//! and derives the status, reason and message with Hermes's own precedence
//! (`agent_runtime_helpers.extract_api_error_context`): the reason is the body's
//! `error.code`, else `error.type`, else `error.error`, and only when that first non-empty value
//! is a string.

use serde_json::Value;

use crate::read::pyliteral;

/// What an error payload says, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorPayload {
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The parsed body; `Value::Null` when there was none or it could not be read.
    pub body: Value,
    /// The body text ended before the literal did (Hermes cut it).
    pub truncated: bool,
}

const ERROR_CODE_MARKER: &str = "Error code: ";

/// Reads the first `Error code: NNN - {...}` in `text`, or a bare Python literal when `text`
/// starts with one. `None` when the text carries neither.
pub fn find(text: &str) -> Option<ErrorPayload> {
    if let Some(at) = text.find(ERROR_CODE_MARKER) {
        return Some(after_marker(&text[at + ERROR_CODE_MARKER.len()..]));
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let mut payload = ErrorPayload::default();
        read_body(trimmed, &mut payload);
        return Some(payload);
    }
    None
}

fn after_marker(rest: &str) -> ErrorPayload {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let mut payload = ErrorPayload {
        status: rest[..digits].parse().ok(),
        ..ErrorPayload::default()
    };
    if let Some(body) = rest[digits..].strip_prefix(" - ") {
        read_body(body, &mut payload);
    }
    payload
}

fn read_body(text: &str, payload: &mut ErrorPayload) {
    let Ok(parsed) = pyliteral::parse_lenient(text) else {
        return;
    };
    payload.truncated = parsed.truncated;
    payload.body = parsed.value;
    let error = match payload.body.get("error") {
        Some(inner @ Value::Object(_)) => inner,
        _ => &payload.body,
    };
    payload.reason = first_truthy(error, &["code", "type", "error"])
        .and_then(Value::as_str)
        .map(|reason| reason.trim().to_owned());
    payload.message = first_truthy(error, &["message", "error_description"])
        .and_then(Value::as_str)
        .map(|message| message.trim().to_owned());
    if payload.status.is_none() {
        payload.status = payload
            .body
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|status| u16::try_from(status).ok());
    }
}

/// Python's `a.get(k1) or a.get(k2) or ...`.
fn first_truthy<'v>(object: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter()
        .filter_map(|key| object.get(key))
        .find(|value| is_truthy(value))
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_token_invalidated() {
        let text = "Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}. Further summary attempts paused for 60 seconds.";
        let payload = find(text).unwrap();
        assert_eq!(payload.status, Some(401));
        assert_eq!(payload.reason.as_deref(), Some("token_invalidated"));
        assert_eq!(
            payload.message.as_deref(),
            Some("Your authentication token has been invalidated. Please try signing in again.")
        );
        assert!(!payload.truncated);
    }

    #[test]
    fn anthropic_type_is_the_reason() {
        let payload = find("Error code: 401 - {'type': 'error', 'error': {'type': 'authentication_error', 'message': 'invalid x-api-key'}}").unwrap();
        assert_eq!(payload.reason.as_deref(), Some("authentication_error"));
    }

    #[test]
    fn openrouter_integer_code_gives_no_reason_like_hermes() {
        let payload =
            find("Error code: 401 - {'error': {'message': 'User not found.', 'code': 401}}")
                .unwrap();
        assert_eq!(payload.status, Some(401));
        assert_eq!(payload.reason, None);
        assert_eq!(payload.message.as_deref(), Some("User not found."));
    }

    #[test]
    fn truncated_body_still_yields_its_fields() {
        let payload = find("Error code: 401 - {'error': {'message': 'Your token was revoked', 'code': 'token_revoked', 'param': No...").unwrap();
        assert_eq!(payload.reason.as_deref(), Some("token_revoked"));
        assert!(payload.truncated);
    }

    #[test]
    fn status_without_body() {
        let payload = find("Error code: 503 - <html>").unwrap();
        assert_eq!(payload.status, Some(503));
        assert_eq!(payload.reason, None);
        assert_eq!(payload.body, Value::Null);
    }

    #[test]
    fn no_payload() {
        assert_eq!(find("Connection reset by peer"), None);
    }
}
