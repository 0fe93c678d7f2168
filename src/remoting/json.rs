//! JSON command bodies. Apache name servers before 4.9.4 (fastjson) write map
//! keys that are integers without quotes (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`);
//! we read that and standard JSON alike, and always write standard JSON.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses a JSON body, accepting unquoted integer map keys.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(first) => match quote_integer_keys(body) {
            Cow::Owned(fixed) => serde_json::from_slice(&fixed),
            Cow::Borrowed(_) => Err(first),
        },
    }
}

/// Standard JSON bytes of `value`.
pub fn to_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail (no non-string map keys
    // reach serde_json: integer keys are written as strings).
    serde_json::to_vec(value).unwrap_or_default()
}

/// Puts quotes around integer object keys outside strings; borrows when there
/// are none.
pub fn quote_integer_keys(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'{' || c == b',' {
            // Look for `<ws> -?digits <ws> :` after the delimiter.
            let mut j = i + 1;
            while j < input.len() && input[j].is_ascii_whitespace() {
                j += 1;
            }
            let start = j;
            if j < input.len() && input[j] == b'-' {
                j += 1;
            }
            let digits = j;
            while j < input.len() && input[j].is_ascii_digit() {
                j += 1;
            }
            let end = j;
            while j < input.len() && input[j].is_ascii_whitespace() {
                j += 1;
            }
            if end > digits && j < input.len() && input[j] == b':' {
                let o = out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(input.len() + 16);
                    v.extend_from_slice(&input[..i]);
                    v
                });
                o.push(c);
                o.extend_from_slice(&input[i + 1..start]);
                o.push(b'"');
                o.extend_from_slice(&input[start..end]);
                o.push(b'"');
                i = end;
                continue;
            }
        }
        if let Some(o) = out.as_mut() {
            o.push(c);
        }
        i += 1;
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct BrokerData {
        broker_name: String,
        broker_addrs: HashMap<i64, String>,
    }

    #[test]
    fn legacy_integer_keys_and_standard_json_both_parse() {
        let legacy = br#"{"brokerName":"broker-a","brokerAddrs":{0:"127.0.0.1:10911", -1 :"x,{1:2}"}}"#;
        let d: BrokerData = from_body(legacy).expect("legacy");
        assert_eq!(d.broker_addrs[&0], "127.0.0.1:10911");
        assert_eq!(d.broker_addrs[&-1], "x,{1:2}", "strings are left alone");
        let standard = br#"{"brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911"}}"#;
        let d: BrokerData = from_body(standard).expect("standard");
        assert_eq!(d.broker_name, "broker-a");
        assert!(matches!(quote_integer_keys(standard), Cow::Borrowed(_)));
        assert!(matches!(quote_integer_keys(b"[1,2,{\"a\":[3,4]}]"), Cow::Borrowed(_)));
        assert!(from_body::<BrokerData>(b"{0:").is_err());
    }

    #[test]
    fn our_encoding_is_standard_json() {
        let mut m = HashMap::new();
        m.insert(0i64, "127.0.0.1:10911".to_string());
        assert_eq!(to_body(&m), br#"{"0":"127.0.0.1:10911"}"#);
    }
}
