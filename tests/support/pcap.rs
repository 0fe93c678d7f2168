//! Reads the remoting frames out of the interop captures (classic pcap,
//! Ethernet, IPv4/IPv6, TCP), one reassembled byte stream per direction.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// The captures' directory: `shared/interop/vectors` beside the checkout.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/interop/vectors")
}

/// Every `.pcap` there, sorted; fails loudly when the directory is missing.
pub fn captures() -> Vec<PathBuf> {
    let dir = vectors_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("interop captures not found at {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no captures in {}", dir.display());
    v
}

/// One direction of one TCP connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
}

/// One whole frame as it crossed the wire (length prefix included).
#[derive(Debug, Clone)]
pub struct Frame {
    pub flow: Flow,
    pub bytes: Vec<u8>,
}

struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
}

fn u16be(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}
fn u32be(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The reassembled streams of a capture, in first-seen order.
pub fn streams(path: &std::path::Path) -> Vec<(Flow, Vec<u8>)> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(data.len() >= 24, "{}: not a pcap", path.display());
    let le = match &data[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        m => panic!("{}: unsupported pcap magic {m:02x?}", path.display()),
    };
    let rd = |o: usize| -> u32 {
        let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
        if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    assert_eq!(rd(20), 1, "{}: only Ethernet captures are read", path.display());
    let mut order: Vec<Flow> = Vec::new();
    let mut flows: HashMap<Flow, Stream> = HashMap::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = rd(off + 8) as usize;
        off += 16;
        let Some(pkt) = data.get(off..off + incl) else { break };
        off += incl;
        if pkt.len() < 14 {
            continue;
        }
        let ether = u16be(pkt, 12);
        let ip = &pkt[14..];
        let (src, dst, tcp) = match ether {
            0x0800 if ip.len() >= 20 && ip[9] == 6 => {
                let ihl = (ip[0] & 15) as usize * 4;
                let total = (u16be(ip, 2) as usize).min(ip.len());
                (
                    format!("{}.{}.{}.{}", ip[12], ip[13], ip[14], ip[15]),
                    format!("{}.{}.{}.{}", ip[16], ip[17], ip[18], ip[19]),
                    &ip[ihl..total],
                )
            }
            0x86dd if ip.len() >= 40 && ip[6] == 6 => {
                let plen = u16be(ip, 4) as usize;
                (format!("{:02x?}", &ip[8..24]), format!("{:02x?}", &ip[24..40]), &ip[40..(40 + plen).min(ip.len())])
            }
            _ => continue,
        };
        if tcp.len() < 20 {
            continue;
        }
        let flow = Flow { src, sport: u16be(tcp, 0), dst, dport: u16be(tcp, 2) };
        let seq = u32be(tcp, 4);
        let doff = (tcp[12] >> 4) as usize * 4;
        let syn = tcp[13] & 0x02 != 0;
        let payload = tcp.get(doff..).unwrap_or(&[]);
        if !flows.contains_key(&flow) {
            order.push(flow.clone());
        }
        let st = flows.entry(flow).or_insert(Stream { next_seq: None, buf: Vec::new() });
        if syn {
            st.next_seq = Some(seq.wrapping_add(1));
            continue;
        }
        if payload.is_empty() {
            continue;
        }
        let expected = *st.next_seq.get_or_insert(seq);
        if seq != expected && seq.wrapping_sub(expected) > 0x7fff_ffff {
            continue; // a retransmission of bytes already taken
        }
        st.buf.extend_from_slice(payload);
        st.next_seq = Some(seq.wrapping_add(payload.len() as u32));
    }
    order.into_iter().filter_map(|f| flows.remove(&f).map(|s| (f, s.buf))).filter(|(_, b)| !b.is_empty()).collect()
}

/// Apache's HA port in `apache-ha.pcap` (haListenPort = listenPort + 1):
/// the replication channel is raw TCP, not remoting frames (see the interop
/// README), so its streams are not cut into frames.
const HA_PORT: u16 = 10922;

/// Every whole remoting frame of a capture, stream by stream.
pub fn frames(path: &std::path::Path) -> Vec<Frame> {
    let mut out = Vec::new();
    for (flow, buf) in streams(path) {
        if flow.sport == HA_PORT || flow.dport == HA_PORT {
            continue;
        }
        let mut o = 0;
        while o + 4 <= buf.len() {
            let total = u32be(&buf, o) as usize;
            if o + 4 + total > buf.len() {
                break;
            }
            out.push(Frame { flow: flow.clone(), bytes: buf[o..o + 4 + total].to_vec() });
            o += 4 + total;
        }
        assert_eq!(o, buf.len(), "{}: stream {flow:?} ends inside a frame", path.display());
    }
    out
}
