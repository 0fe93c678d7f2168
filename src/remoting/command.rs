//! `RemotingCommand`: RocketMQ's one message type for requests and responses,
//! and its two header serializations (JSON and the binary ROCKETMQ form).
//!
//! Frame on the wire: `i32 total length | i32 (serialize type << 24 | header
//! length) | header | body`, all big-endian; total length counts everything
//! after itself.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::{Bytes, BytesMut};

use crate::remoting::code;
use crate::remoting::header::{CommandHeader, HeaderError};

/// Flag bit: this command is a response (RocketMQ: RPC_TYPE).
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit: no response is expected (RocketMQ: RPC_ONEWAY).
pub const FLAG_ONEWAY: i32 = 1 << 1;

/// The protocol version we send: the one Apache's 4.9.8 Java client sends.
pub const CURRENT_VERSION: i32 = 409;

/// Default largest frame accepted (RocketMQ: `com.rocketmq.remoting.frameMaxLength`).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// How a command's header is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeType {
    #[default]
    Json = 0,
    RocketMq = 1,
}

impl SerializeType {
    pub fn name(self) -> &'static str {
        match self {
            SerializeType::Json => "JSON",
            SerializeType::RocketMq => "ROCKETMQ",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Some(SerializeType::Json),
            "ROCKETMQ" => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// The sender's language (RocketMQ: `LanguageCode`), kept as its wire byte so
/// codes we do not know survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanguageCode(pub u8);

const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST",
    "NODE_JS",
];

impl LanguageCode {
    pub const JAVA: LanguageCode = LanguageCode(0);
    pub const CPP: LanguageCode = LanguageCode(1);
    pub const OTHER: LanguageCode = LanguageCode(7);
    pub const RUST: LanguageCode = LanguageCode(12);

    pub fn name(self) -> &'static str {
        LANGUAGE_NAMES.get(self.0 as usize).copied().unwrap_or("OTHER")
    }
    /// The code for a JSON `language` name; unknown names become OTHER.
    pub fn from_name(name: &str) -> Self {
        LANGUAGE_NAMES.iter().position(|n| *n == name).map_or(LanguageCode::OTHER, |i| LanguageCode(i as u8))
    }
}

/// Where one key or value of [`ExtFields`] lives.
#[derive(Debug, Clone, Copy)]
enum Text {
    /// A range of the decoded header's bytes (checked UTF-8 when decoded).
    Shared(u32, u32),
    /// A range of the owned text.
    Owned(u32, u32),
}

/// The `extFields` map: insertion-ordered so a binary header re-encodes to the
/// bytes it was decoded from. Decoded keys and values stay in the frame's
/// buffer, and text set later is appended to one owned string (no allocation
/// per field); headers hold a few dozen fields at most, so a linear scan
/// beats hashing.
#[derive(Clone, Default)]
pub struct ExtFields {
    shared: Bytes,
    owned: String,
    entries: Vec<(Text, Text)>,
}

impl ExtFields {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map whose decoded text lives in `shared`.
    pub(crate) fn decoded_from(shared: Bytes) -> Self {
        ExtFields { shared, owned: String::new(), entries: Vec::with_capacity(16) }
    }

    fn text(&self, t: Text) -> &str {
        match t {
            Text::Shared(a, b) => {
                self.shared.get(a as usize..b as usize).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("")
            }
            Text::Owned(a, b) => self.owned.get(a as usize..b as usize).unwrap_or(""),
        }
    }

    fn raw(&self, t: Text) -> &[u8] {
        match t {
            Text::Shared(a, b) => self.shared.get(a as usize..b as usize).unwrap_or(&[]),
            Text::Owned(a, b) => self.owned.as_bytes().get(a as usize..b as usize).unwrap_or(&[]),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        // The first byte settles most misses without a call to memcmp (the
        // V2 send header's keys are single letters).
        self.entries.iter().position(|(k, _)| {
            let k = self.raw(*k);
            k.len() == key.len() && k.first() == key.first() && k == key
        })
    }

    /// Room for `n` more fields, so a typed header's fields go in without regrowing.
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    /// Appends what `write` writes to the owned text and returns its range.
    fn own_with(&mut self, write: impl FnOnce(&mut String)) -> Text {
        if self.owned.capacity() == 0 {
            // A send header's keys and values (properties included) fit.
            self.owned.reserve(512);
        }
        let start = self.owned.len();
        write(&mut self.owned);
        Text::Owned(start as u32, self.owned.len() as u32)
    }

    fn own(&mut self, s: &str) -> Text {
        self.own_with(|o| o.push_str(s))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.text(self.entries[i].1))
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let value = value.as_ref();
        self.insert_with(key.as_ref(), |o| o.push_str(value));
    }

