//! Reading Hermes's `auth.json`: the credential pools, without ever holding on to a secret.
//!
//! The file is parsed strictly (a UTF-8 BOM is tolerated, as newer Hermes readers do); a file
//! that does not parse, or whose pools do not have the shape Hermes writes, is an error naming
//! the file and the place, never a guess. Each pool entry keeps the status fields Hermes
//! records and a `sha256:<16 hex>` fingerprint of its secret computed the way Hermes computes
//! `secret_fingerprint`; the secret itself is dropped here.

use std::path::{Path, PathBuf};

use crate::shared::files;
use crate::shared::secrets::fingerprint_of;
use serde_json::{Map, Value};

/// `last_status` as Hermes writes it (null is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastStatus {
    Ok,
    Exhausted,
    Dead,
    /// A status no known Hermes version writes.
    Other(String),
}

impl LastStatus {
    pub fn parse(text: &str) -> LastStatus {
        match text {
            "ok" => LastStatus::Ok,
            "exhausted" => LastStatus::Exhausted,
            "dead" => LastStatus::Dead,
            other => LastStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            LastStatus::Ok => "ok",
            LastStatus::Exhausted => "exhausted",
            LastStatus::Dead => "dead",
            LastStatus::Other(other) => other,
        }
    }
}

/// One entry of a provider's credential pool, as far as the warden needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolEntry {
    pub id: String,
    pub label: Option<String>,
    pub auth_type: Option<String>,
    pub source: Option<String>,
    pub last_status: Option<LastStatus>,
    pub last_status_at: Option<f64>,
    pub last_error_code: Option<i64>,
    pub last_error_reason: Option<String>,
    pub last_error_message: Option<String>,
    /// Epoch seconds; Hermes also accepts ISO strings and milliseconds here.
    pub last_error_reset_at: Option<f64>,
    /// `sha256:<16 hex>` of the secret, or the entry's own `secret_fingerprint`.
    pub fingerprint: Option<String>,
    /// Since when failures logged before are old news, epoch seconds: the later of when its
    /// tokens were last obtained or refreshed (`last_refresh`) and when `hermes auth reset`
    /// last cleared its status (`status_cleared_at`, Hermes >= 0.20).
    pub renewed_at: Option<f64>,
}

