//! Keeping secrets out of everything the warden prints, serves or stores.
//!
//! Text that came from logs or auth.json (labels, reasons, messages) may hold a token when the
//! user turned Hermes's redaction off. Before such text leaves the program, every run of token
//! characters long enough to be a credential and mixing letters and digits is replaced by its
//! `sha256:<16 hex>` fingerprint. E-mail addresses, reason codes and Hermes session ids pass
//! unchanged.
//!
//! A run that is a path (`/tmp/.tmpAbC123/warden/ledger.json`, `./x`, `../x`, `~/x`) is judged
//! one segment at a time, so an error message still says which file it is about, while a token
//! that is a segment of its own is still replaced. A run is taken for a path only when nothing
//! in it looks like a token cut by `/`: no `+`, `=` or `//` (standard base64, Google's `1//0g`
//! refresh tokens) and no segment of 12 or more letters and digits mixing upper case, lower
//! case and digits; such a run is judged whole, as any other.
//!
//! Scrub before you cut: a token cut in half may be too short to be recognised. Where the whole
//! cannot be held (a log line longer than the line limit), [`cut_line`] cuts before the run of
//! token characters the cut goes through, so no piece of a token is kept.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use sha2::{Digest, Sha256};

/// Shortest run treated as a possible secret. Hermes's own redaction keeps 6 + 4 characters.
const MIN_SECRET_LEN: usize = 20;

/// Shortest path segment of mixed-case letters and digits that makes a run a token, not a path.
const MIN_RANDOM_SEGMENT_LEN: usize = 12;

/// How a run that is a path begins.
const PATH_STARTS: [&str; 4] = ["/", "./", "../", "~/"];

/// The characters a token is made of, besides ASCII letters and digits.
const TOKEN_PUNCTUATION: &str = "_-+/=.~";

static TOKEN_RUN: LazyLock<Regex> = LazyLock::new(|| {
    let punctuation = regex::escape(TOKEN_PUNCTUATION);
    Regex::new(&format!(r"[A-Za-z0-9{punctuation}]{{{MIN_SECRET_LEN},}}")).expect("valid regex")
});

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || TOKEN_PUNCTUATION.as_bytes().contains(&byte)
}

/// `line` cut to at most `max` bytes when it is longer, and then also before the run of token
/// characters at the cut: that run may be the first part of a token, too short to be
/// recognised once cut. A line within the limit is kept whole.
pub fn cut_line(line: &[u8], max: usize) -> &[u8] {
    match line.len() > max {
        true => trim_cut(&line[..max]),
        false => line,
    }
}

/// A line already cut to the limit, without the run of token characters at its end (see
/// [`cut_line`]).
pub fn trim_cut(cut: &[u8]) -> &[u8] {
    let keep = cut
        .iter()
        .rposition(|&byte| !is_token_byte(byte))
        .map_or(0, |at| at + 1);
    &cut[..keep]
}

/// A Hermes session id (`%Y%m%d_%H%M%S_` and a few hex digits): a time, not a secret.
static SESSION_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{8}_[0-9]{6}_[0-9a-f]{4,12}$").expect("valid regex"));

/// `text` with every token-like run replaced by its fingerprint.
pub fn scrub(text: &str) -> Cow<'_, str> {
    TOKEN_RUN.replace_all(text, |caps: &regex::Captures| scrub_run(&caps[0]))
}

/// One run of token characters, scrubbed: a path segment by segment, anything else whole.
fn scrub_run(run: &str) -> String {
    if is_path(run) {
        run.split('/').map(judge).collect::<Vec<_>>().join("/")
    } else if starts_like_path(run) && has_random_segment(run) {
        fingerprint_of(run)
    } else {
        judge(run).into_owned()
    }
}

/// `text` (a run, or a segment of a path) with each piece between `..`s that looks like a
/// secret replaced. `..` only separates: it does not make a token harmless (`...sk-proj-...`),
/// and Hermes's own redaction (`sk-pro...wxyz`) leaves pieces too short to be secrets.
fn judge(text: &str) -> Cow<'_, str> {
    if !text.contains("..") {
        return match looks_like_secret(text) {
            true => Cow::Owned(fingerprint_of(text)),
            false => Cow::Borrowed(text),
        };
    }
    Cow::Owned(text.split("..").map(judge).collect::<Vec<_>>().join(".."))
}

fn starts_like_path(run: &str) -> bool {
    PATH_STARTS.iter().any(|start| run.starts_with(start))
}

/// Whether `run` is a path to be judged segment by segment.
fn is_path(run: &str) -> bool {
    starts_like_path(run)
        && !run.contains(['+', '='])
        && !run.contains("//")
        && !has_random_segment(run)
}