    /// Sets `key` to what `write` appends to the string it is given (lets
    /// numbers be formatted in place), replacing an earlier value.
    pub fn insert_with(&mut self, key: &str, write: impl FnOnce(&mut String)) {
        let v = self.own_with(write);
        match self.position(key) {
            Some(i) => self.entries[i].1 = v,
            None => {
                let k = self.own(key);
                self.entries.push((k, v));
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let (_, v) = self.entries.remove(i);
        Some(self.text(v).to_string())
    }

    /// Keys as bytes and values as text: lets typed headers match keys
    /// without checking their UTF-8.
    pub fn iter_raw_keys(&self) -> impl Iterator<Item = (&[u8], &str)> {
        self.entries.iter().map(|(k, v)| (self.raw(*k), self.text(*v)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (self.text(*k), self.text(*v)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a pair decoded from `self.shared[range]`s, or owned text when
    /// the bytes were not UTF-8 or not in the buffer.
    pub(crate) fn push_decoded(&mut self, key: TextIn, value: TextIn) {
        let k = self.place(key);
        let v = self.place(value);
        self.entries.push((k, v));
    }

    fn place(&mut self, t: TextIn) -> Text {
        match t {
            TextIn::Range(a, b) => Text::Shared(a as u32, b as u32),
            TextIn::Owned(s) => self.own(&s),
        }
    }
}

/// Text found while decoding: a range of the header buffer or a new string.
pub(crate) enum TextIn {
    Range(usize, usize),
    Owned(String),
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}
impl Eq for ExtFields {}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A command body: one buffer, or several (a pull reply's stored messages,
/// each a slice of a mapped file) written to the socket one after another.
#[derive(Clone, Default)]
pub enum Body {
    #[default]
    Empty,
    One(Bytes),
    Many(Vec<Bytes>),
}

impl Body {
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Many(v) => v.iter().map(Bytes::len).sum(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn segments(&self) -> &[Bytes] {
        match self {
            Body::Empty => &[],
            Body::One(b) => std::slice::from_ref(b),
            Body::Many(v) => v,
        }
    }
    /// The body as one buffer (copies only a multi-segment body).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Body::Empty => Cow::Borrowed(&[]),
            Body::One(b) => Cow::Borrowed(b),
            Body::Many(v) => Cow::Owned(v.concat()),
        }
    }
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b.clone(),
            Body::Many(v) => Bytes::from(v.concat()),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.len())
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        if v.is_empty() { Body::Empty } else { Body::One(Bytes::from(v)) }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        if b.is_empty() { Body::Empty } else { Body::One(b) }
    }
}

/// Why bytes could not be decoded as a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(0);

/// A request or a response.
#[derive(Debug, Clone)]
pub struct RemotingCommand {
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    /// Pairs a response with its request.
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    pub body: Body,
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    pub(crate) fn new(code: i32, flag: i32, opaque: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::RUST,
            version: CURRENT_VERSION,
            opaque,
            flag,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Body::Empty,
            serialize_type: SerializeType::Json,
        }
    }

    /// A request with a fresh opaque and no header fields.
    pub fn request(code: i32) -> Self {
        Self::new(code, 0, NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed))
    }

    /// A request carrying the typed `header`.
    pub fn request_with<H: CommandHeader>(code: i32, header: &H) -> Self {
        let mut cmd = Self::request(code);
        header.write_to(&mut cmd.ext_fields);
        cmd
    }

    /// A response (its opaque and serialization are set when it is sent as
    /// the answer to a request).
    pub fn response(code: i32, remark: impl Into<Option<String>>) -> Self {
        let mut cmd = Self::new(code, FLAG_RESPONSE, 0);
        cmd.remark = remark.into();
        cmd
    }

    /// An error answer: `code` with a remark that says what was wrong.
    pub fn error(code: i32, remark: impl Into<String>) -> Self {
        Self::response(code, Some(remark.into()))
    }

    /// A SUCCESS response with nothing more.
    pub fn success() -> Self {
        Self::response(code::response::SUCCESS, None)
    }

    /// A SUCCESS response carrying the typed `header`.
    pub fn success_with<H: CommandHeader>(header: &H) -> Self {
        let mut cmd = Self::response(code::response::SUCCESS, None);
        header.write_to(&mut cmd.ext_fields);
        cmd
    }

    /// Makes this response answer `request`: same opaque, same serialization.
    pub fn answering(mut self, request: &RemotingCommand) -> Self {
        self.flag |= FLAG_RESPONSE;
        self.opaque = request.opaque;
        self.serialize_type = request.serialize_type;
        self
    }

    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = t;
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// Reads the typed header from `extFields`.
    pub fn header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::read_from(&self.ext_fields)
    }

    /// Writes the typed header into `extFields`.
    pub fn set_header<H: CommandHeader>(&mut self, header: &H) {
        header.write_to(&mut self.ext_fields);
    }

    /// The request or response code's Apache name, for messages.
    pub fn code_name(&self) -> String {
        let name = if self.is_response() { code::response::name(self.code) } else { code::request::name(self.code) };
        code::label(name, self.code)
    }

    // ---- encoding ----

    /// The frame up to the body: length prefix, type/length word and header.
    /// The body's segments follow it on the wire unchanged.
    pub fn encode_header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[0u8; 8]);
        match self.serialize_type {
            SerializeType::Json => self.write_json_header(&mut out),
            SerializeType::RocketMq => self.write_rocketmq_header(&mut out),
        }
        let header_len = out.len() - 8;
        let total = 4 + header_len + self.body.len();
        out[0..4].copy_from_slice(&(total as u32).to_be_bytes());
        let mark = ((self.serialize_type as u32) << 24) | (header_len as u32 & 0x00ff_ffff);
        out[4..8].copy_from_slice(&mark.to_be_bytes());
        out
    }

    /// The whole frame in one buffer (tests, small commands).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_header();
        for seg in self.body.segments() {
            out.extend_from_slice(seg);
        }
        out
    }

    fn write_json_header(&self, out: &mut Vec<u8>) {
        // Keys in the order Apache's Java encoder writes them (alphabetical).
        out.extend_from_slice(b"{\"code\":");
        push_int(out, self.code);
        if !self.ext_fields.is_empty() {
            out.extend_from_slice(b",\"extFields\":{");
            for (i, (k, v)) in self.ext_fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                write_json_str(out, v);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"flag\":");
        push_int(out, self.flag);
        out.extend_from_slice(b",\"language\":\"");
        out.extend_from_slice(self.language.name().as_bytes());
        out.extend_from_slice(b"\",\"opaque\":");
        push_int(out, self.opaque);
        if let Some(r) = &self.remark {
            out.extend_from_slice(b",\"remark\":");
            write_json_str(out, r);
        }
        out.extend_from_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
        push_int(out, self.version);
        out.push(b'}');
    }

    fn write_rocketmq_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.code as i16).to_be_bytes());
        out.push(self.language.0);
        out.extend_from_slice(&(self.version as i16).to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.flag.to_be_bytes());
        match &self.remark {
            Some(r) => {
                out.extend_from_slice(&(r.len() as i32).to_be_bytes());
                out.extend_from_slice(r.as_bytes());
            }
            None => out.extend_from_slice(&0i32.to_be_bytes()),
        }
        let len_at = out.len();
        out.extend_from_slice(&0i32.to_be_bytes());
        for (k, v) in self.ext_fields.iter() {
            out.extend_from_slice(&(k.len() as i16).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        let ext_len = (out.len() - len_at - 4) as i32;
        out[len_at..len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
    }

    // ---- decoding ----

    /// Decodes one frame given without its 4-byte length prefix. The body is
    /// a slice of `frame` (no copy).
    pub fn decode(frame: Bytes) -> Result<Self, CodecError> {
        if frame.len() < 4 {
            return err(format!("frame of {} bytes is shorter than its header-length word", frame.len()));
        }
        let mark = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let header_len = (mark & 0x00ff_ffff) as usize;
        if header_len > frame.len() - 4 {
            return err(format!("header length {header_len} exceeds the frame ({} bytes)", frame.len()));
        }
        let header = frame.slice(4..4 + header_len);
        let mut cmd = match mark >> 24 {
            0 => crate::remoting::json_header::decode(header)?,
            1 => decode_rocketmq_header(header)?,
            t => return err(format!("unknown header serialize type {t}")),
        };
        let body = frame.slice(4 + header_len..);
        cmd.body = body.into();
        Ok(cmd)
    }

    /// Decodes a whole frame including its length prefix.
    pub fn decode_frame(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() < 4 {
            return err("frame shorter than its length prefix");
        }
        let total = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if total != bytes.len() - 4 {
            return err(format!("length prefix {total} does not match the {} bytes after it", bytes.len() - 4));
        }
        Self::decode(Bytes::copy_from_slice(&bytes[4..]))
    }
}

/// Appends `v` in decimal.
fn push_int(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(crate::remoting::header::decimal(v.into(), &mut [0; 40]));
}

/// Writes `s` as a JSON string; control characters (the property
/// separators \u0001 and \u0002 among them) as `\u00XX`.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most keys and values need no escape: one check, one copy.
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Big-endian reader over a header that reports truncation as an error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CodecError> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => err(format!("binary header truncated reading {what} ({n} bytes at {})", self.pos)),
        }
    }
    fn i16(&mut self, what: &str) -> Result<i16, CodecError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self, what: &str) -> Result<i32, CodecError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, len: i64, what: &str) -> Result<String, CodecError> {
        if len < 0 {
            return err(format!("negative length {len} for {what}"));
        }
        Ok(String::from_utf8_lossy(self.take(len as usize, what)?).into_owned())
    }
    /// The range of the next `len` bytes, or owned text if they are not UTF-8.
    fn text(&mut self, len: i64, what: &str) -> Result<TextIn, CodecError> {
        if len < 0 {
            return err(format!("negative length {len} for {what}"));
        }
        let start = self.pos;
        let bytes = self.take(len as usize, what)?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(_) => TextIn::Range(start, start + bytes.len()),
            Err(_) => TextIn::Owned(String::from_utf8_lossy(bytes).into_owned()),
        })
    }
}

