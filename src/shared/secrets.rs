//! Keeping secrets out of everything the warden prints, serves or stores.
//!
//! Text that came from logs or auth.json (labels, reasons, messages) may hold a token when the
//! user turned Hermes's redaction off. Before such text leaves the program, every run of token
//! characters long enough to be a credential and mixing letters and digits is replaced by its
//! `sha256:<16 hex>` fingerprint. E-mail addresses and reason codes pass unchanged.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use sha2::{Digest, Sha256};

/// Shortest run treated as a possible secret. Hermes's own redaction keeps 6 + 4 characters.
const MIN_SECRET_LEN: usize = 20;

static TOKEN_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"[A-Za-z0-9_\-+/=.~]{{{MIN_SECRET_LEN},}}")).expect("valid regex")
});

/// `text` with every token-like run replaced by its fingerprint.
pub fn scrub(text: &str) -> Cow<'_, str> {
    TOKEN_RUN.replace_all(text, |caps: &regex::Captures| {
        let run = &caps[0];
        if looks_like_secret(run) {
            fingerprint_of(run)
        } else {
            run.to_owned()
        }
    })
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of `secret`, as Hermes's
/// `_credential_secret_fingerprint` writes it: the only form in which a token ever leaves.
pub fn fingerprint_of(secret: &str) -> String {
    format!("sha256:{}", short_hash(secret.as_bytes()))
}

/// The first 16 hex digits of the SHA-256 of `bytes`: a stable, short name for a text (a log
/// line, a file's first line) that gives nothing of it away.
pub fn short_hash(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    digest[..8]
        .iter()
        .fold(String::with_capacity(16), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn looks_like_secret(run: &str) -> bool {
    run.bytes().any(|b| b.is_ascii_digit())
        && run.bytes().any(|b| b.is_ascii_alphabetic())
        && !run.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_become_fingerprints() {
        let text = "Bearer sk-proj-abcDEF1234567890abcdef1234 failed";
        let scrubbed = scrub(text);
        assert!(!scrubbed.contains("abcDEF1234567890"), "{scrubbed}");
        assert!(scrubbed.contains("sha256:"), "{scrubbed}");
    }

    #[test]
    fn ordinary_text_passes() {
        for text in [
            "alice@example.com",
            "token_invalidated",
            "refresh_token_reused",
            "Your authentication token has been invalidated.",
            "2026-05-26T10:27:13.482+00:00",
            "logs/errors.log.1:12",
            "sha256:0123456789abcdef",
        ] {
            assert_eq!(scrub(text), text);
        }
    }
}