/// Whether a segment of `run` looks like a piece of a random token (base64 cut at its `/`).
fn has_random_segment(run: &str) -> bool {
    run.split('/').any(|segment| {
        segment.len() >= MIN_RANDOM_SEGMENT_LEN
            && segment.bytes().all(|b| b.is_ascii_alphanumeric())
            && segment.bytes().any(|b| b.is_ascii_uppercase())
            && segment.bytes().any(|b| b.is_ascii_lowercase())
            && segment.bytes().any(|b| b.is_ascii_digit())
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

/// Whether a piece of a run, without `..`, is long enough to be a credential and mixes letters
/// and digits (a Hermes session id does too, and is none).
fn looks_like_secret(piece: &str) -> bool {
    piece.len() >= MIN_SECRET_LEN
        && piece.bytes().any(|b| b.is_ascii_digit())
        && piece.bytes().any(|b| b.is_ascii_alphabetic())
        && !SESSION_ID.is_match(piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Obviously fake tokens of the shapes providers issue.
    const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXRlc3QtdXNlci0wMDAwIiwiZmFrZSI6dHJ1ZX0.ZmFrZS1zaWduYXR1cmUtbm90LWEtcmVhbC10b2tlbi0wMDAwMDAwMA";
    const OPENAI: &str = "sk-proj-FAKEfake0123456789abcdefFAKEfake0123456789";
    const ANTHROPIC: &str = "sk-ant-api03-FAKEfake0123456789abcdef-FAKEfake0123456789";
    const GITHUB: &str = "gho_FAKEfake0123456789abcdefFAKEfake0123";
    const BASE64: &str = "ZmFrZS1iYXNlNjQ+dG9rZW4/bm90LXJlYWw=";
    const GOOGLE: &str = "1//0gFAKEfake0123456789abcdef-FAKEfake0123456789_fake";
    /// Standard base64 that happens to begin with `/` and hold no `+` or `=`.
    const SLASHED: &str = "/9jFAKEfake0123/4AAQSkZJRgABAQ/fake0123456789";

    #[test]
    fn a_cut_keeps_no_piece_of_the_token_it_goes_through() {
        for token in [JWT, OPENAI, ANTHROPIC, GITHUB, BASE64, GOOGLE, SLASHED] {
            for filler in [" ", "x", ".", "/", "=", "é"] {
                let line = format!("message: {}{token} end", filler.repeat(3));
                let start = line.find(token).unwrap();
                for max in start..=start + token.len() {
                    let cut = std::str::from_utf8(cut_line(line.as_bytes(), max)).unwrap();
                    assert!(cut.len() <= max);
                    for window in token.as_bytes().windows(6) {
                        let window = std::str::from_utf8(window).unwrap();
                        assert!(!cut.contains(window), "{cut:?} holds {window:?}");
                    }
                    if max > start && filler == " " {
                        assert_eq!(cut, &line[..start], "cut at the run's start");
                    }
                }
            }
        }
        let short = b"a line within the limit ends in a token-like run abc123";
        assert_eq!(cut_line(short, short.len()), short);
    }

    fn assert_scrubbed(text: &str, secret: &str) {
        let scrubbed = scrub(text);
        assert!(scrubbed.contains("sha256:"), "{text} -> {scrubbed}");
        for window in secret.as_bytes().windows(12) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !scrubbed.contains(window),
                "{window:?} of {secret} is left in {scrubbed}"
            );
        }
    }

    #[test]
    fn tokens_become_fingerprints() {
        let text = "Bearer sk-proj-abcDEF1234567890abcdef1234 failed";
        let scrubbed = scrub(text);
        assert!(!scrubbed.contains("abcDEF1234567890"), "{scrubbed}");
        assert!(scrubbed.contains("sha256:"), "{scrubbed}");
    }

    #[test]
    fn every_token_shape_is_scrubbed_whole() {
        for secret in [JWT, OPENAI, ANTHROPIC, GITHUB, BASE64, GOOGLE, SLASHED] {
            for text in [
                secret.to_owned(),
                format!("Bearer {secret} failed"),
                format!("token={secret}"),
                format!("'access_token': '{secret}'"),
                format!("{secret}/auth.json"),
                format!("/{secret}"),
                format!("~/{secret}"),
                format!("...{secret}"),
                format!("key..{secret}...end"),
            ] {
                assert_scrubbed(&text, secret);
            }
            assert_eq!(scrub(secret), fingerprint_of(secret), "{secret}");
        }
    }

    #[test]
    fn a_token_that_is_a_segment_of_a_path_is_scrubbed() {
        for secret in [JWT, OPENAI, ANTHROPIC, GITHUB] {
            for path in [
                format!("/tmp/{secret}/auth.json"),
                format!("./{secret}"),
                format!("../x/{secret}"),
                format!("~/.hermes/{secret}.json"),
            ] {
                assert_scrubbed(&path, secret);
                assert!(scrub(&path).contains('/'), "{path}: the path stays a path");
            }
        }
        let scrubbed = scrub("/tmp/x/sk-proj-FAKEfake0123456789abcdefFAKE/auth.json");
        assert!(scrubbed.starts_with("/tmp/x/sha256:"), "{scrubbed}");
        assert!(scrubbed.ends_with("/auth.json"), "{scrubbed}");
        // A path with a piece of base64 in it is judged whole.
        for text in [
            "/tmp/ZmFrZS1iYXNl+NjQ/auth.json",
            "/tmp/AbCdEf123456/auth.json",
            "../AbCdEf123456xyz/auth.json",
            "//0gFAKEfake0123/auth.json",
        ] {
            assert_eq!(scrub(text), fingerprint_of(text), "{text}");
        }
    }

    #[test]
    fn paths_pass() {
        for text in [
            "/tmp/.tmpAbC123/warden/ledger.json",
            "/work/x/target/tmp9f8e7d6c5b4a3/auth.json",
            "./target/debug/build/ring-0a1b2c3d4e5f/out",
            "../hermes2/profiles/work2/logs/errors.log.1",
            "~/.hermes/profiles/work-2026/auth.json",
            "/home/user1/.hermes/warden/checkpoints.json",
        ] {
            assert_eq!(scrub(text), text);
            let message = format!("{text}: cannot read: Permission denied (os error 13)");
            assert_eq!(scrub(&message), message);
            let quoted = format!("cannot open {text:?}");
            assert_eq!(scrub(&quoted), quoted);
        }
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
            "20260528_201620_c0de15",
            "sk-pro...abcd",
            "api_key=sk-pro...abcd was rejected",
            "Request timed out.. Further summary attempts paused for 60 seconds.",
            "1.2.3..1.4.0",
        ] {
            assert_eq!(scrub(text), text);
        }
    }
}
