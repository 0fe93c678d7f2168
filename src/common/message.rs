//! The message model and the stored-message record: the byte layout a
//! CommitLog holds and a pull reply carries (RocketMQ: `MessageDecoder`,
//! `CommitLog.DefaultAppendMessageCallback`).
//!
//! A record, all big-endian: `TOTALSIZE i32 | MAGICCODE i32 | BODYCRC i32 |
//! QUEUEID i32 | FLAG i32 | QUEUEOFFSET i64 | PHYSICALOFFSET i64 | SYSFLAG i32 |
//! BORNTIMESTAMP i64 | BORNHOST | STORETIMESTAMP i64 | STOREHOST |
//! RECONSUMETIMES i32 | PREPARED_TRANSACTION_OFFSET i64 | BODYLENGTH i32 + BODY |
//! TOPICLENGTH (u8, i16 in V2) + TOPIC | PROPERTIESLENGTH i16 + PROPERTIES`.
//! A host is its address bytes (4, or 16 when the sys flag says IPv6) and the
//! port as an i32.
//!
//! Decoding never panics on bad input: every read is bounds-checked.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

pub use property::*;
pub use sys_flag::*;

/// Magic of a record whose topic length is one byte (RocketMQ: MESSAGE_MAGIC_CODE).
pub const MAGIC_CODE_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// Magic of a record whose topic length is an i16 (RocketMQ: MESSAGE_MAGIC_CODE_V2).
pub const MAGIC_CODE_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic of the filler that ends a CommitLog file: only TOTALSIZE (the bytes
/// left in the file) and this magic are written.
pub const BLANK_MAGIC_CODE: i32 = 0xCBD4_3194_u32 as i32;

/// Longest topic written with a one-byte length (V1); longer ones use V2.
pub const MAX_V1_TOPIC_LEN: usize = 127;
/// Longest encoded properties string (their length is an i16).
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

/// Between a property's name and its value (RocketMQ: NAME_VALUE_SEPARATOR).
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Between two properties (RocketMQ: PROPERTY_SEPARATOR).
pub const PROPERTY_SEPARATOR: char = '\u{2}';
/// Between the keys in the KEYS property (RocketMQ: KEY_SEPARATOR).
pub const KEY_SEPARATOR: &str = " ";

/// Property names (RocketMQ: `MessageConst.PROPERTY_*`).
pub mod property {
    pub const KEYS: &str = "KEYS";
    pub const TAGS: &str = "TAGS";
    /// "false" when the sender does not wait for the store to confirm.
    pub const WAIT: &str = "WAIT";
    pub const DELAY: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QID: &str = "REAL_QID";
    pub const TRAN_MSG: &str = "TRAN_MSG";
    pub const PGROUP: &str = "PGROUP";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const BUYER_ID: &str = "BUYER_ID";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const TRANSFER_FLAG: &str = "TRANSFER_FLAG";
    pub const CORRECTION_FLAG: &str = "CORRECTION_FLAG";
    pub const MQ2_FLAG: &str = "MQ2_FLAG";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MSG_REGION: &str = "MSG_REGION";
    pub const TRACE_ON: &str = "TRACE_ON";
    /// The client-made unique id (RocketMQ: PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX).
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// RocketMQ: PROPERTY_CONSUME_START_TIMESTAMP.
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIMESTAMP";
    /// The delay level; the same name as [`DELAY`].
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    /// The broker's cluster, added by the broker when it stores a message.
    pub const CLUSTER: &str = "CLUSTER";
}

/// Bits of a record's SYSFLAG (RocketMQ: `MessageSysFlag`).
pub mod sys_flag {
    pub const COMPRESSED_FLAG: i32 = 1;
    pub const MULTI_TAGS_FLAG: i32 = 1 << 1;
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    pub const TRANSACTION_PREPARED_TYPE: i32 = 1 << 2;
    pub const TRANSACTION_COMMIT_TYPE: i32 = 2 << 2;
    pub const TRANSACTION_ROLLBACK_TYPE: i32 = 3 << 2;
    /// The two transaction-type bits.
    pub const TRANSACTION_MASK: i32 = 3 << 2;
    pub const BORNHOST_V6_FLAG: i32 = 1 << 4;
    pub const STOREHOSTADDRESS_V6_FLAG: i32 = 1 << 5;

    /// The transaction type bits of `flag` (RocketMQ: getTransactionValue).
    pub fn transaction_value(flag: i32) -> i32 {
        flag & TRANSACTION_MASK
    }

    /// `flag` with its transaction type replaced (RocketMQ: resetTransactionValue).
    pub fn reset_transaction_value(flag: i32, kind: i32) -> i32 {
        (flag & !TRANSACTION_MASK) | (kind & TRANSACTION_MASK)
    }
}

/// Why a record, a message id or a message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The bytes end inside a field, or a length field is negative.
    Truncated(String),
    /// MAGICCODE is none of the known ones.
    BadMagic(i32),
    /// The end-of-file filler record; `size` is the bytes left in the file.
    Blank { size: i32 },
    /// TOTALSIZE differs from the length the fields add up to.
    SizeMismatch { declared: i32, actual: usize },
    /// BODYCRC (`expected`) differs from the CRC of the body (`actual`).
    Crc { expected: i32, actual: i32 },
    /// A field is too long for its length prefix.
    TooLarge(String),
    /// Not an offset message id.
    BadMessageId(String),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated(s) => write!(f, "message record truncated: {s}"),
            MessageError::BadMagic(m) => write!(f, "bad message magic code {m:#010x}", m = *m as u32),
            MessageError::Blank { size } => write!(f, "blank (end of file) record of {size} bytes"),
            MessageError::SizeMismatch { declared, actual } => {
                write!(f, "record declares {declared} bytes but its fields take {actual}")
            }
            MessageError::Crc { expected, actual } => {
                write!(f, "body CRC mismatch: record says {expected}, body has {actual}")
            }
            MessageError::TooLarge(s) => write!(f, "message too large: {s}"),
            MessageError::BadMessageId(s) => write!(f, "bad message id: {s}"),
        }
    }
}

