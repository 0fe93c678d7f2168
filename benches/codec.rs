//! Encode and decode of a 1 KiB SEND_MESSAGE_V2 request, both header forms.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq::remoting::code::request;
use rmq::remoting::headers::SendMessageRequestHeaderV2;
use rmq::remoting::{RemotingCommand, SerializeType};

fn send_v2(t: SerializeType) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "bench_producer_group".into(),
        topic: "BenchTopic".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_795_317_431_851,
        flag: 0,
        properties: Some(
            "UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}WAIT\u{1}true\u{2}TAGS\u{1}TagA\u{2}".into(),
        ),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: Some("broker-a".into()),
    };
    RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_serialize_type(t).with_body(vec![b'x'; 1024])
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("send_message_v2_1KiB");
    g.throughput(Throughput::Elements(1));
    for (name, t) in [("json", SerializeType::Json), ("rocketmq", SerializeType::RocketMq)] {
        let cmd = send_v2(t);
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| {
                let h = cmd.encode_header();
                std::hint::black_box((h, cmd.body.segments().len()))
            })
        });
        let frame = Bytes::from(cmd.encode()).slice(4..);
        g.bench_function(format!("decode_only_{name}"), |b| {
            b.iter(|| std::hint::black_box(RemotingCommand::decode(frame.clone()).expect("valid")))
        });
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| {
                let d = RemotingCommand::decode(frame.clone()).expect("valid");
                let h: SendMessageRequestHeaderV2 = d.header().expect("header");
                std::hint::black_box(h)
            })
        });
    }
    for (name, t) in [("json", SerializeType::Json), ("rocketmq", SerializeType::RocketMq)] {
        let d = RemotingCommand::decode(Bytes::from(send_v2(t).encode()).slice(4..)).unwrap();
        g.bench_function(format!("typed_only_{name}"), |b| {
            b.iter(|| std::hint::black_box(d.header::<SendMessageRequestHeaderV2>().expect("header")))
        });
    }
    let plain = RemotingCommand::decode(Bytes::from(send_v2(SerializeType::Json).encode()).slice(4..)).unwrap();
    let mut noprops = plain.clone();
    noprops.ext_fields.remove("i");
    let f2 = Bytes::from(noprops.encode()).slice(4..);
    g.bench_function("decode_only_json_no_properties", |b| {
        b.iter(|| std::hint::black_box(RemotingCommand::decode(f2.clone()).expect("valid")))
    });
    let hdr = {
        let f = Bytes::from(send_v2(SerializeType::Json).encode());
        let hl = (u32::from_be_bytes([f[4], f[5], f[6], f[7]]) & 0xff_ffff) as usize;
        f.slice(8..8 + hl)
    };
    g.bench_function("serde_json_value_reference", |b| {
        b.iter(|| std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&hdr).expect("valid")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
