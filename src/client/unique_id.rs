//! Producer-side unique message ids (RocketMQ: MessageClientIDSetter): the
//! `UNIQ_KEY` property, which clients show as a message's msgId. Layout, as
//! uppercase hex: client IP (4 or 16 bytes), pid (2), a per-process number
//! (4; Java uses its class loader's hash), milliseconds since the start of
//! the month (4), a counter (2). Apache takes the month in local time; we
//! take it in UTC (only the id's "nearly time" reading depends on it).

use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU16, Ordering};

use parking_lot::Mutex;

use crate::common::message::push_hex_upper;
use crate::common::time::{month_bounds_utc, now_millis};

pub struct UniqueIdGenerator {
    prefix: String,
    counter: AtomicU16,
    month: Mutex<(i64, i64)>,
}

impl UniqueIdGenerator {
    pub fn new(ip: IpAddr, pid: u32, process_number: u32) -> Self {
        let mut prefix = String::with_capacity(44);
        match ip {
            IpAddr::V4(v4) => push_hex_upper(&v4.octets(), &mut prefix),
            IpAddr::V6(v6) => push_hex_upper(&v6.octets(), &mut prefix),
        }
        push_hex_upper(&(pid as u16).to_be_bytes(), &mut prefix);
        push_hex_upper(&process_number.to_be_bytes(), &mut prefix);
        UniqueIdGenerator { prefix, counter: AtomicU16::new(0), month: Mutex::new(month_bounds_utc(now_millis())) }
    }

    /// A new id.
    pub fn next_id(&self) -> String {
        let now = now_millis();
        let start = {
            let mut m = self.month.lock();
            if now >= m.1 {
                *m = month_bounds_utc(now);
            }
            m.0
        };
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        push_hex_upper(&((now - start) as i32).to_be_bytes(), &mut id);
        push_hex_upper(&self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes(), &mut id);
        id
    }
}

static GENERATOR: LazyLock<UniqueIdGenerator> = LazyLock::new(|| {
    let pid = std::process::id();
    UniqueIdGenerator::new(IpAddr::from([127, 0, 0, 1]), pid, (now_millis() as u32) ^ pid.rotate_left(16))
});

/// A new id from the process-wide generator.
pub fn create_unique_id() -> String {
    GENERATOR.next_id()
}

/// The bytes of an id, `None` when it is not one.
fn bytes_of(id: &str) -> Option<Vec<u8>> {
    if !(id.len() == 32 || id.len() == 56) {
        return None;
    }
    (0..id.len()).step_by(2).map(|i| u8::from_str_radix(id.get(i..i + 2)?, 16).ok()).collect()
}

/// The client IP an id carries.
pub fn ip_of(id: &str) -> Option<IpAddr> {
    let b = bytes_of(id)?;
    Some(if b.len() == 28 {
        let a: [u8; 16] = b[..16].try_into().ok()?;
        IpAddr::from(a)
    } else {
        let a: [u8; 4] = b[..4].try_into().ok()?;
        IpAddr::from(a)
    })
}

/// The pid an id carries (low 16 bits).
pub fn pid_of(id: &str) -> Option<u16> {
    let b = bytes_of(id)?;
    let at = b.len() - 2 - 4 - 4 - 2;
    Some(u16::from_be_bytes([b[at], b[at + 1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_have_apaches_layout_and_are_unique() {
        let g = UniqueIdGenerator::new(IpAddr::from([10, 1, 2, 3]), 0x1234_5678, 0xAABBCCDD);
        let ids: Vec<String> = (0..1000).map(|_| g.next_id()).collect();
        assert!(
            ids.iter().all(|i| i.len() == 32 && i.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()))
        );
        assert!(ids[0].starts_with("0A0102035678AABBCCDD"), "{}", ids[0]);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
        assert_eq!(ip_of(&ids[0]), Some(IpAddr::from([10, 1, 2, 3])));
        assert_eq!(pid_of(&ids[0]), Some(0x5678));
        // An id Apache's C++ client produced (from the interop captures).
        assert_eq!(ip_of("0100007F000092C20000D05D38720100"), Some(IpAddr::from([1, 0, 0, 127])));
        assert_eq!(ip_of("nope"), None);
        let v6 = UniqueIdGenerator::new("::1".parse().unwrap(), 1, 2).next_id();
        assert_eq!((v6.len(), ip_of(&v6)), (56, Some("::1".parse().unwrap())));
        assert_ne!(create_unique_id(), create_unique_id());
    }
}
