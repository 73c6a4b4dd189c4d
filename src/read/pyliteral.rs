//! A small, strict parser for Python literals (the text `repr()` produces), turning them into
//! [`serde_json::Value`].
//!
//! # Why it exists
//!
//! Hermes Agent (a Python program) logs provider errors as
//! `Error code: 401 - <Python repr of the response body>`, for example
//! `{'error': {'message': '...', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}`.
//! To recognise revoked credentials we have to read those bodies and match their fields, so we
//! parse the Python literal into a JSON value first.
//!
//! # What is accepted
//!
//! * dicts (keys kept in order; a repeated key keeps its first position and takes the last value,
//!   like Python). String keys stay strings; an int key becomes its decimal text, a float key its
//!   number text, any other key (None, True, tuples, ...) its source text.
//! * lists, tuples (`()`, `(x,)`, `(x, y)`) and sets (`{x, y}`) become arrays; `(x)` is just `x`.
//! * strings in single, double or triple quotes with the prefixes `r`, `u`, `b`, `br`, `rb` (any
//!   case), Python's escapes (`\N{...}` is kept verbatim, lone surrogates become U+FFFD, bytes are
//!   decoded as lossy UTF-8) and implicit concatenation of adjacent literals.
//! * `None`, `True`, `False`; ints of any size (sign, underscores, `0x`/`0o`/`0b`), floats (kept as
//!   their text, rewritten into JSON number syntax where Python's differs, e.g. `5.` -> `5.0`);
//!   `inf`, `-inf`, `nan` and floats that overflow become `null`. Complex numbers are an error.
//!
//! # Guarantees
//!
//! The input is untrusted log text. Every function here returns an error value for garbage and
//! never panics; nesting is limited to [`MAX_DEPTH`] containers (checked before descending, so
//! the stack use is bounded whatever the input); the work and the memory used are linear in the
//! length of the input (non-decimal integer literals, whose conversion to decimal is not linear,
//! are limited to [`MAX_RADIX_INT_BITS`] bits).

use serde_json::{Map, Number, Value};

/// The deepest nesting of containers (lists, tuples, sets, dicts, parentheses) accepted.
pub const MAX_DEPTH: usize = 64;

/// The largest hexadecimal, octal or binary integer literal accepted, in bits.
pub const MAX_RADIX_INT_BITS: usize = 4096;

/// Why a text is not a Python literal: the byte offset of the problem and a short description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct PyLiteralError {
    /// Byte offset into the text given to the parsing function.
    pub offset: usize,
    /// What went wrong, e.g. "expected ':' after dict key".
    pub message: String,
}

/// The result of [`parse_lenient`].
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient {
    /// The literal, or as much of it as the text held when it was cut short.
    pub value: Value,
    /// Bytes of the text taken by the literal (the whole text when `truncated`).
    pub consumed: usize,
    /// The text ended inside the literal; `value` holds only what was read before the end.
    pub truncated: bool,
}

/// Parses a complete Python literal (surrounding whitespace allowed); anything after it is an error.
pub fn parse(text: &str) -> Result<Value, PyLiteralError> {
    let (value, consumed) = parse_prefix(text)?;
    let mut parser = Parser::new(text);
    parser.pos = consumed;
    parser.skip_ws();
    if parser.pos != text.len() {
        return Err(parser.error_at(parser.pos, "unexpected text after the literal".into()));
    }
    Ok(value)
}

/// Parses the literal at the start of `text` (after leading whitespace) and returns it with the
/// number of bytes consumed, so callers can ignore trailing prose such as
/// ". Further summary attempts paused for 60 seconds."
pub fn parse_prefix(text: &str) -> Result<(Value, usize), PyLiteralError> {
    let mut parser = Parser::new(text);
    match parser.value(0) {
        Ok(value) => Ok((value, parser.pos)),
        Err(stop) => Err(stop.into_error()),
    }
}

/// Like [`parse_prefix`], but when the text ends in the middle of a literal (Hermes truncates
/// long error text, sometimes with a trailing "..." or "…"), returns what was read so far with
/// open containers closed and an unfinished string, number or key dropped (a number that runs up
/// to the very end of the text counts as unfinished), plus `truncated: true`. Garbage that is not
/// a truncation is still an error, and so is a text cut before any value was complete.
pub fn parse_lenient(text: &str) -> Result<Lenient, PyLiteralError> {
    let mut parser = Parser::new(text);
    let error = match parser.value(0) {
        Ok(value) => {
            return Ok(Lenient {
                value,
                consumed: parser.pos,
                truncated: false,
            });
        }
        Err(Stop::Eof {
            partial: Some(value),
            ..
        }) => {
            return Ok(Lenient {
                value,
                consumed: text.len(),
                truncated: true,
            });
        }
        Err(Stop::Eof { partial: None, err }) => return Err(err),
        Err(Stop::Error(err)) => err,
    };
    // The literal may have been cut and marked with an ellipsis that got glued to a token
    // (`'code': 40...`); retry as if the text ended where the ellipsis starts.
    let Some(cut) = ellipsis_start(text) else {
        return Err(error);
    };
    let mut parser = Parser::new(&text[..cut]);
    match parser.value(0) {
        Ok(value)
        | Err(Stop::Eof {
            partial: Some(value),
            ..
        }) => Ok(Lenient {
            value,
            consumed: text.len(),
            truncated: true,
        }),
        Err(_) => Err(error),
    }
}

/// Where a trailing truncation mark ("..." or "…", then optional whitespace) starts.
fn ellipsis_start(text: &str) -> Option<usize> {
    let trimmed = text.trim_end();
    if let Some(rest) = trimmed.strip_suffix("...") {
        Some(rest.len())
    } else {
        trimmed.strip_suffix('…').map(str::len)
    }
}

/// Why parsing stopped.
enum Stop {
    /// The text is not a Python literal.
    Error(PyLiteralError),
    /// The text ended inside the literal. `partial` is what can be salvaged of the value being
    /// read: open containers closed, unfinished scalars dropped (`None` when nothing is left).
    Eof {
        partial: Option<Value>,
        err: PyLiteralError,
    },
}

impl Stop {
    fn into_error(self) -> PyLiteralError {
        match self {
            Stop::Error(err) | Stop::Eof { err, .. } => err,
        }
    }

    /// A child value stopped: returns how the parent stops, given what to make of the child's
    /// partial value (`close` is given the salvaged child, if any, and returns the parent's).
    fn wrap(self, close: impl FnOnce(Option<Value>) -> Value) -> Stop {
        match self {
            Stop::Error(err) => Stop::Error(err),
            Stop::Eof { partial, err } => Stop::Eof {
                partial: Some(close(partial)),
                err,
            },
        }
    }
}

/// How a string literal's prefix changes its meaning.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StrKind {
    raw: bool,
    bytes: bool,
}

/// What follows a complete string literal, for implicit concatenation.
enum Next {
    /// Another string literal starts here.
    String,
    /// Something else (or nothing) follows.
    Other,
    /// The text ends inside what may be the prefix of another string literal.
    Eof,
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Where the most recent number token ended, to tell numbers the text may have cut short.
    number_end: usize,
}

