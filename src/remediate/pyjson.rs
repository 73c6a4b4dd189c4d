//! Writing JSON byte for byte as Python's `json.dumps(value, indent=2) + "\n"` does, because that
//! is how Hermes writes `auth.json` and every byte we did not mean to change must stay as it was.
//!
//! Key order and number text come from the parsed document itself (`serde_json` with
//! `preserve_order` and `arbitrary_precision`); this module adds Python's layout (two-space
//! indent, `", "`-free item separators, `": "` after keys, `{}`/`[]` for empty containers) and
//! its `ensure_ascii` string escapes (everything outside printable ASCII as lowercase `\uXXXX`,
//! surrogate pairs above the BMP). Numbers the warden writes itself use Python's `repr(float)`.

use serde_json::{Number, Value};

/// `json.dumps(value, indent=2) + "\n"`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    out.push('\n');
    out
}

fn write_value(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(text, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(depth + 1, out);
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                newline(depth + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push('}');
        }
    }
}

fn newline(depth: usize, out: &mut String) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', 2 * depth));
}

/// Python's `py_encode_basestring_ascii`.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest text that reads back as the same value, in fixed
/// notation for exponents from -4 to 15 (`1780000000.0`), else scientific (`1e+16`).
/// `None` for NaN and infinities, which JSON cannot hold.
pub fn float(value: f64) -> Option<Number> {
    if !value.is_finite() {
        return None;
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let text = if (-4..16).contains(&exponent) {
        let fixed = format!("{value}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    };
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_escapes_match_python() {
        // python3 -c 'import json; print(json.dumps({"a": [1, 2.50, {}], "b": {"c": [], "d": None},
        //   "e": "caf\u00e9 \U0001f600 \x7f \"q\" \\ \n\t\x01", "f": True}, indent=2))'
        let source = r#"{"a": [1, 2.50, {}], "b": {"c": [], "d": null},
            "e": "café 😀 \u007f \"q\" \\ \n\t\u0001", "f": true}"#;
        let value: Value = serde_json::from_str(source).unwrap();
        let expected = r#"{
  "a": [
    1,
    2.50,
    {}
  ],
  "b": {
    "c": [],
    "d": null
  },
  "e": "caf\u00e9 \ud83d\ude00 \u007f \"q\" \\ \n\t\u0001",
  "f": true
}
"#;
        // 2.50 keeps its text: the document's own numbers are never reformatted.
        assert_eq!(dumps(&value), expected);
    }

    #[test]
    fn float_repr_matches_python() {
        // python3 -c 'print([repr(x) for x in (1780000000.0, 1780000000.123456, 0.0001, 0.00001, 1e16, 123.5e20, 5e-324)])'
        let cases = [
            (1780000000.0, "1780000000.0"),
            (1780000000.123456, "1780000000.123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (123.5e20, "1.235e+22"),
            (5e-324, "5e-324"),
            (-2.5, "-2.5"),
        ];
        for (value, text) in cases {
            assert_eq!(float(value).unwrap().to_string(), text, "{value}");
        }
        assert!(float(f64::NAN).is_none());
    }
}
