//! Hermes log records: the header of a line and where its message starts.
//!
//! Hermes formats every record as
//! `%(asctime)s %(levelname)s%(session_tag)s %(name)s: %(message)s`, e.g.
//! `2026-05-26 10:27:13,482 WARNING [20260526_102233_a1b2c3] agent.context_compressor: ...`,
//! with asctime in local time and no zone. A line that does not start with such a header
//! (a traceback, a multi-line message) belongs to the record above it. This module only
//! recognises headers; it never allocates and never fails: anything that is not a header is a
//! continuation line.

use jiff::civil::DateTime;

/// The parsed header of one log line, borrowing from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// `YYYY-MM-DD HH:MM:SS,mmm` exactly as written (local time, no zone).
    pub timestamp_text: &'a str,
    pub level: &'a str,
    /// The session tag without brackets, when the record carries one.
    pub session: Option<&'a str>,
    pub logger: &'a str,
    /// Byte offset of the message within the line.
    pub message_start: usize,
}

impl Header<'_> {
    /// The local wall-clock time of the record.
    pub fn local_time(&self) -> Option<DateTime> {
        parse_local_time(self.timestamp_text)
    }
}

const TIMESTAMP_LEN: usize = "2026-05-26 10:27:13,482".len();

/// Parses the header at the start of `line` (without its newline), or `None` for a
/// continuation line.
pub fn parse_header(line: &[u8]) -> Option<Header<'_>> {
    if line.len() < TIMESTAMP_LEN + 4 || !looks_like_timestamp(&line[..TIMESTAMP_LEN]) {
        return None;
    }
    let timestamp_text = std::str::from_utf8(&line[..TIMESTAMP_LEN]).ok()?;
    let mut pos = TIMESTAMP_LEN;
    if line[pos] != b' ' {
        return None;
    }
    pos += 1;
    let level_start = pos;
    while pos < line.len() && line[pos].is_ascii_uppercase() {
        pos += 1;
    }
    if pos == level_start || pos >= line.len() {
        return None;
    }
    let level = std::str::from_utf8(&line[level_start..pos]).ok()?;
    if line[pos] != b' ' {
        return None;
    }
    pos += 1;
    let mut session = None;
    if line.get(pos) == Some(&b'[') {
        let close = memchr::memchr(b']', &line[pos..])?;
        session = Some(std::str::from_utf8(&line[pos + 1..pos + close]).ok()?);
        pos += close + 1;
        if line.get(pos) != Some(&b' ') {
            return None;
        }
        pos += 1;
    }
    let logger_start = pos;
    let colon = memchr::memmem::find(&line[pos..], b": ")?;
    let logger = std::str::from_utf8(&line[logger_start..logger_start + colon]).ok()?;
    if logger.is_empty() || logger.contains(' ') {
        return None;
    }
    Some(Header {
        timestamp_text,
        level,
        session,
        logger,
        message_start: logger_start + colon + 2,
    })
}

fn looks_like_timestamp(bytes: &[u8]) -> bool {
    const SHAPE: &[u8; TIMESTAMP_LEN] = b"dddd-dd-dd dd:dd:dd,ddd";
    bytes.iter().zip(SHAPE).all(|(&byte, &shape)| {
        if shape == b'd' {
            byte.is_ascii_digit()
        } else {
            byte == shape
        }
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS,mmm` into a civil (zone-less) date and time.
pub fn parse_local_time(text: &str) -> Option<DateTime> {
    let bytes = text.as_bytes();
    if bytes.len() != TIMESTAMP_LEN || !looks_like_timestamp(bytes) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> i32 {
        bytes[range]
            .iter()
            .fold(0, |acc, digit| acc * 10 + i32::from(digit - b'0'))
    };
    DateTime::new(
        i16::try_from(number(0..4)).ok()?,
        i8::try_from(number(5..7)).ok()?,
        i8::try_from(number(8..10)).ok()?,
        i8::try_from(number(11..13)).ok()?,
        i8::try_from(number(14..16)).ok()?,
        i8::try_from(number(17..19)).ok()?,
        number(20..23) * 1_000_000,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_with_session() {
        let line = b"2026-05-26 10:27:13,482 WARNING [20260526_102233_a1b2c3] agent.context_compressor: Failed to generate context summary: boom";
        let header = parse_header(line).unwrap();
        assert_eq!(header.timestamp_text, "2026-05-26 10:27:13,482");
        assert_eq!(header.level, "WARNING");
        assert_eq!(header.session, Some("20260526_102233_a1b2c3"));
        assert_eq!(header.logger, "agent.context_compressor");
        assert_eq!(
            &line[header.message_start..],
            b"Failed to generate context summary: boom"
        );
        assert_eq!(
            header.local_time().unwrap().to_string(),
            "2026-05-26T10:27:13.482"
        );
    }

    #[test]
    fn header_without_session() {
        let line = b"2026-05-26 10:27:13,482 INFO agent.credential_pool: credential pool: marking a exhausted (status=401), rotating";
        let header = parse_header(line).unwrap();
        assert_eq!(header.session, None);
        assert_eq!(header.logger, "agent.credential_pool");
        assert!(line[header.message_start..].starts_with(b"credential pool: marking"));
    }

    #[test]
    fn continuation_lines_are_not_headers() {
        for line in [
            &b"Traceback (most recent call last):"[..],
            b"  File \"/x/run_agent.py\", line 12, in <module>",
            b"openai.AuthenticationError: Error code: 401 - {'error': {}}",
            b"2026-05-26 10:27:13 WARNING x: no millis",
            b"2026-05-26 10:27:13,482 warning x: lower-case level",
            b"2026-05-26 10:27:13,482 WARNING [unterminated x: y",
            b"",
        ] {
            assert_eq!(
                parse_header(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn impossible_dates_have_no_time() {
        let header =
            parse_header(b"2026-13-45 10:27:13,482 WARNING root: message").expect("header shape");
        assert_eq!(header.local_time(), None);
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_header(&line);
        }

        #[test]
        fn round_trips_rendered_headers(
            level in "(DEBUG|INFO|WARNING|ERROR|CRITICAL)",
            session in proptest::option::of("[0-9a-z_]{1,30}"),
            logger in "[a-z_][a-z_.]{0,30}",
            message in "[^\n]{0,80}",
            millis in 0u32..1000,
        ) {
            let tag = session.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default();
            let line = format!("2026-05-26 10:27:13,{millis:03} {level}{tag} {logger}: {message}");
            let header = parse_header(line.as_bytes()).unwrap();
            prop_assert_eq!(header.level, level.as_str());
            prop_assert_eq!(header.session, session.as_deref());
            prop_assert_eq!(header.logger, logger.as_str());
            prop_assert_eq!(&line[header.message_start..], message.as_str());
        }
    }
}