impl std::error::Error for MessageError {}

// ---------------------------------------------------------------------------
// Properties

/// A message's properties: a small insertion-ordered map (a message carries
/// a handful, so a linear scan beats hashing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<(String, String)>,
}

impl Properties {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Sets `key`, keeping its place if it was there; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Properties::new();
        p.extend(iter);
        p
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Properties {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// `name \u1 value`, pairs joined by `\u2`, no separator after the last pair:
/// what Apache's 4.9.7 broker stores and its 4.9.8 Java client sends
/// (RocketMQ: messageProperties2String).
pub fn properties_to_string(p: &Properties) -> String {
    let len = p.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut s = String::with_capacity(len);
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            s.push(PROPERTY_SEPARATOR);
        }
        s.push_str(k);
        s.push(NAME_VALUE_SEPARATOR);
        s.push_str(v);
    }
    s
}

/// Parses a properties string leniently: a trailing separator or none, empty
/// items, items without `\u1` and items with an empty name are skipped; a
/// repeated name keeps its last value (RocketMQ: string2messageProperties).
pub fn string_to_properties(s: &str) -> Properties {
    let mut p = Properties::new();
    for item in s.split(PROPERTY_SEPARATOR) {
        if let Some((k, v)) = item.split_once(NAME_VALUE_SEPARATOR)
            && !k.is_empty()
        {
            p.insert(k, v);
        }
    }
    p
}

// ---------------------------------------------------------------------------
// Messages

/// A message as a producer sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub flag: i32,
    pub properties: Properties,
    pub body: Bytes,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message { topic: topic.into(), flag: 0, properties: Properties::new(), body: body.into() }
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }

    pub fn put_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.properties.insert(name, value);
    }

    pub fn clear_property(&mut self, name: &str) -> Option<String> {
        self.properties.remove(name)
    }

    pub fn tags(&self) -> Option<&str> {
        self.property(TAGS)
    }

    pub fn set_tags(&mut self, tags: impl Into<String>) {
        self.put_property(TAGS, tags);
    }

    /// The KEYS property as stored: keys separated by single spaces.
    pub fn keys(&self) -> Option<&str> {
        self.property(KEYS)
    }

    /// The keys one by one.
    pub fn key_list(&self) -> impl Iterator<Item = &str> {
        self.keys().unwrap_or("").split(KEY_SEPARATOR).filter(|k| !k.is_empty())
    }

    /// Sets KEYS to `keys` joined by spaces (a single already-joined string works too).
    pub fn set_keys<I, S>(&mut self, keys: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = keys.into_iter().map(|k| k.as_ref().trim().to_string()).filter(|k| !k.is_empty());
        let joined: Vec<String> = joined.collect();
        self.put_property(KEYS, joined.join(KEY_SEPARATOR));
    }

    /// The delay level; 0 (no delay) when absent or not a number.
    pub fn delay_level(&self) -> i32 {
        self.property(DELAY_TIME_LEVEL).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn set_delay_level(&mut self, level: i32) {
        self.put_property(DELAY_TIME_LEVEL, level.to_string());
    }

    /// Whether the sender waits for the store (WAIT absent means yes)
    /// (RocketMQ: isWaitStoreMsgOK).
    pub fn wait_store_msg_ok(&self) -> bool {
        self.property(WAIT).is_none_or(|v| v != "false")
    }

    pub fn set_wait_store_msg_ok(&mut self, wait: bool) {
        self.put_property(WAIT, if wait { "true" } else { "false" });
    }

    /// The client-made unique id (UNIQ_KEY), which clients show as the message id.
    pub fn unique_key(&self) -> Option<&str> {
        self.property(UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }
}

/// A stored message as decoded (RocketMQ: MessageExt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub message: Message,
    pub queue_id: i32,
    /// The record's TOTALSIZE.
    pub store_size: i32,
    pub queue_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    /// The offset message id made of `store_host` and `commit_log_offset`.
    pub msg_id: String,
    /// The record's PHYSICALOFFSET.
    pub commit_log_offset: i64,
    pub body_crc: i32,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
}

impl MessageExt {
    pub fn topic(&self) -> &str {
        &self.message.topic
    }

    pub fn body(&self) -> &Bytes {
        &self.message.body
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.message.property(name)
    }

    pub fn tags(&self) -> Option<&str> {
        self.message.tags()
    }

    pub fn keys(&self) -> Option<&str> {
        self.message.keys()
    }
}

/// What the broker appends: everything but the fields the CommitLog fills at
/// append time (RocketMQ: MessageExtBrokerInner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageToStore {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub body: Bytes,
    /// Already encoded (see [`properties_to_string`]).
    pub properties: String,
    /// For the ConsumeQueue entry; not part of the record (see [`tags_hash`]).
    pub tags_code: i64,
    /// The host bits are set from `born_host` and `store_host` when encoding.
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
}