fn decode_rocketmq_header(h: Bytes) -> Result<RemotingCommand, CodecError> {
    let mut r = Reader { buf: &h, pos: 0 };
    let code = r.i16("code")? as i32;
    let language = LanguageCode(r.take(1, "language")?[0]);
    let version = r.i16("version")? as i32;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark = if remark_len > 0 { Some(r.string(remark_len as i64, "remark")?) } else { None };
    let ext_len = r.i32("extFields length")?;
    if ext_len < 0 {
        return err(format!("negative extFields length {ext_len}"));
    }
    let ext_end = r.pos.saturating_add(ext_len as usize);
    if ext_end > h.len() {
        return err(format!("binary header truncated: extFields of {ext_len} bytes at {}", r.pos));
    }
    let mut ext = ExtFields::decoded_from(h.clone());
    let mut er = Reader { buf: &h[..ext_end], pos: r.pos };
    while er.pos < ext_end {
        let kl = er.i16("ext key length")?;
        let k = er.text(kl as i64, "ext key")?;
        let vl = er.i32("ext value length")?;
        let v = er.text(vl as i64, "ext value")?;
        ext.push_decoded(k, v);
    }
    let mut cmd = RemotingCommand::new(code, flag, opaque);
    cmd.language = language;
    cmd.version = version;
    cmd.remark = remark;
    cmd.ext_fields = ext;
    cmd.serialize_type = SerializeType::RocketMq;
    Ok(cmd)
}

