//! Random and mutated bytes never panic the decoders.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rmq::remoting::command::FrameDecoder;
use rmq::remoting::headers::{PullMessageRequestHeader, SendMessageRequestHeaderV2};
use rmq::remoting::{RemotingCommand, SerializeType};

fn valid_frame(t: SerializeType) -> Vec<u8> {
    let mut c = RemotingCommand::request(310).with_serialize_type(t).with_body(b"0123456789".to_vec());
    c.ext_fields.insert("a", "group");
    c.ext_fields.insert("g", "1795317470514");
    c.remark = Some("r".into());
    c.encode()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = RemotingCommand::decode(Bytes::from(bytes.clone()));
        let _ = RemotingCommand::decode_frame(&bytes);
        let mut buf = BytesMut::from(&bytes[..]);
        let dec = FrameDecoder::new(1 << 20);
        while let Ok(Some(f)) = dec.next_frame(&mut buf) {
            if let Ok(cmd) = RemotingCommand::decode(f) {
                let _ = cmd.header::<SendMessageRequestHeaderV2>();
                let _ = cmd.header::<PullMessageRequestHeader>();
            }
        }
        let _ = rmq::remoting::json::from_body::<serde_json::Value>(&bytes);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        binary in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let t = if binary { SerializeType::RocketMq } else { SerializeType::Json };
        let mut f = valid_frame(t);
        for (i, b) in flips {
            let i = i.index(f.len());
            f[i] = b;
        }
        let keep = cut.index(f.len() + 1);
        let _ = RemotingCommand::decode_frame(&f[..keep]);
        let _ = RemotingCommand::decode(Bytes::copy_from_slice(&f[4.min(f.len())..]));
    }

    #[test]
    fn json_with_integer_keys_never_panics(s in "[{}\\[\\],:0-9\" a-z-]{0,64}") {
        let _ = rmq::remoting::json::quote_integer_keys(s.as_bytes());
        let _ = rmq::remoting::json::from_body::<serde_json::Value>(s.as_bytes());
    }
}