impl MessageToStore {
    /// `msg` to be stored in `queue_id`, with its properties encoded and its
    /// tags hashed; sys flag, reconsume times and transaction offset are 0.
    pub fn from_message(
        msg: &Message,
        queue_id: i32,
        born_timestamp: i64,
        born_host: SocketAddr,
        store_host: SocketAddr,
    ) -> Self {
        MessageToStore {
            topic: msg.topic.clone(),
            queue_id,
            flag: msg.flag,
            body: msg.body.clone(),
            properties: properties_to_string(&msg.properties),
            tags_code: msg.tags().map_or(0, tags_hash),
            sys_flag: 0,
            born_timestamp,
            born_host,
            store_host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// Record layout

/// Byte positions in a record, so the CommitLog can patch the fields it
/// knows only at append time into an encoded record.
pub mod layout {
    use super::sys_flag::{BORNHOST_V6_FLAG, STOREHOSTADDRESS_V6_FLAG};
    use super::{MAX_V1_TOPIC_LEN, MessageError};

    pub const TOTAL_SIZE_POS: usize = 0;
    pub const MAGIC_CODE_POS: usize = 4;
    pub const BODY_CRC_POS: usize = 8;
    pub const QUEUE_ID_POS: usize = 12;
    pub const FLAG_POS: usize = 16;
    pub const QUEUE_OFFSET_POS: usize = 20;
    pub const PHYSICAL_OFFSET_POS: usize = 28;
    pub const SYS_FLAG_POS: usize = 36;
    pub const BORN_TIMESTAMP_POS: usize = 40;
    pub const BORN_HOST_POS: usize = 48;
    /// Length of the end-of-file filler actually written (TOTALSIZE + magic).
    pub const BLANK_RECORD_LEN: usize = 8;

    /// Does `record` start with the header of a message of `size` bytes in
    /// queue `queue_id` at `queue_offset`, stored at `physical_offset`? A
    /// cheap check that an index entry points at the record it names.
    pub fn header_matches(record: &[u8], size: i32, queue_id: i32, queue_offset: i64, physical_offset: i64) -> bool {
        let Some(h) = record.get(..SYS_FLAG_POS) else { return false };
        let i32_at = |p: usize| i32::from_be_bytes([h[p], h[p + 1], h[p + 2], h[p + 3]]);
        let i64_at = |p: usize| (i64::from(i32_at(p)) << 32) | i64::from(i32_at(p + 4) as u32);
        let magic = i32_at(MAGIC_CODE_POS);
        i32_at(TOTAL_SIZE_POS) == size
            && (magic == super::MAGIC_CODE_V1 || magic == super::MAGIC_CODE_V2)
            && i32_at(QUEUE_ID_POS) == queue_id
            && i64_at(QUEUE_OFFSET_POS) == queue_offset
            && i64_at(PHYSICAL_OFFSET_POS) == physical_offset
    }

    /// 4 address bytes + port, or 16 + port.
    pub fn host_len(v6: bool) -> usize {
        if v6 { 20 } else { 8 }
    }

    pub fn born_host_len(sys_flag: i32) -> usize {
        host_len(sys_flag & BORNHOST_V6_FLAG != 0)
    }

    pub fn store_host_len(sys_flag: i32) -> usize {
        host_len(sys_flag & STOREHOSTADDRESS_V6_FLAG != 0)
    }

    pub fn store_timestamp_pos(sys_flag: i32) -> usize {
        BORN_HOST_POS + born_host_len(sys_flag)
    }

    pub fn store_host_pos(sys_flag: i32) -> usize {
        store_timestamp_pos(sys_flag) + 8
    }

    pub fn reconsume_times_pos(sys_flag: i32) -> usize {
        store_host_pos(sys_flag) + store_host_len(sys_flag)
    }

    pub fn prepared_transaction_offset_pos(sys_flag: i32) -> usize {
        reconsume_times_pos(sys_flag) + 4
    }

    pub fn body_length_pos(sys_flag: i32) -> usize {
        prepared_transaction_offset_pos(sys_flag) + 8
    }

    /// Whole record length; the topic length takes 2 bytes when the topic is
    /// longer than 127 bytes (V2) (RocketMQ: calMsgLength).
    pub fn record_len(sys_flag: i32, body_len: usize, topic_len: usize, properties_len: usize) -> usize {
        let topic_len_len = if topic_len > MAX_V1_TOPIC_LEN { 2 } else { 1 };
        body_length_pos(sys_flag) + 4 + body_len + topic_len_len + topic_len + 2 + properties_len
    }

    /// Writes QUEUEOFFSET, PHYSICALOFFSET and STORETIMESTAMP into an encoded
    /// record (its own SYSFLAG says where the store timestamp is).
    pub fn patch(
        record: &mut [u8],
        queue_offset: i64,
        physical_offset: i64,
        store_timestamp: i64,
    ) -> Result<(), MessageError> {
        let sys_flag = record
            .get(SYS_FLAG_POS..SYS_FLAG_POS + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(i32::from_be_bytes)
            .ok_or_else(|| MessageError::Truncated(format!("cannot patch a record of {} bytes", record.len())))?;
        put_i64(record, QUEUE_OFFSET_POS, queue_offset)?;
        put_i64(record, PHYSICAL_OFFSET_POS, physical_offset)?;
        put_i64(record, store_timestamp_pos(sys_flag), store_timestamp)
    }

    /// Writes `v` big-endian at `pos`.
    pub fn put_i64(record: &mut [u8], pos: usize, v: i64) -> Result<(), MessageError> {
        let len = record.len();
        let dst = record
            .get_mut(pos..pos.saturating_add(8))
            .ok_or_else(|| MessageError::Truncated(format!("no 8 bytes at {pos} in a record of {len} bytes")))?;
        dst.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }
}

/// `sys_flag` with its two IPv6 bits set from the hosts' address families.
pub fn sys_flag_for_hosts(sys_flag: i32, born_host: SocketAddr, store_host: SocketAddr) -> i32 {
    let mut f = sys_flag & !(BORNHOST_V6_FLAG | STOREHOSTADDRESS_V6_FLAG);
    if born_host.is_ipv6() {
        f |= BORNHOST_V6_FLAG;
    }
    if store_host.is_ipv6() {
        f |= STOREHOSTADDRESS_V6_FLAG;
    }
    f
}

/// BODYCRC: CRC32 of the body with the sign bit cleared (RocketMQ: UtilAll.crc32).
pub fn body_crc(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

fn put_host(out: &mut Vec<u8>, host: SocketAddr) {
    match host.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&i32::from(host.port()).to_be_bytes());
}

/// Encodes a whole record with QUEUEOFFSET and PHYSICALOFFSET 0 (patch them
/// with [`layout::patch`]); the V6 bits of SYSFLAG follow the hosts.
pub fn encode_for_store(m: &MessageToStore, store_timestamp: i64) -> Result<Vec<u8>, MessageError> {
    let topic = m.topic.as_bytes();
    let props = m.properties.as_bytes();
    if m.body.len() > i32::MAX as usize {
        return Err(MessageError::TooLarge(format!("body of {} bytes", m.body.len())));
    }
    if props.len() > MAX_PROPERTIES_LEN {
        return Err(MessageError::TooLarge(format!(
            "properties of {} bytes (at most {MAX_PROPERTIES_LEN})",
            props.len()
        )));
    }
    if topic.len() > i16::MAX as usize {
        return Err(MessageError::TooLarge(format!("topic of {} bytes (at most {})", topic.len(), i16::MAX)));
    }
    let sys_flag = sys_flag_for_hosts(m.sys_flag, m.born_host, m.store_host);
    let len = layout::record_len(sys_flag, m.body.len(), topic.len(), props.len());
    let total = i32::try_from(len).map_err(|_| MessageError::TooLarge(format!("record of {len} bytes")))?;
    let v2 = topic.len() > MAX_V1_TOPIC_LEN;

    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(if v2 { MAGIC_CODE_V2 } else { MAGIC_CODE_V1 }).to_be_bytes());
    out.extend_from_slice(&body_crc(&m.body).to_be_bytes());
    out.extend_from_slice(&m.queue_id.to_be_bytes());
    out.extend_from_slice(&m.flag.to_be_bytes());
    out.extend_from_slice(&0i64.to_be_bytes()); // QUEUEOFFSET
    out.extend_from_slice(&0i64.to_be_bytes()); // PHYSICALOFFSET
    out.extend_from_slice(&sys_flag.to_be_bytes());
    out.extend_from_slice(&m.born_timestamp.to_be_bytes());
    put_host(&mut out, m.born_host);
    out.extend_from_slice(&store_timestamp.to_be_bytes());
    put_host(&mut out, m.store_host);
    out.extend_from_slice(&m.reconsume_times.to_be_bytes());
    out.extend_from_slice(&m.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
    out.extend_from_slice(&m.body);
    if v2 {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    } else {
        out.push(topic.len() as u8);
    }
    out.extend_from_slice(topic);
    out.extend_from_slice(&(props.len() as i16).to_be_bytes());
    out.extend_from_slice(props);
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// The 8 bytes that fill the end of a CommitLog file: TOTALSIZE (the bytes
/// left in the file) and [`BLANK_MAGIC_CODE`].
pub fn blank_record(remaining: i32) -> [u8; layout::BLANK_RECORD_LEN] {
    let mut b = [0u8; layout::BLANK_RECORD_LEN];
    b[..4].copy_from_slice(&remaining.to_be_bytes());
    b[4..].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
    b
}

// ---------------------------------------------------------------------------
// Decoding

/// Big-endian reader that reports reads past the end as errors.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MessageError> {
        let buf = self.buf;
        let pos = self.pos;
        let s = pos.checked_add(n).and_then(|end| buf.get(pos..end)).ok_or_else(|| {
            MessageError::Truncated(format!(
                "{what} needs {n} bytes at {pos}, only {} there",
                buf.len() - pos.min(buf.len())
            ))
        })?;
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], MessageError> {
        let s = self.take(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| MessageError::Truncated(what.to_string()))
    }

    fn u8(&mut self, what: &str) -> Result<u8, MessageError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i16(&mut self, what: &str) -> Result<i16, MessageError> {
        self.array(what).map(i16::from_be_bytes)
    }

    fn i32(&mut self, what: &str) -> Result<i32, MessageError> {
        self.array(what).map(i32::from_be_bytes)
    }

    fn i64(&mut self, what: &str) -> Result<i64, MessageError> {
        self.array(what).map(i64::from_be_bytes)
    }

    /// A length field's bytes; a negative length is an error.
    fn sized(&mut self, len: i64, what: &str) -> Result<&'a [u8], MessageError> {
        let n = usize::try_from(len).map_err(|_| MessageError::Truncated(format!("negative {what} length {len}")))?;
        self.take(n, what)
    }

    /// A host; a port outside 0..=65535 keeps its low 16 bits.
    fn host(&mut self, v6: bool, what: &str) -> Result<SocketAddr, MessageError> {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?))
        };
        let port = self.i32(what)?;
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// Peeks at a record's TOTALSIZE and MAGICCODE.
pub fn record_size(buf: &[u8]) -> Option<(i32, i32)> {
    let size = i32::from_be_bytes(*buf.first_chunk::<4>()?);
    let magic = i32::from_be_bytes(*buf.get(4..)?.first_chunk::<4>()?);
    Some((size, magic))
}

/// A stored record's fields, borrowed from the buffer: what the dispatch to
/// ConsumeQueues reads without building a message (RocketMQ: the fields
/// checkMessageAndReturnSize reads into a DispatchRequest).
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    pub store_size: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a [u8],
    /// The properties string as stored (see [`property_in`]).
    pub properties: &'a [u8],
}

