//! Broker load: SEND_MESSAGE_V2 of 1 KiB over 16 connections (ASYNC_FLUSH),
//! and the time from a send's reply to the reply of a held pull it wakes.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq::broker::processor::pull_flag;
use rmq::broker::{BrokerConfig, BrokerController};
use rmq::remoting::code::{request, response};
use rmq::remoting::headers::*;
use rmq::remoting::{ClientConfig, RemotingClient, RemotingCommand};

const T: Duration = Duration::from_secs(5);

fn send(topic: &str, body: &[u8]) -> RemotingCommand {
    let h = SendMessageRequestHeaderV2 {
        producer_group: "bench".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        born_timestamp: 1,
        properties: Some("TAGS\u{1}A\u{2}WAIT\u{1}true".into()),
        ..Default::default()
    };
    RemotingCommand::request_with(request::SEND_MESSAGE_V2, &h).with_body(body.to_vec())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerController::start(BrokerConfig {
        listen_port: 0,
        store: rmq::store::StoreConfig {
            mapped_file_size_commit_log: 256 * 1024 * 1024,
            ..rmq::store::StoreConfig::at(dir.path())
        },
        ..Default::default()
    })
    .unwrap();
    let addr = broker.addr().to_string();
    // 16 clients: 16 connections.
    let clients: Vec<Arc<RemotingClient>> = (0..16)
        .map(|_| {
            Arc::new(
                RemotingClient::start(ClientConfig { callback_threads: 1, worker_threads: 1, ..Default::default() })
                    .unwrap(),
            )
        })
        .collect();
    let body = vec![b'x'; 1024];
    for c in &clients {
        assert_eq!(c.invoke_sync(&addr, send("Load", &body), T).unwrap().code, response::SUCCESS);
    }
    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Elements(16));
    g.bench_function("send_v2_1KiB_16_connections", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(17));
            let hs: Vec<_> = clients
                .iter()
                .map(|c| {
                    let (c, addr, body, barrier) = (c.clone(), addr.clone(), body.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        for _ in 0..iters {
                            assert_eq!(c.invoke_sync(&addr, send("Load", &body), T).unwrap().code, response::SUCCESS);
                        }
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            for h in hs {
                h.join().unwrap();
            }
            t0.elapsed()
        })
    });
    // The same load pipelined: one driver thread keeps up to 512 async sends
    // in flight across the 16 connections (a load generator, not 16 blocked
    // threads, so the client side takes less of the 2 cores).
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_v2_1KiB_16_connections_pipelined", |b| {
        b.iter_custom(|iters| {
            let window = Arc::new(rmq::common::wait::Semaphore::new(512));
            let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t0 = Instant::now();
            for i in 0..iters {
                while !window.try_acquire(T) {}
                let (w, f) = (window.clone(), failed.clone());
                clients[i as usize % clients.len()]
                    .invoke_async(&addr, send("Load", &body), T, move |r| {
                        if !matches!(r, Ok(ref c) if c.code == response::SUCCESS) {
                            f.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        w.release();
                    })
                    .unwrap();
            }
            for _ in 0..512 {
                while !window.try_acquire(T) {}
            }
            let elapsed = t0.elapsed();
            for _ in 0..512 {
                window.release();
            }
            assert_eq!(failed.load(std::sync::atomic::Ordering::Relaxed), 0);
            elapsed
        })
    });
    let puller = clients[0].clone();
    let sender = clients[1].clone();
    let mut next = 0i64;
    g.bench_function("held_pull_woken_after_send_reply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let h = PullMessageRequestHeader {
                    consumer_group: "bench".into(),
                    topic: "Held".into(),
                    queue_id: 0,
                    queue_offset: next,
                    max_msg_nums: 32,
                    sys_flag: pull_flag::SUBSCRIPTION | pull_flag::SUSPEND,
                    suspend_timeout_millis: 15_000,
                    subscription: Some("*".into()),
                    expression_type: Some("TAG".into()),
                    ..Default::default()
                };
                let (tx, rx) = crossbeam_channel::bounded(1);
                if next == 0 {
                    // Create the topic first.
                    sender.invoke_sync(&addr, send("Held", b"first"), T).unwrap();
                    next = 1;
                    continue;
                }
                let mut h = h;
                h.queue_offset = next;
                puller
                    .invoke_async(&addr, RemotingCommand::request_with(request::PULL_MESSAGE, &h), T * 4, move |r| {
                        let _ = tx.send((r, Instant::now()));
                    })
                    .unwrap();
                while broker.shared().hold.held() == 0 {
                    std::thread::yield_now();
                }
                let r = sender.invoke_sync(&addr, send("Held", b"wake"), T).unwrap();
                let replied = Instant::now();
                assert_eq!(r.code, response::SUCCESS);
                let (pulled, at) = rx.recv_timeout(T).unwrap();
                assert_eq!(pulled.unwrap().code, response::SUCCESS);
                total += at.saturating_duration_since(replied);
                next += 1;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
