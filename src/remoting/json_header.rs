//! Decoding of JSON command headers.
//!
//! Hand-written rather than through serde: the header is one small object
//! with one nested object of scalars, every send and pull carries one, and a
//! scanner that keeps unescaped strings as ranges of the frame does it in a
//! fraction of the time. It is lenient where clients differ: ext field values
//! may be strings, numbers or booleans (kept as their text; null drops the
//! field), integers may arrive as strings, unknown fields are skipped.

use bytes::Bytes;

use crate::remoting::command::{CodecError, ExtFields, LanguageCode, RemotingCommand, SerializeType, TextIn};

/// Deepest nesting skipped inside unknown fields.
const MAX_DEPTH: usize = 32;

/// The first `"` or `\\`: a plain loop over the short strings headers are
/// mostly made of, the vectorised search for the rest.
fn find_quote_or_backslash(b: &[u8]) -> Option<usize> {
    let head = b.len().min(32);
    match b[..head].iter().position(|&c| c == b'"' || c == b'\\') {
        Some(n) => Some(n),
        None => memchr::memchr2(b'"', b'\\', &b[head..]).map(|n| n + head),
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

fn fail<T>(what: &str, at: usize) -> Result<T, CodecError> {
    Err(CodecError(format!("bad JSON command header: {what} at byte {at}")))
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), CodecError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            fail(&format!("expected '{}'", c as char), self.i)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), CodecError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            fail("unknown literal", self.i)
        }
    }

    /// A string: its range when it has no escapes, else the decoded text.
    fn string(&mut self) -> Result<TextIn, CodecError> {
        self.eat(b'"')?;
        let start = self.i;
        match find_quote_or_backslash(&self.b[start..]) {
            Some(n) if self.b[start + n] == b'"' => {
                self.i = start + n + 1;
                Ok(TextIn::Range(start, start + n))
            }
            Some(n) => {
                self.i = start + n;
                self.escaped(start)
            }
            None => fail("unterminated string", start),
        }
    }

    fn escaped(&mut self, start: usize) -> Result<TextIn, CodecError> {
        let mut out: Vec<u8> = Vec::with_capacity(self.i - start + 32);
        out.extend_from_slice(&self.b[start..self.i]);
        // Copy each run up to the next quote or backslash in one go.
        while let Some(n) = find_quote_or_backslash(&self.b[self.i..]) {
            out.extend_from_slice(&self.b[self.i..self.i + n]);
            self.i += n + 1;
            if self.b[self.i - 1] == b'"' {
                return String::from_utf8(out).map(TextIn::Owned).or_else(|_| fail("string is not UTF-8", start));
            }
            let Some(&e) = self.b.get(self.i) else { break };
            self.i += 1;
            match e {
                b'"' | b'\\' | b'/' => out.push(e),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let mut cp = self.hex4()?;
                    if (0xd800..0xdc00).contains(&cp) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                        self.i += 2;
                        let lo = self.hex4()?;
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                    }
                    let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => return fail("bad escape", self.i - 1),
            }
        }
        fail("unterminated string", start)
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let digits = self.b.get(self.i..self.i + 4).ok_or_else(|| CodecError("bad \\u escape".into()))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char).to_digit(16).ok_or_else(|| CodecError("bad \\u escape".into()))?;
            v = v * 16 + x;
        }
        self.i += 4;
        Ok(v)
    }

    /// A number's text.
    fn number(&mut self) -> Result<(usize, usize), CodecError> {
        let start = self.i;
        while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
            self.i += 1;
        }
        if self.i == start { fail("expected a value", start) } else { Ok((start, self.i)) }
    }

    /// A scalar as text (numbers and booleans as written); None for null.
    fn scalar(&mut self) -> Result<Option<TextIn>, CodecError> {
        match self.peek() {
            Some(b'"') => self.string().map(Some),
            Some(b't') => self.literal(b"true").map(|_| Some(TextIn::Owned("true".into()))),
            Some(b'f') => self.literal(b"false").map(|_| Some(TextIn::Owned("false".into()))),
            Some(b'n') => self.literal(b"null").map(|_| None),
            Some(_) => self.number().map(|(a, b)| Some(TextIn::Range(a, b))),
            None => fail("unexpected end", self.i),
        }
    }

    /// Skips any value (unknown fields).
    fn skip(&mut self, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return fail("nesting too deep", self.i);
        }
        match self.peek() {
            Some(b'{') => self.object(|s, _| s.skip(depth + 1)),
            Some(b'[') => {
                self.i += 1;
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return fail("expected ',' or ']'", self.i),
                    }
                }
            }
            _ => self.scalar().map(|_| ()),
        }
    }

    /// Calls `field` for each key of an object; `field` must consume the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, TextIn) -> Result<(), CodecError>) -> Result<(), CodecError> {
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return fail("expected ',' or '}'", self.i),
            }
        }
    }

    fn text_of<'t>(&'t self, t: &'t TextIn) -> &'t [u8] {
        match t {
            TextIn::Range(a, b) => &self.b[*a..*b],
            TextIn::Owned(s) => s.as_bytes(),
        }
    }

    /// An integer written as a number or a string; null as 0.
    fn int(&mut self, name: &str) -> Result<i32, CodecError> {
        let at = self.i;
        let Some(t) = self.scalar()? else { return Ok(0) };
        let text = std::str::from_utf8(self.text_of(&t)).unwrap_or("");
        text.trim().parse().or_else(|_| fail(&format!("{name} is not an integer ({text:?})"), at))
    }
}