impl RecordView<'_> {
    pub fn topic(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.topic)
    }

    /// One property, without parsing the others.
    pub fn property(&self, name: &str) -> Option<Cow<'_, str>> {
        property_in(self.properties, name)
    }
}

/// The value of `name` in a stored properties string; the last one wins when
/// it repeats, as in [`string_to_properties`].
pub fn property_in<'a>(props: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    let sep = PROPERTY_SEPARATOR as u8;
    let name_end = NAME_VALUE_SEPARATOR as u8;
    props.rsplit(|b| *b == sep).find_map(|item| {
        let i = memchr::memchr(name_end, item)?;
        (i > 0 && &item[..i] == name.as_bytes()).then(|| String::from_utf8_lossy(&item[i + 1..]))
    })
}

/// Reads the record at `buf[0..]` (bytes after it are ignored), checking its
/// magic and that TOTALSIZE matches its fields. With `check_crc` BODYCRC must
/// match the body.
pub fn parse_record(buf: &[u8], check_crc: bool) -> Result<RecordView<'_>, MessageError> {
    let mut r = Reader::new(buf);
    let store_size = r.i32("TOTALSIZE")?;
    let magic = r.i32("MAGICCODE")?;
    let v2 = match magic {
        MAGIC_CODE_V1 => false,
        MAGIC_CODE_V2 => true,
        BLANK_MAGIC_CODE => return Err(MessageError::Blank { size: store_size }),
        other => return Err(MessageError::BadMagic(other)),
    };
    let crc_field = r.i32("BODYCRC")?;
    let queue_id = r.i32("QUEUEID")?;
    let flag = r.i32("FLAG")?;
    let queue_offset = r.i64("QUEUEOFFSET")?;
    let commit_log_offset = r.i64("PHYSICALOFFSET")?;
    let sys_flag = r.i32("SYSFLAG")?;
    let born_timestamp = r.i64("BORNTIMESTAMP")?;
    let born_host = r.host(sys_flag & BORNHOST_V6_FLAG != 0, "BORNHOST")?;
    let store_timestamp = r.i64("STORETIMESTAMP")?;
    let store_host = r.host(sys_flag & STOREHOSTADDRESS_V6_FLAG != 0, "STOREHOST")?;
    let reconsume_times = r.i32("RECONSUMETIMES")?;
    let prepared_transaction_offset = r.i64("PREPARED_TRANSACTION_OFFSET")?;
    let body_len = r.i32("BODYLENGTH")?;
    let body = r.sized(body_len.into(), "BODY")?;
    let topic_len = if v2 { i64::from(r.i16("TOPICLENGTH")?) } else { i64::from(r.u8("TOPICLENGTH")?) };
    let topic = r.sized(topic_len, "TOPIC")?;
    let props_len = r.i16("PROPERTIESLENGTH")?;
    let properties = r.sized(props_len.into(), "PROPERTIES")?;

    if usize::try_from(store_size).ok() != Some(r.pos) {
        return Err(MessageError::SizeMismatch { declared: store_size, actual: r.pos });
    }
    if check_crc {
        let actual = body_crc(body);
        if actual != crc_field {
            return Err(MessageError::Crc { expected: crc_field, actual });
        }
    }
    Ok(RecordView {
        store_size,
        body_crc: crc_field,
        queue_id,
        flag,
        queue_offset,
        commit_log_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    })
}