impl PoolEntry {
    /// The name Hermes uses for the entry in its log lines: `label or id[:8]`.
    pub fn log_name(&self) -> &str {
        match self.label.as_deref() {
            Some(label) if !label.is_empty() => label,
            // Python's `id[:8]`: eight characters, not bytes.
            _ => self
                .id
                .char_indices()
                .nth(8)
                .map_or(&self.id, |(at, _)| &self.id[..at]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub provider: String,
    pub entries: Vec<PoolEntry>,
}

/// The pools of one `auth.json`, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSnapshot {
    /// The provider Hermes used last (`active_provider`).
    pub active_provider: Option<String>,
    pub pools: Vec<Pool>,
}

impl AuthSnapshot {
    pub fn pool(&self, provider: &str) -> Option<&Pool> {
        self.pools.iter().find(|pool| pool.provider == provider)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: unexpected shape at {place}: {message}")]
    Shape {
        path: PathBuf,
        place: String,
        message: String,
    },
}

/// Reads `auth.json`; a missing file is an empty snapshot (Hermes has not written one yet).
/// Anything but a regular file (a FIFO, a device, a directory) or a file larger than
/// [`files::AUTH_JSON_LIMIT`] is an error, found without blocking or reading it whole.
pub fn read(path: &Path) -> Result<AuthSnapshot, AuthError> {
    match files::read_limited(path, files::AUTH_JSON_LIMIT) {
        Ok(Some(bytes)) => parse(path, &bytes),
        Ok(None) => Ok(AuthSnapshot::default()),
        Err(source) => Err(AuthError::Io {
            path: path.to_owned(),
            source: files::without_path(source),
        }),
    }
}

/// Parses the bytes of an `auth.json`; `path` only names the file in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<AuthSnapshot, AuthError> {
    snapshot(path, &parse_document(path, bytes)?)
}

/// Parses the bytes of an `auth.json` into the whole document (key order and number text
/// kept), for an edit; `path` only names the file in errors.
pub fn parse_document(path: &Path, bytes: &[u8]) -> Result<Value, AuthError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|error| AuthError::Syntax {
        path: path.to_owned(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })
}

/// The pools of a parsed `auth.json`, checked for the shape Hermes writes.
pub fn snapshot(path: &Path, document: &Value) -> Result<AuthSnapshot, AuthError> {
    let shape = |place: &str, message: &str| AuthError::Shape {
        path: path.to_owned(),
        place: place.to_owned(),
        message: message.to_owned(),
    };
    let top = document
        .as_object()
        .ok_or_else(|| shape("the top level", "expected an object"))?;
    let mut snapshot = AuthSnapshot {
        active_provider: top
            .get("active_provider")
            .and_then(Value::as_str)
            .map(str::to_owned),
        pools: Vec::new(),
    };
    let pools = match top.get("credential_pool") {
        None | Some(Value::Null) => return Ok(snapshot),
        Some(Value::Object(pools)) => pools,
        Some(_) => return Err(shape("credential_pool", "expected an object")),
    };
    for (provider, entries) in pools {
        let place = format!("credential_pool[{provider:?}]");
        let entries = entries
            .as_array()
            .ok_or_else(|| shape(&place, "expected a list of entries"))?;
        let entries = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let place = format!("{place}[{index}]");
                let entry = entry
                    .as_object()
                    .ok_or_else(|| shape(&place, "expected an object"))?;
                read_entry(entry).map_err(|message| shape(&place, &message))
            })
            .collect::<Result<_, _>>()?;
        snapshot.pools.push(Pool {
            provider: provider.clone(),
            entries,
        });
    }
    Ok(snapshot)
}

fn read_entry(entry: &Map<String, Value>) -> Result<PoolEntry, String> {
    let id = match entry.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err("an entry without a string `id`".into()),
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("`{key}` is not a string")),
        }
    };
    let number = |key: &str| -> Result<Option<f64>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => Ok(number.as_f64()),
            Some(_) => Err(format!("`{key}` is not a number")),
        }
    };
    let last_error_code = match entry.get("last_error_code") {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        Some(_) => return Err("`last_error_code` is not a number".into()),
    };
    Ok(PoolEntry {
        label: text("label")?,
        auth_type: text("auth_type")?,
        source: text("source")?,
        last_status: text("last_status")?.as_deref().map(LastStatus::parse),
        last_status_at: number("last_status_at")?,
        last_error_code,
        last_error_reason: text("last_error_reason")?,
        // Hermes stores whatever the provider said; keep only text.
        last_error_message: entry
            .get("last_error_message")
            .and_then(Value::as_str)
            .map(str::to_owned),
        last_error_reset_at: timestamp(entry.get("last_error_reset_at")),
        fingerprint: fingerprint(entry),
        renewed_at: [entry.get("last_refresh"), entry.get("status_cleared_at")]
            .into_iter()
            .filter_map(timestamp)
            .reduce(f64::max),
        id,
    })
}

/// Hermes's `_parse_absolute_timestamp`: epoch seconds, epoch milliseconds or an ISO string.
fn timestamp(value: Option<&Value>) -> Option<f64> {
    let seconds = match value? {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => {
            let text = text.trim();
            match text.parse::<f64>() {
                Ok(number) => number,
                Err(_) => {
                    let timestamp: jiff::Timestamp = text.replace('Z', "+00:00").parse().ok()?;
                    return Some(timestamp.as_millisecond() as f64 / 1000.0);
                }
            }
        }
        _ => return None,
    };
    if seconds <= 0.0 {
        return None;
    }
    Some(if seconds > 1e12 {
        seconds / 1000.0
    } else {
        seconds
    })
}

const SECRET_KEYS: [&str; 6] = [
    "agent_key",
    "access_token",
    "refresh_token",
    "api_key",
    "token",
    "secret",
];