type Parsed = Result<Value, Stop>;

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            number_end: usize::MAX,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, pos: usize) -> Option<u8> {
        self.bytes.get(pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn error_at(&self, offset: usize, message: String) -> PyLiteralError {
        PyLiteralError { offset, message }
    }

    fn fail(&self, offset: usize, message: impl Into<String>) -> Stop {
        Stop::Error(self.error_at(offset, message.into()))
    }

    /// The text ended where `what` was expected; nothing of the current value is salvageable.
    fn eof(&self, what: &str) -> Stop {
        self.eof_with(None, what)
    }

    fn eof_with(&self, partial: Option<Value>, what: &str) -> Stop {
        Stop::Eof {
            partial,
            err: self.error_at(self.bytes.len(), format!("unexpected end of input, {what}")),
        }
    }

    /// True when the value just read was a number running up to the end of the text, which
    /// may have cut it short.
    fn number_at_end(&self) -> bool {
        self.pos == self.bytes.len() && self.number_end == self.pos
    }

    /// Describes the character at `pos` for an error message.
    fn describe_char(&self, pos: usize) -> String {
        match self.text.get(pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("{c:?}"),
            None => "end of input".into(),
        }
    }

    /// Reads one value, after optional whitespace. `depth` is the number of open containers.
    fn value(&mut self, depth: usize) -> Parsed {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.eof("expected a value"));
        };
        match c {
            b'[' | b'(' | b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(self.fail(
                        self.pos,
                        format!("containers nested deeper than {MAX_DEPTH}"),
                    ));
                }
                self.pos += 1;
                match c {
                    b'[' => self.items(depth + 1, b']', Vec::new()),
                    b'(' => self.paren(depth + 1),
                    _ => self.brace(depth + 1),
                }
            }
            b'\'' | b'"' => self.strings(),
            b'0'..=b'9' | b'.' => self.number(false),
            b'+' | b'-' => self.signed(),
            c if c.is_ascii_alphabetic() || c == b'_' => self.name(),
            _ => Err(self.fail(
                self.pos,
                format!("unexpected character {}", self.describe_char(self.pos)),
            )),
        }
    }

    /// Reads the rest of a list, tuple or set up to `close`, after `items` already read and
    /// the opening bracket or a comma.
    fn items(&mut self, depth: usize, close: u8, mut items: Vec<Value>) -> Parsed {
        let expected = match close {
            b']' => "expected ',' or ']'",
            b')' => "expected ',' or ')'",
            _ => "expected ',' or '}'",
        };
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof_with(Some(Value::Array(items)), expected)),
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => {}
            }
            let item = match self.value(depth) {
                Ok(item) => item,
                Err(stop) => {
                    return Err(stop.wrap(|partial| {
                        items.extend(partial);
                        Value::Array(items)
                    }));
                }
            };
            if self.number_at_end() {
                return Err(self.eof_with(Some(Value::Array(items)), expected));
            }
            items.push(item);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.eof_with(Some(Value::Array(items)), expected)),
                Some(_) => return Err(self.fail(self.pos, expected)),
            }
        }
    }

    /// After `(`: an empty tuple, a parenthesized value or a tuple.
    fn paren(&mut self, depth: usize) -> Parsed {
        const EXPECTED: &str = "expected ',' or ')'";
        self.skip_ws();
        match self.peek() {
            None => return Err(self.eof_with(Some(Value::Array(Vec::new())), EXPECTED)),
            Some(b')') => {
                self.pos += 1;
                return Ok(Value::Array(Vec::new()));
            }
            Some(_) => {}
        }
        let first = match self.value(depth) {
            Ok(first) => first,
            Err(stop) => return Err(stop.wrap(|partial| Value::Array(Vec::from_iter(partial)))),
        };
        if self.number_at_end() {
            return Err(self.eof_with(Some(Value::Array(Vec::new())), EXPECTED));
        }
        self.skip_ws();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok(first)
            }
            Some(b',') => {
                self.pos += 1;
                self.items(depth, b')', vec![first])
            }
            None => Err(self.eof_with(Some(Value::Array(vec![first])), EXPECTED)),
            Some(_) => Err(self.fail(self.pos, EXPECTED)),
        }
    }

    /// After `{`: a dict or a set.
    fn brace(&mut self, depth: usize) -> Parsed {
        const EXPECTED: &str = "expected ':', ',' or '}'";
        let empty = || Some(Value::Object(Map::new()));
        self.skip_ws();
        match self.peek() {
            None => return Err(self.eof_with(empty(), "expected a key or '}'")),
            Some(b'}') => {
                self.pos += 1;
                return Ok(Value::Object(Map::new()));
            }
            Some(_) => {}
        }
        let start = self.pos;
        // Whether this is a dict or a set is unknown until after the first item, so a cut
        // first item leaves an empty dict.
        let first = match self.value(depth) {
            Ok(first) => first,
            Err(stop) => return Err(stop.wrap(|_| Value::Object(Map::new()))),
        };
        if self.number_at_end() {
            return Err(self.eof_with(empty(), EXPECTED));
        }
        let end = self.pos;
        self.skip_ws();
        match self.peek() {
            Some(b':') => {
                let key = self.key_text(first, start, end);
                self.dict(depth, key)
            }
            Some(b',') => {
                self.pos += 1;
                self.items(depth, b'}', vec![first])
            }
            Some(b'}') => {
                self.pos += 1;
                Ok(Value::Array(vec![first]))
            }
            None => Err(self.eof_with(empty(), EXPECTED)),
            Some(_) => Err(self.fail(self.pos, EXPECTED)),
        }
    }

    /// The rest of a dict, at the ':' after its first key.
    fn dict(&mut self, depth: usize, first_key: String) -> Parsed {
        let mut map = Map::new();
        let mut key = first_key;
        loop {
            self.pos += 1; // the ':'
            let value = match self.value(depth) {
                Ok(value) => value,
                Err(stop) => {
                    return Err(stop.wrap(|partial| {
                        if let Some(partial) = partial {
                            map.insert(key, partial);
                        }
                        Value::Object(map)
                    }));
                }
            };
            if self.number_at_end() {
                return Err(self.eof_with(Some(Value::Object(map)), "expected ',' or '}'"));
            }
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                None => {
                    return Err(self.eof_with(Some(Value::Object(map)), "expected ',' or '}'"));
                }
                Some(_) => {
                    return Err(self.fail(self.pos, "expected ',' or '}' after dict value"));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                None => {
                    return Err(self.eof_with(Some(Value::Object(map)), "expected a key or '}'"));
                }
                Some(_) => {}
            }
            let start = self.pos;
            let next_key = match self.value(depth) {
                Ok(next_key) => next_key,
                Err(stop) => return Err(stop.wrap(|_| Value::Object(map))),
            };
            let end = self.pos;
            self.skip_ws();
            match self.peek() {
                Some(b':') => key = self.key_text(next_key, start, end),
                None => return Err(self.eof_with(Some(Value::Object(map)), "expected ':'")),
                Some(_) => return Err(self.fail(self.pos, "expected ':' after dict key")),
            }
        }
    }

    /// The JSON object key for a dict key read from `start..end`.
    fn key_text(&self, key: Value, start: usize, end: usize) -> String {
        match key {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => self.text[start..end].to_owned(),
        }
    }

    /// Reads `None`, `True`, `False`, `inf`, `nan`, or a prefixed string literal.
    fn name(&mut self) -> Parsed {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name = &self.text[start..self.pos];
        if let Some(b'\'' | b'"') = self.peek() {
            self.pos = start;
            return self.strings();
        }
        match name {
            "None" | "inf" | "nan" => return Ok(Value::Null),
            "True" => return Ok(Value::Bool(true)),
            "False" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if self.pos == self.bytes.len()
            && (string_prefix(name).is_some()
                || ["None", "True", "False", "inf", "nan"]
                    .iter()
                    .any(|full| full.starts_with(name)))
        {
            return Err(self.eof("in a name"));
        }
        let shown: String = name.chars().take(24).collect();
        Err(self.fail(start, format!("unknown name '{shown}'")))
    }

    /// After `+` or `-`: a number, `inf` or `nan`.
    fn signed(&mut self) -> Parsed {
        let negative = self.peek() == Some(b'-');
        self.pos += 1;
        self.skip_ws();
        match self.peek() {
            Some(b'0'..=b'9' | b'.') => self.number(negative),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'_' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                match &self.text[start..self.pos] {
                    "inf" | "nan" => Ok(Value::Null),
                    name if self.pos == self.bytes.len()
                        && ("inf".starts_with(name) || "nan".starts_with(name)) =>
                    {
                        Err(self.eof("in a number"))
                    }
                    _ => Err(self.fail(start, "expected a number after the sign")),
                }
            }
            None => Err(self.eof("expected a number after the sign")),
            Some(_) => Err(self.fail(self.pos, "expected a number after the sign")),
        }
    }

    /// Reads digits with single underscores between them into `out`; `Ok(false)` if there was
    /// no digit at all.
    fn digits(&mut self, out: &mut String, radix: u32) -> Result<bool, Stop> {
        let mut any = false;
        loop {
            match self.peek() {
                Some(c) if (c as char).is_digit(radix) => {
                    out.push(c as char);
                    any = true;
                    self.pos += 1;
                }
                Some(b'_') if any => match self.peek_at(self.pos + 1) {
                    Some(c) if (c as char).is_digit(radix) => self.pos += 1,
                    None => return Err(self.eof("in a number")),
                    Some(_) => return Err(self.fail(self.pos, "invalid number literal")),
                },
                _ => return Ok(any),
            }
        }
    }

    /// Reads a number starting at a digit or '.'.
    fn number(&mut self, negative: bool) -> Parsed {
        let start = self.pos;
        if self.peek() == Some(b'0')
            && let Some(c @ (b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) = self.peek_at(self.pos + 1)
        {
            return self.radix_int(negative, c.to_ascii_lowercase());
        }
        let mut int_part = String::new();
        let has_int = self.digits(&mut int_part, 10)?;
        let mut frac_part = None;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let mut frac = String::new();
            let has_frac = self.digits(&mut frac, 10)?;
            if !has_int && !has_frac {
                return Err(match self.peek() {
                    None => self.eof("in a number"),
                    Some(_) => self.fail(start, "unexpected character '.'"),
                });
            }
            frac_part = Some(frac);
        }
        let mut exponent = None;
        if let Some(e @ (b'e' | b'E')) = self.peek() {
            self.pos += 1;
            let mut exp = String::new();
            exp.push(e as char);
            if let Some(sign @ (b'+' | b'-')) = self.peek() {
                exp.push(sign as char);
                self.pos += 1;
            }
            if !self.digits(&mut exp, 10)? {
                return Err(match self.peek() {
                    None => self.eof("in a number"),
                    Some(_) => self.fail(self.pos, "invalid float exponent"),
                });
            }
            exponent = Some(exp);
        }
        match self.peek() {
            Some(b'j' | b'J') => {
                return Err(self.fail(start, "complex numbers are not supported"));
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                return Err(self.fail(self.pos, "invalid number literal"));
            }
            _ => {}
        }
        self.number_end = self.pos;

        let int_digits = int_part.trim_start_matches('0');
        if frac_part.is_none() && exponent.is_none() {
            if !int_digits.is_empty() && int_digits.len() != int_part.len() {
                return Err(self.fail(
                    start,
                    "leading zeros in decimal integer literals are not permitted",
                ));
            }
            return self.int_value(negative, int_digits);
        }
        let mut text = String::with_capacity(int_part.len() + 8);
        if negative {
            text.push('-');
        }
        text.push_str(if int_digits.is_empty() {
            "0"
        } else {
            int_digits
        });
        if let Some(frac) = frac_part {
            text.push('.');
            text.push_str(if frac.is_empty() { "0" } else { &frac });
        }
        if let Some(exp) = exponent {
            text.push_str(&exp);
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => {}
            _ => return Ok(Value::Null),
        }
        self.json_number(&text, start)
    }

    /// The value of a decimal integer given its digits without leading zeros.
    fn int_value(&self, negative: bool, digits: &str) -> Parsed {
        if digits.is_empty() {
            return Ok(Value::Number(Number::from(0u8)));
        }
        if negative {
            let mut text = String::with_capacity(digits.len() + 1);
            text.push('-');
            text.push_str(digits);
            self.json_number(&text, self.pos)
        } else {
            self.json_number(digits, self.pos)
        }
    }

    fn json_number(&self, text: &str, offset: usize) -> Parsed {
        match serde_json::from_str::<Number>(text) {
            Ok(n) => Ok(Value::Number(n)),
            Err(_) => Err(self.fail(offset, "number out of range")),
        }
    }

    /// Reads a `0x`, `0o` or `0b` integer; `radix_char` is the lowercased letter.
    fn radix_int(&mut self, negative: bool, radix_char: u8) -> Parsed {
        let start = self.pos;
        let (radix, bits_per_digit, what) = match radix_char {
            b'x' => (16, 4, "hexadecimal"),
            b'o' => (8, 3, "octal"),
            _ => (2, 1, "binary"),
        };
        self.pos += 2;
        if self.peek() == Some(b'_') {
            self.pos += 1;
        }
        let mut digits = String::new();
        if !self.digits(&mut digits, radix)? {
            return Err(match self.peek() {
                None => self.eof("in a number"),
                Some(_) => self.fail(self.pos, format!("invalid {what} literal")),
            });
        }
        if let Some(c) = self.peek()
            && (c.is_ascii_alphanumeric() || c == b'_')
        {
            return Err(self.fail(self.pos, format!("invalid {what} literal")));
        }
        self.number_end = self.pos;
        let digits = digits.trim_start_matches('0');
        let Some(first) = digits.chars().next().and_then(|c| c.to_digit(radix)) else {
            return self.int_value(negative, "");
        };
        let bits = (digits.len() - 1) * bits_per_digit + (32 - first.leading_zeros()) as usize;
        if bits > MAX_RADIX_INT_BITS {
            return Err(self.fail(
                start,
                format!("integer literal longer than {MAX_RADIX_INT_BITS} bits"),
            ));
        }
        let decimal = if bits <= 128 {
            let mut value: u128 = 0;
            for d in digits.chars().filter_map(|c| c.to_digit(radix)) {
                value = value * u128::from(radix) + u128::from(d);
            }
            value.to_string()
        } else {
            to_decimal(digits, radix)
        };
        self.int_value(negative, &decimal)
    }

    /// Reads one or more adjacent string literals (with optional prefixes) and concatenates them.
    fn strings(&mut self) -> Parsed {
        let mut buf = Vec::new();
        let mut bytes_kind = None;
        loop {
            let start = self.pos;
            let kind = self.string_prefix_here()?;
            if bytes_kind.is_some_and(|b| b != kind.bytes) {
                return Err(self.fail(start, "cannot mix bytes and str literals"));
            }
            bytes_kind = Some(kind.bytes);
            self.string_body(&mut buf, kind)?;
            let after = self.pos;
            self.skip_ws();
            match self.next_is_string() {
                Next::String => {}
                Next::Other => {
                    self.pos = after;
                    break;
                }
                Next::Eof => return Err(self.eof("in a string literal")),
            }
        }
        Ok(Value::String(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// Whether a string literal (maybe prefixed) starts at the current position.
    fn next_is_string(&self) -> Next {
        let mut p = self.pos;
        while let Some(c) = self.peek_at(p) {
            if c == b'\'' || c == b'"' {
                return match string_prefix(&self.text[self.pos..p]) {
                    Some(Ok(_)) => Next::String,
                    _ => Next::Other,
                };
            }
            if !c.is_ascii_alphabetic() || p - self.pos >= 2 {
                return Next::Other;
            }
            p += 1;
        }
        if p > self.pos && string_prefix(&self.text[self.pos..p]).is_some_and(|k| k.is_ok()) {
            Next::Eof
        } else {
            Next::Other
        }
    }

    /// Reads the prefix letters before a quote.
    fn string_prefix_here(&mut self) -> Result<StrKind, Stop> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphabetic() {
                self.pos += 1;
            } else {
                break;
            }
        }
        match string_prefix(&self.text[start..self.pos]) {
            Some(Ok(kind)) => Ok(kind),
            Some(Err(message)) => Err(self.fail(start, message)),
            None => Err(self.fail(start, "invalid string prefix")),
        }
    }

    /// Reads one quoted literal (at its opening quote) and appends its contents to `buf`.
    fn string_body(&mut self, buf: &mut Vec<u8>, kind: StrKind) -> Result<(), Stop> {
        let open = self.pos;
        let Some(quote) = self.peek() else {
            return Err(self.eof("in a string literal"));
        };
        let triple = self.peek_at(open + 1) == Some(quote) && self.peek_at(open + 2) == Some(quote);
        self.pos += if triple { 3 } else { 1 };
        loop {
            let Some(c) = self.peek() else {
                return Err(self.eof("in a string literal"));
            };
            if c == quote {
                if !triple {
                    self.pos += 1;
                    return Ok(());
                }
                if self.peek_at(self.pos + 1) == Some(quote)
                    && self.peek_at(self.pos + 2) == Some(quote)
                {
                    self.pos += 3;
                    return Ok(());
                }
                buf.push(c);
                self.pos += 1;
            } else if c == b'\\' {
                if kind.raw {
                    // A backslash escapes nothing but still keeps the next quote, backslash
                    // or newline in the string; both characters are kept.
                    buf.push(b'\\');
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.eof("in a string literal")),
                        Some(next) if next.is_ascii() => {
                            buf.push(next);
                            self.pos += 1;
                        }
                        Some(_) => {}
                    }
                } else {
                    self.escape(buf, kind)?;
                }
            } else if (c == b'\n' || c == b'\r') && !triple {
                return Err(self.fail(open, "unterminated string literal"));
            } else {
                buf.push(c);
                self.pos += 1;
            }
        }
    }

    /// Reads one escape sequence (at its backslash) and appends what it stands for.
    fn escape(&mut self, buf: &mut Vec<u8>, kind: StrKind) -> Result<(), Stop> {
        let start = self.pos;
        let Some(c) = self.peek_at(start + 1) else {
            return Err(self.eof("in a string literal"));
        };
        self.pos += 2;
        let simple = match c {
            b'\n' => Some(None),
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
                Some(None)
            }
            b'\\' | b'\'' | b'"' => Some(Some(c)),
            b'a' => Some(Some(0x07)),
            b'b' => Some(Some(0x08)),
            b'f' => Some(Some(0x0c)),
            b'n' => Some(Some(b'\n')),
            b'r' => Some(Some(b'\r')),
            b't' => Some(Some(b'\t')),
            b'v' => Some(Some(0x0b)),
            _ => None,
        };
        if let Some(byte) = simple {
            buf.extend(byte);
            return Ok(());
        }
        match c {
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                if kind.bytes {
                    buf.push((value & 0xff) as u8);
                } else {
                    push_char(buf, value);
                }
            }
            b'x' => {
                let value = self.hex_digits(start, 2)?;
                if kind.bytes {
                    buf.push(value as u8);
                } else {
                    push_char(buf, value);
                }
            }
            b'u' | b'U' if !kind.bytes => {
                let value = self.hex_digits(start, if c == b'u' { 4 } else { 8 })?;
                if value > 0x10ffff {
                    return Err(self.fail(start, "illegal Unicode character in \\U escape"));
                }
                push_char(buf, value);
            }
            _ => {
                // Unknown escapes (and `\N{...}`) are kept as written.
                buf.push(b'\\');
                self.pos = start + 1;
            }
        }
        Ok(())
    }

    /// Reads exactly `n` hex digits of an escape starting at `start`.
    fn hex_digits(&mut self, start: usize, n: usize) -> Result<u32, Stop> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c) if c.is_ascii_hexdigit() => {
                    value = value * 16 + (c as char).to_digit(16).unwrap_or(0);
                    self.pos += 1;
                }
                None => return Err(self.eof("in a string escape")),
                Some(_) => return Err(self.fail(start, "truncated escape sequence")),
            }
        }
        Ok(value)
    }
}