/// Decodes the record at `buf[0..]` (bytes after it are ignored). Without
/// `read_body` the body is left empty; with `check_crc` BODYCRC must match.
/// A compressed body (COMPRESSED_FLAG) is returned as stored.
pub fn decode(buf: &[u8], read_body: bool, check_crc: bool) -> Result<MessageExt, MessageError> {
    let r = parse_record(buf, check_crc)?;
    let message = Message {
        topic: r.topic().into_owned(),
        flag: r.flag,
        properties: string_to_properties(&String::from_utf8_lossy(r.properties)),
        body: if read_body { Bytes::copy_from_slice(r.body) } else { Bytes::new() },
    };
    Ok(MessageExt {
        message,
        queue_id: r.queue_id,
        store_size: r.store_size,
        queue_offset: r.queue_offset,
        sys_flag: r.sys_flag,
        born_timestamp: r.born_timestamp,
        born_host: r.born_host,
        store_timestamp: r.store_timestamp,
        store_host: r.store_host,
        msg_id: create_message_id(r.store_host, r.commit_log_offset),
        commit_log_offset: r.commit_log_offset,
        body_crc: r.body_crc,
        reconsume_times: r.reconsume_times,
        prepared_transaction_offset: r.prepared_transaction_offset,
    })
}

/// Decodes consecutive records filling `buf` (a pull reply body), checking
/// each body's CRC (RocketMQ: MessageDecoder.decodes).
pub fn decode_all(buf: &[u8], read_body: bool) -> Result<Vec<MessageExt>, MessageError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let m = decode(rest, read_body, true).map_err(|e| match e {
            MessageError::Truncated(s) => MessageError::Truncated(format!("record at {}: {s}", buf.len() - rest.len())),
            other => other,
        })?;
        // decode checked that TOTALSIZE is the (positive) length it read.
        rest = rest.get(m.store_size as usize..).unwrap_or(&[]);
        out.push(m);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Message ids and tags