/// Hermes's `_credential_secret_fingerprint`: the first secret field present, else the
/// entry's own `secret_fingerprint`.
fn fingerprint(entry: &Map<String, Value>) -> Option<String> {
    SECRET_KEYS
        .iter()
        .filter_map(|key| entry.get(*key))
        .find_map(|value| match value {
            Value::String(text) if !text.is_empty() => Some(fingerprint_of(text)),
            _ => None,
        })
        .or_else(|| {
            entry
                .get("secret_fingerprint")
                .and_then(Value::as_str)
                .filter(|text| text.starts_with("sha256:"))
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = r#"{
  "version": 1,
  "credential_pool": {
    "openai-codex": [
      {
        "id": "a1b2c3",
        "label": "alice@example.com",
        "auth_type": "oauth",
        "source": "manual:device_code",
        "access_token": "fake-access-token-alice",
        "last_status": "exhausted",
        "last_status_at": 1780000000.5,
        "last_error_code": 401,
        "last_error_reason": "token_invalidated",
        "last_error_message": null,
        "last_error_reset_at": null,
        "last_refresh": "2026-05-28T20:00:00.5Z",
        "unknown_field": {"kept": true}
      },
      {
        "id": "b0b000",
        "label": "bob@example.com",
        "last_refresh": "2026-05-28T20:00:00Z",
        "status_cleared_at": 1780000100.25
      },
      {
        "id": "d4e5f6",
        "label": null,
        "source": "env:OPENAI_API_KEY",
        "secret_fingerprint": "sha256:0123456789abcdef",
        "last_error_reset_at": "2026-06-01T00:00:00Z"
      }
    ]
  }
}
"#;

    #[test]
    fn reads_entries_without_keeping_secrets() {
        let snapshot = parse(Path::new("auth.json"), AUTH.as_bytes()).unwrap();
        let pool = snapshot.pool("openai-codex").unwrap();
        let alice = &pool.entries[0];
        assert_eq!(alice.last_status, Some(LastStatus::Exhausted));
        assert_eq!(alice.last_status_at, Some(1780000000.5));
        assert_eq!(alice.last_error_code, Some(401));
        assert_eq!(alice.renewed_at, Some(1779998400.5));
        // `hermes auth reset` after the last refresh: failures before it are old news.
        assert_eq!(pool.entries[1].renewed_at, Some(1780000100.25));
        assert_eq!(
            alice.fingerprint.as_deref(),
            Some(fingerprint_of("fake-access-token-alice").as_str())
        );
        assert!(!format!("{snapshot:?}").contains("fake-access-token-alice"));
        let borrowed = &pool.entries[2];
        assert_eq!(borrowed.log_name(), "d4e5f6");
        assert_eq!(
            borrowed.fingerprint.as_deref(),
            Some("sha256:0123456789abcdef")
        );
        assert_eq!(borrowed.last_error_reset_at, Some(1780272000.0));
    }

    #[test]
    fn fingerprint_matches_hermes() {
        // python3 -c "import hashlib; print(hashlib.sha256(b'fake-access-token-alice').hexdigest()[:16])"
        assert_eq!(
            fingerprint_of("fake-access-token-alice"),
            "sha256:c174f78c29281df0"
        );
    }

    #[test]
    fn bom_is_tolerated() {
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), AUTH.as_bytes()].concat();
        assert_eq!(parse(Path::new("a"), &with_bom).unwrap().pools.len(), 1);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let broken = AUTH.replace("\"label\": \"alice@example.com\",", "\"label\": ,");
        let error = parse(Path::new("/h/auth.json"), broken.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("/h/auth.json:7:"), "{error}");
    }

    #[test]
    fn unexpected_shape_is_an_error() {
        let error = parse(
            Path::new("auth.json"),
            br#"{"credential_pool": {"x": {"id": "1"}}}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("credential_pool[\"x\"]"),
            "{error}"
        );
        let error = parse(
            Path::new("auth.json"),
            br#"{"credential_pool": {"x": [{"label": "no id"}]}}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("[0]"), "{error}");
    }
}