/// The meaning of a string prefix: `None` if it is not one, `Some(Err)` if it is one we refuse.
fn string_prefix(prefix: &str) -> Option<Result<StrKind, &'static str>> {
    let kind = |raw, bytes| Some(Ok(StrKind { raw, bytes }));
    match prefix.to_ascii_lowercase().as_str() {
        "" | "u" => kind(false, false),
        "r" => kind(true, false),
        "b" => kind(false, true),
        "br" | "rb" => kind(true, true),
        "f" | "fr" | "rf" => Some(Err("f-strings are not literals")),
        _ => None,
    }
}

/// Appends a code point as UTF-8; surrogates (and anything invalid) become U+FFFD.
fn push_char(buf: &mut Vec<u8>, value: u32) {
    let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

/// Converts digits (in `radix`, no leading zeros) to decimal. Quadratic in the length, which
/// callers bound.
fn to_decimal(digits: &str, radix: u32) -> String {
    const BASE: u64 = 1_000_000_000;
    // Little-endian limbs in base 10^9, fed a chunk of digits at a time: each chunk is below
    // 2^32, so `limb * multiplier + carry` stays below 2^62.
    let chunk = match radix {
        16 => 8,
        8 => 10,
        _ => 32,
    };
    let mut limbs: Vec<u32> = Vec::new();
    let values: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(radix)).collect();
    for group in values.rchunks(chunk).rev() {
        let multiplier = u64::from(radix).pow(group.len() as u32);
        let mut carry = group
            .iter()
            .fold(0u64, |acc, d| acc * u64::from(radix) + u64::from(*d));
        for limb in &mut limbs {
            let v = u64::from(*limb) * multiplier + carry;
            *limb = (v % BASE) as u32;
            carry = v / BASE;
        }
        while carry > 0 {
            limbs.push((carry % BASE) as u32);
            carry /= BASE;
        }
    }
    let mut out = String::with_capacity(limbs.len() * 9 + 1);
    let mut iter = limbs.iter().rev();
    match iter.next() {
        Some(top) => out.push_str(&top.to_string()),
        None => out.push('0'),
    }
    for limb in iter {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const TOKEN_INVALIDATED: &str = "{'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}";

    fn num(text: &str) -> Value {
        Value::Number(serde_json::from_str::<Number>(text).expect("valid JSON number"))
    }

    fn err(text: &str) -> PyLiteralError {
        parse(text).expect_err(text)
    }

    // ---- real shapes ----

    #[test]
    fn openai_token_invalidated() {
        assert_eq!(
            parse(TOKEN_INVALIDATED).unwrap(),
            json!({"error": {"message": "Your authentication token has been invalidated. Please try signing in again.", "type": "invalid_request_error", "code": "token_invalidated", "param": null}, "status": 401})
        );
    }

    #[test]
    fn anthropic_invalid_key() {
        let text = "{'type': 'error', 'error': {'type': 'authentication_error', 'message': 'invalid x-api-key'}, 'request_id': 'req_011'}";
        let value = parse(text).unwrap();
        assert_eq!(
            value,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}, "request_id": "req_011"})
        );
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["type", "error", "request_id"]);
    }

    #[test]
    fn openrouter_user_not_found() {
        assert_eq!(
            parse("{'error': {'message': 'User not found.', 'code': 401}}").unwrap(),
            json!({"error": {"message": "User not found.", "code": 401}})
        );
    }

    #[test]
    fn codex_usage_limit() {
        let text = "{'error': {'type': 'usage_limit_reached', 'message': 'The usage limit has been reached', 'plan_type': 'plus', 'resets_at': 1764567890, 'resets_in_seconds': 3600}}";
        assert_eq!(
            parse(text).unwrap(),
            json!({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": "plus", "resets_at": 1764567890, "resets_in_seconds": 3600}})
        );
    }

    #[test]
    fn prefix_ignores_trailing_prose() {
        let text = "  {'error': {'message': 'User not found.', 'code': 401}}. Further summary attempts paused for 60 seconds.";
        let (value, consumed) = parse_prefix(text).unwrap();
        assert_eq!(
            value,
            json!({"error": {"message": "User not found.", "code": 401}})
        );
        assert_eq!(&text[consumed..consumed + 2], ". ");
        let e = parse(text).unwrap_err();
        assert_eq!(e.offset, consumed);
        // A lenient parse of a complete literal is not truncated.
        let lenient = parse_lenient(text).unwrap();
        assert_eq!(
            lenient,
            Lenient {
                value,
                consumed,
                truncated: false
            }
        );
    }

    // ---- scalars ----

    #[test]
    fn constants_and_whitespace() {
        assert_eq!(parse(" None ").unwrap(), Value::Null);
        assert_eq!(parse("True").unwrap(), json!(true));
        assert_eq!(parse("\tFalse\n").unwrap(), json!(false));
        assert_eq!(parse("[\n 1,\r\n 2\x0c]").unwrap(), json!([1, 2]));
        assert_eq!(err("none").message, "unknown name 'none'");
        assert_eq!(err("Nonee").offset, 0);
        assert_eq!(err("<Response [401]>").offset, 0);
        assert_eq!(err("").offset, 0);
        assert_eq!(err("   ").offset, 3);
    }

    #[test]
    fn integers() {
        assert_eq!(parse("0").unwrap(), json!(0));
        assert_eq!(parse("-0").unwrap(), json!(0));
        assert_eq!(parse("000").unwrap(), json!(0));
        assert_eq!(parse("-42").unwrap(), json!(-42));
        assert_eq!(parse("+42").unwrap(), json!(42));
        assert_eq!(parse("- 7").unwrap(), json!(-7));
        assert_eq!(parse("1_000_000").unwrap(), json!(1_000_000));
        assert_eq!(parse("0xff").unwrap(), json!(255));
        assert_eq!(parse("0XFF").unwrap(), json!(255));
        assert_eq!(parse("0x_f_f").unwrap(), json!(255));
        assert_eq!(parse("-0o17").unwrap(), json!(-15));
        assert_eq!(parse("0b1010").unwrap(), json!(10));
        assert_eq!(parse("0x0").unwrap(), json!(0));
        assert_eq!(parse("18446744073709551615").unwrap(), json!(u64::MAX));
        assert_eq!(parse("-9223372036854775808").unwrap(), json!(i64::MIN));
        let big = "123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(parse(big).unwrap(), num(big));
        assert_eq!(
            parse(&format!("-{big}")).unwrap().to_string(),
            format!("-{big}")
        );
        // 2**200, checked with Python.
        assert_eq!(
            parse("0x100000000000000000000000000000000000000000000000000").unwrap(),
            num("1606938044258990275541962092341162602522202993782792835301376")
        );
        assert_eq!(
            parse(&format!("0b1{}", "0".repeat(128))).unwrap(),
            num("340282366920938463463374607431768211456")
        );
        assert_eq!(
            parse(&format!("0o{}", "7".repeat(30))).unwrap(),
            num("1237940039285380274899124223")
        );
        assert_eq!(
            parse(&format!("-0x{}", "f".repeat(40))).unwrap(),
            num("-1461501637330902918203684832716283019655932542975")
        );
        assert_eq!(
            err("0123").message,
            "leading zeros in decimal integer literals are not permitted"
        );
        assert_eq!(err("1__0").offset, 1);
        assert_eq!(err("1_").offset, 2); // cut short: end of input
        assert_eq!(err("0x").offset, 2);
        assert_eq!(err("0xg").offset, 2);
        assert_eq!(err("0b102").offset, 4);
        assert_eq!(err("12abc").offset, 2);
        assert_eq!(err("3j").message, "complex numbers are not supported");
        assert_eq!(err("1.5J").offset, 0);
        assert!(
            err(&format!("0x1{}", "0".repeat(1024)))
                .message
                .contains("4096 bits")
        );
        assert!(parse(&format!("0x{}", "f".repeat(1024))).is_ok());
    }

    #[test]
    fn floats() {
        assert_eq!(parse("1.5").unwrap(), num("1.5"));
        assert_eq!(parse("-1.5").unwrap(), num("-1.5"));
        assert_eq!(parse("1e10").unwrap(), num("1e10"));
        assert_eq!(parse("1e+16").unwrap(), num("1e+16"));
        assert_eq!(parse("1.5e-05").unwrap(), num("1.5e-05"));
        assert_eq!(parse(".5").unwrap(), num("0.5"));
        assert_eq!(parse("5.").unwrap(), num("5.0"));
        assert_eq!(parse("+5.E3").unwrap(), num("5.0E3"));
        assert_eq!(parse("01.50").unwrap(), num("1.50"));
        assert_eq!(parse("1_000.000_1").unwrap(), num("1000.0001"));
        assert_eq!(parse("-0.0").unwrap(), num("-0.0"));
        assert_eq!(parse("1.5").unwrap().as_f64(), Some(1.5));
        assert_eq!(parse("inf").unwrap(), Value::Null);
        assert_eq!(parse("-inf").unwrap(), Value::Null);
        assert_eq!(parse("+inf").unwrap(), Value::Null);
        assert_eq!(parse("nan").unwrap(), Value::Null);
        assert_eq!(parse("1e999").unwrap(), Value::Null);
        assert_eq!(
            parse("[inf, -inf, nan]").unwrap(),
            json!([null, null, null])
        );
        assert_eq!(err("1e").offset, 2);
        assert_eq!(err("1ex").message, "invalid float exponent");
        assert_eq!(err(".").offset, 1);
        assert_eq!(err(". ").message, "unexpected character '.'");
        assert_eq!(err("-").offset, 1);
        assert_eq!(err("-x").message, "expected a number after the sign");
        assert_eq!(err("-'a'").offset, 1);
        assert_eq!(err("- -1").offset, 2);
    }

    // ---- strings ----

    #[test]
    fn quotes() {
        assert_eq!(parse("'abc'").unwrap(), json!("abc"));
        assert_eq!(parse("\"it's\"").unwrap(), json!("it's"));
        assert_eq!(parse("'both \\' and \"'").unwrap(), json!("both ' and \""));
        assert_eq!(parse("''").unwrap(), json!(""));
        assert_eq!(parse("\"\"").unwrap(), json!(""));
        assert_eq!(parse("'''a'b''c\nd'''").unwrap(), json!("a'b''c\nd"));
        assert_eq!(parse("\"\"\"x\"\"\"").unwrap(), json!("x"));
        assert_eq!(parse("''''''").unwrap(), json!(""));
        assert_eq!(parse("'héllo 😀'").unwrap(), json!("héllo 😀"));
        assert_eq!(err("'abc").offset, 4);
        assert_eq!(err("'ab\ncd'").message, "unterminated string literal");
        assert_eq!(err("'ab\ncd'").offset, 0);
        assert_eq!(err("'''abc''").offset, 8);
    }

    #[test]
    fn escapes() {
        let cases = [
            (r"'\\'", "\\"),
            (r"'\''", "'"),
            (r#"'\"'"#, "\""),
            (r"'\n\r\t'", "\n\r\t"),
            (r"'\b\f\v\a\0'", "\x08\x0c\x0b\x07\0"),
            (r"'\101\60\1010'", "A0A0"),
            (r"'\777'", "\u{1ff}"),
            (r"'\x41\x7f\xff'", "A\x7f\u{ff}"),
            (r"'\u00e9\u2028'", "é\u{2028}"),
            (r"'\U0001F600'", "😀"),
            (r"'\N{EM DASH}'", "\\N{EM DASH}"),
            (r"'\q\ \%'", "\\q\\ \\%"),
            (r"'\é'", "\\é"),
            ("'a\\\nb'", "ab"),
            ("'a\\\r\nb'", "ab"),
            (r"'\ud800'", "\u{fffd}"),
            (r"'\ud83d\ude00'", "\u{fffd}\u{fffd}"),
            (r"'\U0000dfff'", "\u{fffd}"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), json!(expected), "{text}");
        }
        assert_eq!(err(r"'\x4g'").offset, 1);
        assert_eq!(err(r"'\x4g'").message, "truncated escape sequence");
        assert_eq!(err(r"'\u12'").offset, 1);
        assert_eq!(err(r"'\U00110000'").offset, 1);
        assert_eq!(err(r"'abc\").offset, 5);
    }

    #[test]
    fn prefixes() {
        let cases = [
            (r"r'\n\''", r"\n\'"),
            (r"R'\\'", r"\\"),
            (r"r'\x41\N{X}'", r"\x41\N{X}"),
            ("r'a\\\nb'", "a\\\nb"),
            (r"u'\u00e9'", "é"),
            (r"U'x'", "x"),
            (r"b'\x41\xff\x00'", "A\u{fffd}\0"),
            (r"b'\xc3\xa9'", "é"),
            (r"b'\u00e9\N{X}'", r"\u00e9\N{X}"),
            (r"b'\777'", "\u{fffd}"),
            (r"B'abc'", "abc"),
            (r"br'\x41'", r"\x41"),
            (r"Rb'\n'", r"\n"),
            (r"bR'''a\''''", r"a\'"),
            ("b\"it's\"", "it's"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), json!(expected), "{text}");
        }
        assert_eq!(err("f'x'").message, "f-strings are not literals");
        assert_eq!(err("rf'x'").offset, 0);
        assert_eq!(err("ub'x'").message, "invalid string prefix");
        assert_eq!(err("x'a'").offset, 0);
        assert_eq!(err(r"r'\'").offset, 4);
    }

    #[test]
    fn concatenation() {
        assert_eq!(parse("'a' 'b'").unwrap(), json!("ab"));
        assert_eq!(parse("'a''b'").unwrap(), json!("ab"));
        assert_eq!(parse("'a' \"b\" r'\\c' u'd'").unwrap(), json!("ab\\cd"));
        assert_eq!(parse("b'a' rb'b'").unwrap(), json!("ab"));
        assert_eq!(parse("['a' 'b', 'c']").unwrap(), json!(["ab", "c"]));
        assert_eq!(parse("('a'\n 'b')").unwrap(), json!("ab"));
        assert_eq!(err("'a' b'b'").message, "cannot mix bytes and str literals");
        assert_eq!(err("'a' b'b'").offset, 4);
        assert_eq!(err("'a' f'b'").offset, 4);
        let (value, consumed) = parse_prefix("'a' 'b' and more").unwrap();
        assert_eq!((value, consumed), (json!("ab"), 7));
    }

    // ---- containers ----

    #[test]
    fn lists_tuples_sets() {
        assert_eq!(parse("[]").unwrap(), json!([]));
        assert_eq!(parse("[1, 'a', None,]").unwrap(), json!([1, "a", null]));
        assert_eq!(parse("()").unwrap(), json!([]));
        assert_eq!(parse("( )").unwrap(), json!([]));
        assert_eq!(parse("(1,)").unwrap(), json!([1]));
        assert_eq!(parse("(1, 2)").unwrap(), json!([1, 2]));
        assert_eq!(parse("(1, (2, 3), [4])").unwrap(), json!([1, [2, 3], [4]]));
        assert_eq!(parse("(1)").unwrap(), json!(1));
        assert_eq!(parse("((('x')))").unwrap(), json!("x"));
        assert_eq!(parse("{1, 2}").unwrap(), json!([1, 2]));
        assert_eq!(parse("{'a'}").unwrap(), json!(["a"]));
        assert_eq!(parse("{'a', 'b',}").unwrap(), json!(["a", "b"]));
        assert_eq!(parse("{}").unwrap(), json!({}));
        assert_eq!(parse("{ 'a' : 1 , }").unwrap(), json!({"a": 1}));
        assert_eq!(err("[,]").offset, 1);
        assert_eq!(err("[1,,]").offset, 3);
        assert_eq!(err("[1 2]").message, "expected ',' or ']'");
        assert_eq!(err("[1 2]").offset, 3);
        assert_eq!(err("(1 2)").offset, 3);
        assert_eq!(err("{1 2}").message, "expected ':', ',' or '}'");
        assert_eq!(err("{1, 2: 3}").offset, 5);
        assert_eq!(err("(,)").offset, 1);
        assert_eq!(err("[1]]").offset, 3);
        assert_eq!(err("[1)").offset, 2);
    }

    #[test]
    fn dicts() {
        assert_eq!(
            parse("{'b': 1, 'a': 2, 'c': {'z': [], 'y': ()}}").unwrap(),
            json!({"b": 1, "a": 2, "c": {"z": [], "y": []}})
        );
        // A repeated key keeps its place and takes the last value, as in Python.
        let value = parse("{'a': 1, 'b': 2, 'a': 3}").unwrap();
        assert_eq!(value, json!({"a": 3, "b": 2}));
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b"]);
        // Non-string keys become their repr.
        assert_eq!(
            parse("{1: 'a', -2: 'b', 0x10: 'c', None: 'd', True: 'e', False: 'f', 1.5: 'g', (1, 'x'): 'h', inf: 'i', b'k': 'j'}")
                .unwrap(),
            json!({"1": "a", "-2": "b", "16": "c", "None": "d", "True": "e", "False": "f", "1.5": "g", "(1, 'x')": "h", "inf": "i", "k": "j"})
        );
        let e = err("{'a': 1, 'b' 2}");
        assert_eq!(e.offset, 13);
        assert_eq!(e.to_string(), "at byte 13: expected ':' after dict key");
        let e = err("{'a': 1 'b': 2}");
        assert_eq!(
            e.to_string(),
            "at byte 8: expected ',' or '}' after dict value"
        );
        assert_eq!(err("{'a': }").offset, 6);
        assert_eq!(err("{'a':: 1}").offset, 5);
        assert_eq!(err("{'a': 1,, }").offset, 8);
        assert_eq!(err("{'a': 1").offset, 7);
        assert_eq!(
            err("{'a': 1").message,
            "unexpected end of input, expected ',' or '}'"
        );
    }

    #[test]
    fn trailing_text() {
        assert_eq!(parse_prefix("[1] [2]").unwrap(), (json!([1]), 3));
        assert_eq!(parse_prefix("  'x'  rest").unwrap(), (json!("x"), 5));
        assert_eq!(parse_prefix("None.").unwrap(), (json!(null), 4));
        assert_eq!(err("[1] [2]").offset, 4);
        assert_eq!(
            err("1 2").to_string(),
            "at byte 2: unexpected text after the literal"
        );
        assert_eq!(parse(" [1]\n").unwrap(), json!([1]));
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let mixed = format!(
            "{}1{}",
            "({[".repeat(MAX_DEPTH / 3) + "(",
            ")".to_owned() + &"]})".repeat(MAX_DEPTH / 3)
        );
        assert!(parse(&mixed).is_ok(), "{mixed}");
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let e = err(&too_deep);
        assert_eq!(e.offset, MAX_DEPTH);
        assert_eq!(e.message, "containers nested deeper than 64");
        let dict_deep = "{'a': ".repeat(MAX_DEPTH + 1);
        assert_eq!(err(&dict_deep).offset, 6 * MAX_DEPTH);
    }

    #[test]
    fn very_deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "(", "{", "{1: ", "{'k': ["] {
            let text = open.repeat(10_000);
            assert!(parse(&text).is_err());
            assert!(parse_prefix(&text).is_err());
            assert!(parse_lenient(&text).is_err(), "{open}");
        }
        let closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(err(&closed).offset, MAX_DEPTH);
    }

    #[test]
    fn large_inputs() {
        // These must not be quadratic; each is about 1 MiB.
        let long_string = format!("'{}'", "ab\\n".repeat(260_000));
        assert_eq!(
            parse(&long_string).unwrap().as_str().unwrap().len(),
            780_000
        );
        let many = format!("[{}]", "12345, ".repeat(150_000));
        assert_eq!(parse(&many).unwrap().as_array().unwrap().len(), 150_000);
        let keys = format!(
            "{{{}}}",
            (0..60_000)
                .map(|i| format!("{i}: ({i},), "))
                .collect::<String>()
        );
        assert_eq!(parse(&keys).unwrap().as_object().unwrap().len(), 60_000);
        let digits = "9".repeat(1 << 20);
        assert_eq!(parse(&digits).unwrap().to_string(), digits);
        let hexes = format!("[{}]", format!("0x{}, ", "f".repeat(1024)).repeat(1000));
        assert_eq!(parse(&hexes).unwrap().as_array().unwrap().len(), 1000);
        let truncated = &many[..many.len() - 10];
        assert!(parse_lenient(truncated).unwrap().truncated);
    }

    // ---- lenient ----

    #[test]
    fn lenient_token_invalidated_cut_at_120_bytes() {
        let text = format!("{}...", &TOKEN_INVALIDATED[..120]);
        let lenient = parse_lenient(&text).unwrap();
        assert!(lenient.truncated);
        assert_eq!(lenient.consumed, text.len());
        assert_eq!(
            lenient.value,
            json!({"error": {"message": "Your authentication token has been invalidated. Please try signing in again."}})
        );
        assert!(parse(&text).is_err());
        assert!(parse_prefix(&text).is_err());
        // Cut without a mark, at every byte: always salvageable, always truncated.
        for cut in 1..TOKEN_INVALIDATED.len() {
            let lenient = parse_lenient(&TOKEN_INVALIDATED[..cut]).unwrap();
            assert!(lenient.truncated, "{cut}");
            assert!(lenient.value.is_object());
        }
        let full = parse_lenient(TOKEN_INVALIDATED).unwrap();
        assert!(!full.truncated);
        assert_eq!(full.consumed, TOKEN_INVALIDATED.len());
    }

    #[test]
    fn lenient_drops_unfinished_parts() {
        let cases = [
            ("{'a': 'x', 'b': 'unfinished", json!({"a": "x"})),
            ("{'a': 'x', 'b': 'unfinished...", json!({"a": "x"})),
            ("{'a': 'x', 'b", json!({"a": "x"})),
            ("{'a': 'x', 'b'", json!({"a": "x"})),
            ("{'a': 'x', 'b':", json!({"a": "x"})),
            ("{'a': 'x', 'b': ", json!({"a": "x"})),
            ("{'a': 'x', ", json!({"a": "x"})),
            ("{'a': 'x'", json!({"a": "x"})),
            ("{'a': 'x'...", json!({"a": "x"})),
            ("{'a': 'x' …", json!({"a": "x"})),
            ("{'a': 'x', 'status': 40", json!({"a": "x"})),
            ("{'a': 'x', 'status': 40...", json!({"a": "x"})),
            (
                "{'a': 'x', 'status': 401 ",
                json!({"a": "x", "status": 401}),
            ),
            // The cut may have shortened the number.
            ("{'a': 'x', 'status': 401...  \n", json!({"a": "x"})),
            ("{'a': 'x', 'p': Non", json!({"a": "x"})),
            ("{'a': 'x', 'p': Non...", json!({"a": "x"})),
            ("{'a': 'x', 'p': None", json!({"a": "x", "p": null})),
            ("{'a': 'x', 'p': -", json!({"a": "x"})),
            ("{'a': 'x', 'p': -in", json!({"a": "x"})),
            ("{'a': 'x', 'p': 1e", json!({"a": "x"})),
            ("{'a': 'x', 'p': b", json!({"a": "x"})),
            ("{'a': 'x', 'p': '\\x4", json!({"a": "x"})),
            ("{'a': 'x', 'p': '\\", json!({"a": "x"})),
            ("{'a': {'b': [1, (2, 'c", json!({"a": {"b": [1, [2]]}})),
            ("{'a': {'b': [1, (2,", json!({"a": {"b": [1, [2]]}})),
            ("{'a': {'b': [1, ('x'", json!({"a": {"b": [1, ["x"]]}})),
            ("{'a': {'b': [1, (", json!({"a": {"b": [1, []]}})),
            ("{'a': {'b': [1, {", json!({"a": {"b": [1, {}]}})),
            ("{'a': {1, 2", json!({"a": [1]})),
            ("{'a': {'k'", json!({"a": {}})),
            ("{(1, 2", json!({})),
            ("{", json!({})),
            ("[", json!([])),
            ("(", json!([])),
            ("['a' 'b", json!([])),
            ("['a' r", json!([])),
            ("['a' ", json!(["a"])),
        ];
        for (text, expected) in cases {
            let lenient = parse_lenient(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                lenient,
                Lenient {
                    value: expected,
                    consumed: text.len(),
                    truncated: true
                },
                "{text}"
            );
            assert!(parse_prefix(text).is_err(), "{text}");
        }
    }

    #[test]
    fn lenient_still_rejects_garbage() {
        for text in [
            "",
            "   ",
            "...",
            "'unfinished",
            "Tr",
            "{'a': 1 'b'",
            "{'a': 1, <Response [401]>",
            "{'a': x",
            "{'a': Tx",
            "[1 2...",
            "{'a': @...",
            "<Response [401]>",
            "{'a': 'b'}x...",
        ] {
            match parse_lenient(text) {
                Err(_) => {}
                // A complete literal followed by text is fine.
                Ok(l) => assert!(!l.truncated && l.consumed < text.len(), "{text}: {l:?}"),
            }
        }
        assert_eq!(parse_lenient("{'a': 1 'b'").unwrap_err().offset, 8);
        assert_eq!(parse_lenient("'unfinished").unwrap_err().offset, 11);
        assert_eq!(parse_lenient("12").unwrap().value, json!(12));
        assert!(parse_lenient("12...").is_ok());
    }

    // ---- the round trip through a Python repr ----

    /// A Python value, as the proptests generate it.
    #[derive(Debug, Clone)]
    enum Py {
        None,
        Bool(bool),
        Int(i64),
        UInt(u64),
        /// A big int: sign and digits (no leading zero).
        BigInt(bool, String),
        Float(f64),
        Str(String),
        List(Vec<Py>),
        Tuple(Vec<Py>),
        /// A non-empty set.
        Set(Vec<Py>),
        Dict(Vec<(String, Py)>),
    }

    /// Python's `repr()` of a str.
    fn py_str_repr(s: &str) -> String {
        use std::fmt::Write;
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        let mut out = String::new();
        out.push(quote);
        for c in s.chars() {
            match c {
                c if c == quote || c == '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\0'..='\x1f' | '\x7f'..='\u{a0}' | '\u{ad}' => {
                    write!(out, "\\x{:02x}", c as u32).unwrap()
                }
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{e000}'..='\u{f8ff}' => {
                    write!(out, "\\u{:04x}", c as u32).unwrap()
                }
                '\u{f0000}'.. => write!(out, "\\U{:08x}", c as u32).unwrap(),
                c => out.push(c),
            }
        }
        out.push(quote);
        out
    }

    /// Python's `repr()` of a finite float.
    fn py_float_repr(f: f64) -> String {
        let sci = format!("{f:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let (sign, mantissa) = match mantissa.strip_prefix('-') {
            Some(m) => ("-", m),
            None => ("", mantissa),
        };
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let decpt = exp + 1;
        if !(-4 < decpt && decpt <= 16) {
            let rest = &digits[1..];
            let dot = if rest.is_empty() { "" } else { "." };
            let exp_sign = if exp < 0 { '-' } else { '+' };
            return format!(
                "{sign}{}{dot}{rest}e{exp_sign}{:02}",
                &digits[..1],
                exp.abs()
            );
        }
        let n = digits.len() as i32;
        if decpt <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{sign}{a}.{b}")
        }
    }

    fn join(items: &[Py]) -> String {
        items
            .iter()
            .map(to_python_repr)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Renders a value as Python's `repr()` would.
    fn to_python_repr(value: &Py) -> String {
        match value {
            Py::None => "None".into(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::Int(i) => i.to_string(),
            Py::UInt(u) => u.to_string(),
            Py::BigInt(negative, digits) => {
                format!("{}{digits}", if *negative { "-" } else { "" })
            }
            Py::Float(f) => py_float_repr(*f),
            Py::Str(s) => py_str_repr(s),
            Py::List(items) => format!("[{}]", join(items)),
            Py::Tuple(items) if items.len() == 1 => format!("({},)", join(items)),
            Py::Tuple(items) => format!("({})", join(items)),
            Py::Set(items) => format!("{{{}}}", join(items)),
            Py::Dict(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py_str_repr(k), to_python_repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The JSON value the parser should make of a Python value.
    fn expected(value: &Py) -> Value {
        match value {
            Py::None => Value::Null,
            Py::Bool(b) => json!(b),
            Py::Int(i) => json!(i),
            Py::UInt(u) => json!(u),
            Py::BigInt(..) | Py::Float(_) => num(&to_python_repr(value)),
            Py::Str(s) => json!(s),
            Py::List(items) | Py::Tuple(items) | Py::Set(items) => {
                Value::Array(items.iter().map(expected).collect())
            }
            Py::Dict(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), expected(v));
                }
                Value::Object(map)
            }
        }
    }

    #[test]
    fn repr_helpers_match_python() {
        // Expected texts printed by CPython 3.11.
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("say \"hi\""), "'say \"hi\"'");
        assert_eq!(py_str_repr("both ' and \""), "'both \\' and \"'");
        assert_eq!(
            py_str_repr("\x00\x1f\x7f\u{80}\u{a0}\u{ad}\u{2028}\u{e000}\u{f0000}é😀\\\t\n\r"),
            r"'\x00\x1f\x7f\x80\xa0\xad\u2028\ue000\U000f0000é😀\\\t\n\r'"
        );
        let floats = [
            (1e16, "1e+16"),
            (1.5e-05, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e-07, "1e-07"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1234567890123456.0, "1234567890123456.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.00012345, "0.00012345"),
        ];
        for (f, text) in floats {
            assert_eq!(py_float_repr(f), text);
        }
        assert_eq!(to_python_repr(&Py::Tuple(vec![Py::Int(1)])), "(1,)");
        assert_eq!(to_python_repr(&Py::Tuple(vec![])), "()");
        assert_eq!(
            to_python_repr(&Py::Set(vec![Py::Int(1), Py::Int(2)])),
            "{1, 2}"
        );
    }

    fn py_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z '\"\\\\\n\r\t\\x00-\\x1f\\x7f\u{80}-\u{ff}\u{2028}\u{e000}\u{f0000}é😀]{0,16}",
        ]
    }

    fn py_value() -> impl Strategy<Value = Py> {
        let leaf = prop_oneof![
            Just(Py::None),
            any::<bool>().prop_map(Py::Bool),
            any::<i64>().prop_map(Py::Int),
            any::<u64>().prop_map(Py::UInt),
            (any::<bool>(), "[1-9][0-9]{19,60}").prop_map(|(n, d)| Py::BigInt(n, d)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Py::Float),
            py_string().prop_map(Py::Str),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Py::List),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Py::Tuple),
                prop::collection::vec(inner.clone(), 1..6).prop_map(Py::Set),
                prop::collection::vec((py_string(), inner), 0..6).prop_map(Py::Dict),
            ]
        })
    }

    fn container() -> impl Strategy<Value = Py> {
        py_value().prop_filter("a container", |v| {
            matches!(v, Py::List(_) | Py::Tuple(_) | Py::Set(_) | Py::Dict(_))
        })
    }

    /// Python-ish fragments, to make random inputs reach deep into the parser.
    fn pythonish() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just("(".to_owned()),
                Just(")".to_owned()),
                Just(": ".to_owned()),
                Just(", ".to_owned()),
                Just("'".to_owned()),
                Just("\"".to_owned()),
                Just("'''".to_owned()),
                Just("\\".to_owned()),
                Just("...".to_owned()),
                "[rbuRBUf]{1,2}".prop_map(|s| s),
                "(None|True|False|inf|nan|Non|Tr)",
                "[-+]?[0-9_.xXoObBeEjJ]{1,6}",
                "\\\\(x[0-9a-g]{0,2}|u[0-9a-f]{0,4}|U[0-9a-f]{0,8}|N\\{[A-Z ]*\\}?|[0-7]{1,3}|.)",
                "[ \t\n]",
                any::<char>().prop_map(String::from),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    fn no_panic(text: &str) {
        let full = parse(text);
        let prefix = parse_prefix(text);
        let lenient = parse_lenient(text);
        if let Ok(value) = &full {
            assert_eq!(prefix.as_ref().map(|p| &p.0), Ok(value));
        }
        if let Ok((value, consumed)) = &prefix {
            assert!(*consumed <= text.len() && text.is_char_boundary(*consumed));
            let l = lenient.as_ref().unwrap();
            assert_eq!(
                (&l.value, l.consumed, l.truncated),
                (value, *consumed, false)
            );
        }
        if let Err(e) = &full {
            assert!(e.offset <= text.len());
        }
        if let Ok(l) = &lenient {
            assert!(l.consumed <= text.len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trips_through_python_repr(value in py_value()) {
            let text = to_python_repr(&value);
            let want = expected(&value);
            prop_assert_eq!(parse(&text).unwrap(), want.clone(), "{}", text);
            let spaced = format!("  {text} . trailing prose");
            prop_assert_eq!(parse_prefix(&spaced).unwrap(), (want.clone(), text.len() + 2));
            let lenient = parse_lenient(&spaced).unwrap();
            prop_assert_eq!(lenient, Lenient { value: want.clone(), consumed: text.len() + 2, truncated: false });
            // The parsed floats are the Python floats.
            if let Py::Float(f) = value {
                prop_assert_eq!(parse(&text).unwrap().as_f64(), Some(f));
            }
            // The same value as the single element of a tuple.
            prop_assert_eq!(parse(&format!("({text},)")).unwrap(), json!([want]));
        }

        #[test]
        fn truncated_reprs_are_salvaged(value in container(), cut in any::<prop::sample::Index>(), ellipsis in any::<bool>()) {
            let text = to_python_repr(&value);
            let boundaries: Vec<usize> = (1..text.len()).filter(|i| text.is_char_boundary(*i)).collect();
            prop_assume!(!boundaries.is_empty());
            let cut = boundaries[cut.index(boundaries.len())];
            let cut_text = format!("{}{}", &text[..cut], if ellipsis { "..." } else { "" });
            let lenient = parse_lenient(&cut_text);
            prop_assert!(lenient.is_ok(), "{:?}: {:?}", cut_text, lenient);
            let lenient = lenient.unwrap();
            prop_assert!(lenient.truncated);
            prop_assert_eq!(lenient.consumed, cut_text.len());
            // Open containers are closed as what they were; a set whose first item was cut is
            // still indistinguishable from a dict.
            match value {
                Py::List(_) | Py::Tuple(_) => prop_assert!(lenient.value.is_array()),
                Py::Dict(_) => prop_assert!(lenient.value.is_object()),
                _ => prop_assert!(
                    lenient.value.is_array() || lenient.value.as_object().is_some_and(Map::is_empty)
                ),
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            no_panic(&text);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            no_panic(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn pythonish_garbage_never_panics(text in pythonish()) {
            no_panic(&text);
        }

        #[test]
        fn mangled_reprs_never_panic(value in py_value(), at in any::<prop::sample::Index>(), insert in pythonish()) {
            let text = to_python_repr(&value);
            let boundaries: Vec<usize> = (0..=text.len()).filter(|i| text.is_char_boundary(*i)).collect();
            let at = boundaries[at.index(boundaries.len())];
            no_panic(&format!("{}{insert}{}", &text[..at], &text[at..]));
            no_panic(&text[..at]);
        }
    }
}