/// Appends `bytes` to `out` as uppercase hex (the spelling of RocketMQ's ids).
pub fn push_hex_upper(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

/// The broker-made ("offset") message id: store host address bytes, port
/// (i32) and CommitLog offset (i64) as uppercase hex (RocketMQ: createMessageId).
pub fn create_message_id(store_host: SocketAddr, offset: i64) -> String {
    let mut raw = Vec::with_capacity(28);
    put_host(&mut raw, store_host);
    raw.extend_from_slice(&offset.to_be_bytes());
    let mut s = String::with_capacity(raw.len() * 2);
    push_hex_upper(&raw, &mut s);
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The store host and CommitLog offset an offset message id names: 32 hex
/// digits for an IPv4 host, 56 for IPv6 (RocketMQ: decodeMessageId).
pub fn decode_message_id(id: &str) -> Result<(SocketAddr, i64), MessageError> {
    let v6 = match id.len() {
        32 => false,
        56 => true,
        n => return Err(MessageError::BadMessageId(format!("{n} characters, expected 32 or 56"))),
    };
    let raw: Vec<u8> = id
        .as_bytes()
        .chunks_exact(2)
        .map(|p| Some((hex_digit(*p.first()?)? << 4) | hex_digit(*p.get(1)?)?))
        .collect::<Option<_>>()
        .ok_or_else(|| MessageError::BadMessageId(format!("not hex: {id:?}")))?;
    let bad = |e: MessageError| MessageError::BadMessageId(e.to_string());
    let mut r = Reader::new(&raw);
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::from(r.array::<16>("address").map_err(bad)?))
    } else {
        IpAddr::V4(Ipv4Addr::from(r.array::<4>("address").map_err(bad)?))
    };
    let port = r.i32("port").map_err(bad)?;
    let port = u16::try_from(port).map_err(|_| MessageError::BadMessageId(format!("port {port} out of range")))?;
    let offset = r.i64("offset").map_err(bad)?;
    Ok((SocketAddr::new(ip, port), offset))
}

/// The ConsumeQueue tags code: Java's `String.hashCode()` of `tags` over its
/// UTF-16 units, 0 for no tags (RocketMQ: tagsString2tagsCode).
pub fn tags_hash(tags: &str) -> i64 {
    let h = tags.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    i64::from(h)
}

/// A body compressed as RocketMQ does for the COMPRESSED sys flag (zlib,
/// level 5); `None` if compression failed.
pub fn compress_body(body: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 2), flate2::Compression::new(5));
    z.write_all(body).ok()?;
    z.finish().ok().map(Bytes::from)
}