/// Cuts frames out of a byte stream.
pub struct FrameDecoder {
    max_frame: usize,
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    /// Takes the next whole frame (without its length prefix) off the front of
    /// `buf`; `Ok(None)` when more bytes are needed. An error means the stream
    /// cannot be trusted any more and its connection must be closed.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let total = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if total < 4 {
            return err(format!("frame length {total} is below the 4-byte minimum"));
        }
        if total > self.max_frame {
            return err(format!("frame length {total} exceeds the maximum of {} bytes", self.max_frame));
        }
        if buf.len() < 4 + total {
            buf.reserve(4 + total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(4 + total);
        let _ = frame.split_to(4);
        Ok(Some(frame.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: SerializeType) -> RemotingCommand {
        let mut c = RemotingCommand::request(code::request::SEND_MESSAGE_V2).with_serialize_type(t);
        c.ext_fields.insert("a", "group");
        c.ext_fields.insert("i", "TAGS\u{1}TagA\u{2}KEYS\u{1}k \"quoted\"\u{2}");
        c.remark = Some("héllo".into());
        c.body = Body::from(b"body bytes".to_vec());
        c
    }

    #[test]
    fn both_serializations_round_trip_every_field() {
        for t in [SerializeType::Json, SerializeType::RocketMq] {
            let c = sample(t);
            let bytes = c.encode();
            let d = RemotingCommand::decode_frame(&bytes).expect("decodes");
            assert_eq!(d.code, c.code);
            assert_eq!(d.opaque, c.opaque);
            assert_eq!(d.flag, c.flag);
            assert_eq!(d.version, CURRENT_VERSION);
            assert_eq!(d.language, LanguageCode::RUST);
            assert_eq!(d.remark, c.remark);
            assert_eq!(d.ext_fields, c.ext_fields);
            assert_eq!(&d.body.bytes()[..], b"body bytes");
            assert_eq!(d.serialize_type, t);
            assert_eq!(d.encode(), bytes, "re-encoding is stable");
        }
    }

    #[test]
    fn json_ext_values_may_be_numbers_booleans_or_null() {
        let h = br#"{"code":310,"language":"NODE_JS","opaque":"7","flag":0,"version":121,
            "extFields":{"d":4,"g":1795317470514,"k":false,"x":null,"f":1.5}}"#;
        let mut frame = ((h.len() as u32).to_be_bytes()).to_vec();
        frame.extend_from_slice(h);
        let c = RemotingCommand::decode(Bytes::from(frame)).expect("lenient");
        assert_eq!(c.opaque, 7);
        assert_eq!(c.language.name(), "NODE_JS");
        assert_eq!(c.ext_fields.get("d"), Some("4"));
        assert_eq!(c.ext_fields.get("g"), Some("1795317470514"));
        assert_eq!(c.ext_fields.get("k"), Some("false"));
        assert_eq!(c.ext_fields.get("f"), Some("1.5"));
        assert_eq!(c.ext_fields.get("x"), None);
    }

    #[test]
    fn frame_decoder_waits_for_whole_frames_and_rejects_bad_lengths() {
        let dec = FrameDecoder::new(1024);
        let bytes = sample(SerializeType::RocketMq).encode();
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert_eq!(dec.next_frame(&mut buf), Ok(None));
        buf.extend_from_slice(&bytes[bytes.len() - 1..]);
        buf.extend_from_slice(&bytes);
        assert!(dec.next_frame(&mut buf).expect("ok").is_some());
        assert!(dec.next_frame(&mut buf).expect("ok").is_some());
        assert!(buf.is_empty());
        let mut big = BytesMut::from(&(2000u32.to_be_bytes())[..]);
        assert!(dec.next_frame(&mut big).is_err());
        let mut tiny = BytesMut::from(&(3u32.to_be_bytes())[..]);
        assert!(dec.next_frame(&mut tiny).is_err());
    }

    #[test]
    fn truncated_and_garbled_headers_are_errors() {
        let bytes = sample(SerializeType::RocketMq).encode();
        for cut in 8..bytes.len() - 10 {
            let mut f = bytes[4..cut].to_vec();
            // Claim the header is longer than what remains.
            let hl = (f.len() as u32 + 5) | (1 << 24);
            f[0..4].copy_from_slice(&hl.to_be_bytes());
            assert!(RemotingCommand::decode(Bytes::from(f)).is_err());
        }
        let mut unknown = bytes[4..].to_vec();
        unknown[0] = 9;
        assert!(RemotingCommand::decode(Bytes::from(unknown)).is_err());
    }
}
