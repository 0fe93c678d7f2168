//! Typed command headers: each request/response header is a struct that
//! converts to and from a command's `extFields` here, in one place.
//!
//! Declare one with [`command_header!`](crate::command_header): every field
//! names its wire key; `Option` fields may be absent, the others are required
//! (a missing one is an error naming it, as RocketMQ's "the custom field
//! <name> is null"). Values are parsed leniently, as real clients differ:
//! numbers may carry spaces, booleans may be `true`/`false` in any case or
//! `1`/`0`.

use std::fmt;

use crate::remoting::command::ExtFields;

/// Why a header could not be read from `extFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Missing(&'static str),
    Invalid { field: &'static str, value: String, expected: &'static str },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing(name) => write!(f, "the custom field <{name}> is null"),
            HeaderError::Invalid { field, value, expected } => {
                write!(f, "the custom field <{field}> is not {expected}: {value:?}")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// A struct carried in `extFields`.
pub trait CommandHeader: Sized {
    fn write_to(&self, ext: &mut ExtFields);
    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError>;
}

/// One header field's type: how it is read from its text in `extFields`
/// (`None` when absent) and written back.
pub trait HeaderField: Sized {
    fn from_text(text: Option<&str>, name: &'static str) -> Result<Self, HeaderError>;
    fn write(&self, name: &'static str, ext: &mut ExtFields);
}

/// A scalar that has a text form in `extFields`.
pub trait FieldValue: Sized {
    const EXPECTED: &'static str;
    fn parse_field(s: &str) -> Option<Self>;
    fn format_field(&self) -> String;
    /// Appends the text form to `out` (as `format_field`, without a new string).
    fn write_field(&self, out: &mut String) {
        out.push_str(&self.format_field());
    }
}

impl FieldValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse_field(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
    fn format_field(&self) -> String {
        self.clone()
    }
    fn write_field(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl FieldValue for bool {
    const EXPECTED: &'static str = "a boolean";
    fn parse_field(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("true") || s == "1" {
            Some(true)
        } else if s.eq_ignore_ascii_case("false") || s == "0" || s.is_empty() {
            Some(false)
        } else {
            None
        }
    }
    fn format_field(&self) -> String {
        self.to_string()
    }
    fn write_field(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

/// `v` in decimal, as `to_string` gives it, written into `buf` without the
/// formatter (header encoding runs once per request).
pub(crate) fn decimal(v: i128, buf: &mut [u8; 40]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

fn write_int(out: &mut String, v: i128) {
    for &d in decimal(v, &mut [0; 40]) {
        out.push(d as char);
    }
}

macro_rules! integer_field {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            const EXPECTED: &'static str = "an integer";
            fn parse_field(s: &str) -> Option<Self> {
                s.trim().parse().ok()
            }
            fn format_field(&self) -> String {
                self.to_string()
            }
            fn write_field(&self, out: &mut String) {
                write_int(out, *self as i128);
            }
        }
    )*};
}
integer_field!(i8, i16, i32, i64, u8, u16, u32, u64);

fn parse<T: FieldValue>(name: &'static str, v: &str) -> Result<T, HeaderError> {
    T::parse_field(v).ok_or_else(|| HeaderError::Invalid { field: name, value: v.to_string(), expected: T::EXPECTED })
}

macro_rules! header_field {
    ($($t:ty),*) => {$(
        impl HeaderField for $t {
            fn from_text(text: Option<&str>, name: &'static str) -> Result<Self, HeaderError> {
                parse(name, text.ok_or(HeaderError::Missing(name))?)
            }
            fn write(&self, name: &'static str, ext: &mut ExtFields) {
                ext.insert_with(name, |o| self.write_field(o));
            }
        }
        impl HeaderField for Option<$t> {
            fn from_text(text: Option<&str>, name: &'static str) -> Result<Self, HeaderError> {
                text.map(|v| parse(name, v)).transpose()
            }
            fn write(&self, name: &'static str, ext: &mut ExtFields) {
                if let Some(v) = self {
                    ext.insert_with(name, |o| v.write_field(o));
                }
            }
        }
    )*};
}
header_field!(String, bool, i8, i16, i32, i64, u8, u16, u32, u64);

/// Reads the typed header of a request in a processor; when it cannot be
/// read, returns from the enclosing function with the answer RocketMQ gives
/// (SYSTEM_ERROR, the remark naming the field). Works in functions returning
/// `RemotingCommand` or `Option<RemotingCommand>`.
#[macro_export]
macro_rules! header_or_answer {
    ($req:expr) => {
        match $req.header() {
            Ok(h) => h,
            Err(e) => {
                return $crate::remoting::RemotingCommand::error(
                    $crate::remoting::code::response::SYSTEM_ERROR,
                    e.to_string(),
                )
                .into();
            }
        }
    };
}

/// Declares a header struct and its `extFields` conversion:
///
/// ```
/// rmq::command_header! {
///     /// RocketMQ: GetMaxOffsetRequestHeader
///     pub struct GetMaxOffset {
///         topic: String = "topic",
///         queue_id: i32 = "queueId",
///     }
/// }
/// ```
#[macro_export]
macro_rules! command_header {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $wire:literal ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::remoting::header::CommandHeader for $name {
            fn write_to(&self, ext: &mut $crate::remoting::command::ExtFields) {
                ext.reserve(0 $( + { let _ = $wire; 1 } )*);
                $( $crate::remoting::header::HeaderField::write(&self.$field, $wire, ext); )*
            }
            fn read_from(ext: &$crate::remoting::command::ExtFields) -> Result<Self, $crate::remoting::header::HeaderError> {
                // One pass over the fields; the first of duplicate keys wins, as in `ExtFields::get`.
                $( let mut $field: Option<&str> = None; )*
                for (key, value) in ext.iter_raw_keys() {
                    $( if key == $wire.as_bytes() { if $field.is_none() { $field = Some(value); } continue; } )*
                }
                Ok($name {
                    $( $field: $crate::remoting::header::HeaderField::from_text($field, $wire)?, )*
                })
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_to_string() {
        for v in [0i128, 7, -1, 10, i32::MIN as i128, i64::MAX as i128, i128::MIN, i128::MAX] {
            assert_eq!(decimal(v, &mut [0; 40]), v.to_string().as_bytes());
        }
    }

    crate::command_header! {
        pub struct Sample {
            topic: String = "topic",
            queue_id: i32 = "queueId",
            offset: i64 = "offset",
            batch: Option<bool> = "batch",
            remark: Option<String> = "why",
        }
    }

    #[test]
    fn header_round_trips_and_reports_missing_or_invalid_fields() {
        let h = Sample { topic: "T".into(), queue_id: 3, offset: -1, batch: Some(true), remark: None };
        let mut ext = ExtFields::new();
        h.write_to(&mut ext);
        assert_eq!(ext.get("queueId"), Some("3"));
        assert_eq!(ext.get("why"), None);
        assert_eq!(Sample::read_from(&ext), Ok(h));

        let mut lenient = ExtFields::new();
        lenient.insert("topic", "T");
        lenient.insert("queueId", " 7 ");
        lenient.insert("offset", "12");
        lenient.insert("batch", "0");
        let s = Sample::read_from(&lenient).expect("lenient");
        assert_eq!((s.queue_id, s.batch), (7, Some(false)));

        lenient.remove("offset");
        assert_eq!(Sample::read_from(&lenient), Err(HeaderError::Missing("offset")));
        assert_eq!(HeaderError::Missing("offset").to_string(), "the custom field <offset> is null");
        lenient.insert("offset", "twelve");
        assert!(matches!(Sample::read_from(&lenient), Err(HeaderError::Invalid { field: "offset", .. })));
    }
}