/// A message's body as sent: inflated when its sys flag says COMPRESSED;
/// an error for a body that does not inflate.
pub fn uncompressed_body(m: &MessageExt) -> Result<Bytes, MessageError> {
    if m.sys_flag & sys_flag::COMPRESSED_FLAG == 0 {
        return Ok(m.message.body.clone());
    }
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(&m.message.body[..])
        .read_to_end(&mut out)
        .map_err(|e| MessageError::Truncated(format!("compressed body does not inflate: {e}")))?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn sample(topic: &str, body: &[u8], born: SocketAddr, store: SocketAddr) -> MessageToStore {
        let mut msg = Message::new(topic, body.to_vec());
        msg.set_tags("TagA");
        msg.set_keys(["k1", "k2"]);
        msg.put_property("interop_prop", "value-0");
        msg.put_property(UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "7F0000017353148983856CDB3FC70000");
        let mut m = MessageToStore::from_message(&msg, 3, 1_700_000_000_123, born, store);
        m.flag = 7;
        m.reconsume_times = 2;
        m.prepared_transaction_offset = 99;
        m
    }

    fn round_trip(m: &MessageToStore) -> MessageExt {
        let mut rec = encode_for_store(m, 1_700_000_000_456).expect("encodes");
        layout::patch(&mut rec, 41, 0x1053, 1_700_000_000_789).expect("patches");
        let d = decode(&rec, true, true).expect("decodes");
        assert_eq!(d.store_size as usize, rec.len());
        assert_eq!(d.queue_offset, 41);
        assert_eq!(d.commit_log_offset, 0x1053);
        assert_eq!(d.store_timestamp, 1_700_000_000_789);
        assert_eq!(d.topic(), m.topic);
        assert_eq!(d.queue_id, m.queue_id);
        assert_eq!(d.message.flag, m.flag);
        assert_eq!(d.body(), &m.body);
        assert_eq!(properties_to_string(&d.message.properties), m.properties);
        assert_eq!(d.born_timestamp, m.born_timestamp);
        assert_eq!(d.born_host, m.born_host);
        assert_eq!(d.store_host, m.store_host);
        assert_eq!(d.reconsume_times, m.reconsume_times);
        assert_eq!(d.prepared_transaction_offset, m.prepared_transaction_offset);
        assert_eq!(d.body_crc, body_crc(&m.body));
        assert_eq!(d.msg_id, create_message_id(m.store_host, 0x1053));
        assert_eq!(d.sys_flag, sys_flag_for_hosts(m.sys_flag, m.born_host, m.store_host));
        d
    }

    #[test]
    fn ipv4_v1_round_trip() {
        let m = sample("TopicTest", b"hello", v4("10.0.0.2:40000"), v4("127.0.0.1:20911"));
        let rec = encode_for_store(&m, 5).expect("encodes");
        assert_eq!(record_size(&rec), Some((rec.len() as i32, MAGIC_CODE_V1)));
        let d = round_trip(&m);
        assert_eq!(d.tags(), Some("TagA"));
        assert_eq!(d.keys(), Some("k1 k2"));
        assert_eq!(d.property("interop_prop"), Some("value-0"));
        assert_eq!(d.message.properties.len(), 4);
        assert_eq!(d.msg_id, "7F000001000051AF0000000000001053");
    }

    #[test]
    fn ipv6_hosts_set_their_flags_and_widen_the_record() {
        let born = v4("[2001:db8::1]:40000");
        let store = v4("[::1]:20911");
        let m4 = sample("T", b"x", v4("1.2.3.4:1"), v4("1.2.3.4:2"));
        let m6 = sample("T", b"x", born, store);
        let len4 = encode_for_store(&m4, 0).expect("v4").len();
        let len6 = encode_for_store(&m6, 0).expect("v6").len();
        assert_eq!(len6, len4 + 24);
        let d = round_trip(&m6);
        assert_eq!(d.sys_flag & (BORNHOST_V6_FLAG | STOREHOSTADDRESS_V6_FLAG), 48);
        assert_eq!(d.msg_id.len(), 56);
        assert_eq!(decode_message_id(&d.msg_id), Ok((store, 0x1053)));
        // Mixed families.
        let d = round_trip(&sample("T", b"x", born, v4("127.0.0.1:1")));
        assert_eq!(d.sys_flag & (BORNHOST_V6_FLAG | STOREHOSTADDRESS_V6_FLAG), BORNHOST_V6_FLAG);
        assert_eq!(layout::store_timestamp_pos(d.sys_flag), 68);
    }

    #[test]
    fn long_topics_use_v2_magic() {
        for (len, magic) in [(127, MAGIC_CODE_V1), (128, MAGIC_CODE_V2), (300, MAGIC_CODE_V2)] {
            let topic = "t".repeat(len);
            let m = sample(&topic, b"b", v4("1.1.1.1:1"), v4("2.2.2.2:2"));
            let rec = encode_for_store(&m, 0).expect("encodes");
            assert_eq!(record_size(&rec).map(|r| r.1), Some(magic), "topic of {len}");
            round_trip(&m);
        }
        let m = sample(&"t".repeat(32768), b"", v4("1.1.1.1:1"), v4("2.2.2.2:2"));
        assert!(matches!(encode_for_store(&m, 0), Err(MessageError::TooLarge(_))));
    }

    #[test]
    fn empty_body_and_properties_round_trip() {
        let mut m = sample("T", b"", v4("1.1.1.1:1"), v4("2.2.2.2:2"));
        m.properties.clear();
        let d = round_trip(&m);
        assert!(d.body().is_empty());
        assert!(d.message.properties.is_empty());
        m.properties = "x".repeat(MAX_PROPERTIES_LEN + 1);
        assert!(matches!(encode_for_store(&m, 0), Err(MessageError::TooLarge(_))));
    }

    #[test]
    fn decode_without_body_keeps_the_rest() {
        let m = sample("T", b"payload", v4("1.1.1.1:1"), v4("2.2.2.2:2"));
        let rec = encode_for_store(&m, 0).expect("encodes");
        let d = decode(&rec, false, true).expect("decodes");
        assert!(d.body().is_empty());
        assert_eq!(d.tags(), Some("TagA"));
    }

    #[test]
    fn corrupt_records_are_errors() {
        let m = sample("T", b"payload", v4("1.1.1.1:1"), v4("2.2.2.2:2"));
        let rec = encode_for_store(&m, 0).expect("encodes");
        let body_at = layout::body_length_pos(0) + 4;

        let mut flipped = rec.clone();
        flipped[body_at] ^= 1;
        assert!(matches!(decode(&flipped, true, true), Err(MessageError::Crc { .. })));
        assert!(decode(&flipped, true, false).is_ok(), "no check, no error");

        let mut magic = rec.clone();
        magic[4] = 0;
        assert!(matches!(decode(&magic, true, true), Err(MessageError::BadMagic(_))));

        let mut size = rec.clone();
        size[..4].copy_from_slice(&(rec.len() as i32 + 1).to_be_bytes());
        assert_eq!(
            decode(&size, true, true),
            Err(MessageError::SizeMismatch { declared: rec.len() as i32 + 1, actual: rec.len() })
        );

        let mut negative = rec.clone();
        negative[body_at - 4..body_at].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(decode(&negative, true, true), Err(MessageError::Truncated(_))));

        for cut in 0..rec.len() {
            assert!(decode(&rec[..cut], true, true).is_err(), "cut at {cut}");
            assert!(decode_all(&rec[..cut], true).is_err() || cut == 0, "cut at {cut}");
        }

        let blank = blank_record(1234);
        assert_eq!(decode(&blank, true, true), Err(MessageError::Blank { size: 1234 }));
        assert_eq!(record_size(&blank), Some((1234, BLANK_MAGIC_CODE)));
        assert_eq!(record_size(&blank[..7]), None);
    }

    #[test]
    fn decode_all_reads_consecutive_records() {
        let a = encode_for_store(&sample("A", b"1", v4("1.1.1.1:1"), v4("2.2.2.2:2")), 0).expect("a");
        let b = encode_for_store(&sample(&"B".repeat(200), b"22", v4("[::2]:1"), v4("2.2.2.2:2")), 0).expect("b");
        let all = [a.clone(), b.clone()].concat();
        let msgs = decode_all(&all, true).expect("decodes");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].topic(), "A");
        assert_eq!(msgs[1].body().as_ref(), b"22");
        assert_eq!(decode_all(&[], true), Ok(vec![]));
        let with_blank = [a, blank_record(50).to_vec()].concat();
        assert!(matches!(decode_all(&with_blank, true), Err(MessageError::Blank { size: 50 })));
    }

    #[test]
    fn properties_keep_order_and_parse_leniently() {
        let mut p = Properties::new();
        p.insert("b", "1");
        p.insert("a", "2");
        assert_eq!(p.insert("b", "3"), Some("1".to_string()));
        assert_eq!(p.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
        assert_eq!(properties_to_string(&p), "b\u{1}3\u{2}a\u{1}2");
        assert_eq!(string_to_properties(&properties_to_string(&p)), p);
        assert_eq!(p.remove("b"), Some("3".to_string()));
        assert_eq!(p.len(), 1);
        assert_eq!(properties_to_string(&Properties::new()), "");

        let q = string_to_properties(
            "\u{2}\u{2}k\u{1}v\u{2}junk\u{2}\u{1}nokey\u{2}e\u{1}\u{2}x\u{1}a\u{1}b\u{2}k\u{1}w\u{2}",
        );
        assert_eq!(q.iter().collect::<Vec<_>>(), [("k", "w"), ("e", ""), ("x", "a\u{1}b")]);
        assert!(string_to_properties("").is_empty());
    }

    #[test]
    fn one_property_is_read_as_the_parsed_map_reads_it() {
        let raw = "\u{2}\u{2}k\u{1}v\u{2}junk\u{2}\u{1}nokey\u{2}e\u{1}\u{2}x\u{1}a\u{1}b\u{2}k\u{1}w\u{2}";
        let map = string_to_properties(raw);
        for name in ["k", "e", "x", "junk", "nokey", "", "absent"] {
            assert_eq!(property_in(raw.as_bytes(), name).as_deref(), map.get(name), "{name:?}");
        }
        assert_eq!(property_in(b"", "k"), None);
    }

    #[test]
    fn message_helpers() {
        let mut m = Message::new("T", &b"b"[..]);
        assert_eq!(m.delay_level(), 0);
        m.set_delay_level(3);
        assert_eq!(m.property(DELAY), Some("3"));
        assert_eq!(m.delay_level(), 3);
        m.set_keys(vec!["a".to_string(), " ".to_string(), "b".to_string()]);
        assert_eq!(m.keys(), Some("a b"));
        assert_eq!(m.key_list().collect::<Vec<_>>(), ["a", "b"]);
        assert!(m.wait_store_msg_ok());
        m.set_wait_store_msg_ok(false);
        assert!(!m.wait_store_msg_ok());
        assert_eq!(m.tags(), None);
        assert_eq!(sys_flag::reset_transaction_value(MULTI_TAGS_FLAG | 4, TRANSACTION_COMMIT_TYPE), 10);
        assert_eq!(sys_flag::transaction_value(12 | 1), TRANSACTION_ROLLBACK_TYPE);
    }

    #[test]
    fn message_ids() {
        let host = v4("127.0.0.1:20911");
        assert_eq!(create_message_id(host, 0x1053), "7F000001000051AF0000000000001053");
        assert_eq!(decode_message_id("7F000001000051AF0000000000001053"), Ok((host, 0x1053)));
        assert_eq!(decode_message_id("7f000001000051af0000000000001053"), Ok((host, 0x1053)));
        let v6 = v4("[fe80::1:2]:65535");
        assert_eq!(decode_message_id(&create_message_id(v6, i64::MAX)), Ok((v6, i64::MAX)));
        for bad in [
            "",
            "7F000001000051AF000000000000105",
            "7F000001000051AF000000000000105G",
            "7F000001FFFFFFFF0000000000001053",
        ] {
            assert!(matches!(decode_message_id(bad), Err(MessageError::BadMessageId(_))), "{bad}");
        }
        // Multi-byte characters at the right byte length.
        assert!(decode_message_id(&"é".repeat(16)).is_err());
    }

    #[test]
    fn tags_hash_matches_java_string_hash_code() {
        assert_eq!(tags_hash("TagA"), 2_598_919);
        assert_eq!(tags_hash(""), 0);
        assert_eq!(tags_hash("é"), 233);
        assert_eq!(tags_hash("😀"), 31 * 0xD83D + 0xDE00);
        assert_eq!(tags_hash("😀"), 1_772_899); // 31 * 55357 + 56832
        // Wraps like Java's int arithmetic: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(tags_hash("polygenelubricants"), i64::from(i32::MIN));
    }
}