/// Decodes a JSON header held in `h`.
pub(crate) fn decode(h: Bytes) -> Result<RemotingCommand, CodecError> {
    let mut cmd = RemotingCommand::new(0, 0, 0);
    cmd.language = LanguageCode::OTHER;
    cmd.version = 0;
    cmd.serialize_type = SerializeType::Json;
    let mut ext = ExtFields::decoded_from(h.clone());
    let mut s = Scanner { b: &h, i: 0 };
    s.object(|s, key| {
        match s.text_of(&key) {
            b"code" => cmd.code = s.int("code")?,
            b"version" => cmd.version = s.int("version")?,
            b"opaque" => cmd.opaque = s.int("opaque")?,
            b"flag" => cmd.flag = s.int("flag")?,
            b"language" => {
                if let Some(t) = s.scalar()? {
                    cmd.language = LanguageCode::from_name(std::str::from_utf8(s.text_of(&t)).unwrap_or(""));
                }
            }
            b"remark" => {
                cmd.remark = s.scalar()?.map(|t| String::from_utf8_lossy(s.text_of(&t)).into_owned());
            }
            b"extFields" => {
                if s.peek() == Some(b'n') {
                    s.literal(b"null")?;
                } else {
                    s.object(|s, k| {
                        if let Some(v) = s.scalar()? {
                            ext.push_decoded(k, v);
                        }
                        Ok(())
                    })?;
                }
            }
            _ => s.skip(0)?,
        }
        Ok(())
    })?;
    if s.peek().is_some() {
        return fail("trailing bytes after the header", s.i);
    }
    cmd.ext_fields = ext;
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(json: &str) -> Result<RemotingCommand, CodecError> {
        decode(Bytes::copy_from_slice(json.as_bytes()))
    }

    #[test]
    fn reads_every_field_and_skips_unknown_ones() {
        let c = dec(r#" {"code":"105", "unknown":{"a":[1,{"b":null}],"c":"}"}, "language":"CPP","opaque":3,
            "flag":0,"remark":"r\"\u00e9\ud83d\ude00","version":63,"serializeTypeCurrentRPC":"JSON",
            "extFields":{"topic":"T","n":-4.5e3,"ok":true,"gone":null,"esc":"a\u0001b"}} "#)
        .expect("valid");
        assert_eq!((c.code, c.opaque, c.version), (105, 3, 63));
        assert_eq!(c.language, LanguageCode::CPP);
        assert_eq!(c.remark.as_deref(), Some("r\"é😀"));
        assert_eq!(c.ext_fields.get("topic"), Some("T"));
        assert_eq!(c.ext_fields.get("n"), Some("-4.5e3"));
        assert_eq!(c.ext_fields.get("ok"), Some("true"));
        assert_eq!(c.ext_fields.get("gone"), None);
        assert_eq!(c.ext_fields.get("esc"), Some("a\u{1}b"));
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "{",
            "{\"code\":}",
            "{\"code\":1,}",
            "{\"code\":\"x\"}",
            "{\"extFields\":{\"a\":\"b}",
            "{\"a\":\"\\q\"}",
            "{} extra",
            &("{\"x\":".to_string() + &"[".repeat(100) + &"]".repeat(100) + "}"),
        ] {
            assert!(dec(bad).is_err(), "accepted {bad:?}");
        }
    }
}
