//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Every digest and signature of the contract is taken over these bytes, so
//! this module is the single place that decides them. Object members are
//! sorted by their UTF-16 code units, strings are escaped as ECMAScript's
//! `JSON.stringify` does (only `"`, `\\` and control characters; everything
//! else verbatim UTF-8), and numbers use the ECMAScript shortest form
//! (`ryu-js`), which for the contract's integers is plain decimal.

use serde_json::{Map, Value};

/// The JCS bytes of `value`.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

/// The JCS bytes of any serializable value.
pub fn canonical_of<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data types to a Value cannot fail.
    canonical(&serde_json::to_value(value).expect("serializable wire type"))
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, None, out),
    }
}

/// The JCS bytes of the object `map` without its member `skip`: what a
/// signature over "the object minus `signature`" covers, without copying
/// the object first.
pub fn canonical_without(map: &Map<String, Value>, skip: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_object(map, Some(skip), &mut out);
    out
}

fn write_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut members: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .collect();
    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_by_utf16_not_utf8() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts
        // before U+E000; in UTF-8 (F0 9F… vs EE 80…) it would sort after.
        let v = json!({"\u{E000}": 2, "\u{1F600}": 1});
        let s = String::from_utf8(canonical(&v)).unwrap();
        assert_eq!(s, "{\"\u{1F600}\":1,\"\u{E000}\":2}");
    }

    #[test]
    fn escapes_controls_lowercase() {
        let v = json!("\u{1}\u{1f}/");
        assert_eq!(canonical(&v), b"\"\\u0001\\u001f/\"");
    }

    #[test]
    fn numbers_in_ecmascript_form() {
        let v: Value = serde_json::from_str("[1.0, 1e21, -0.5, 123]").unwrap();
        assert_eq!(canonical(&v), b"[1,1e+21,-0.5,123]");
    }
}
