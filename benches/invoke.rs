//! `invoke_sync` request/reply over loopback: one caller, and 16 callers
//! sharing one connection.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq::common::ThreadPool;
use rmq::remoting::code::response;
use rmq::remoting::{Channel, ClientConfig, RemotingClient, RemotingCommand, RemotingServer, ServerConfig};

const PING: i32 = 9100;

fn server() -> (RemotingServer, String) {
    let mut s =
        RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() });
    let pool = Arc::new(ThreadPool::new("BenchProcessorThread_", "bench", 4, 100_000).unwrap());
    s.register_processor(
        PING,
        Arc::new(|_: &Channel, _: RemotingCommand| Some(RemotingCommand::response(response::SUCCESS, None))),
        pool,
    );
    let addr = s.start().unwrap()[0].to_string();
    (s, addr)
}

fn bench(c: &mut Criterion) {
    let (_server, addr) = server();
    let client = Arc::new(RemotingClient::start(ClientConfig::default()).unwrap());
    client.invoke_sync(&addr, RemotingCommand::request(PING), Duration::from_secs(3)).unwrap();
    let mut g = c.benchmark_group("invoke_sync_loopback");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_caller", |b| {
        b.iter(|| client.invoke_sync(&addr, RemotingCommand::request(PING), Duration::from_secs(3)).unwrap())
    });
    const THREADS: u64 = 16;
    g.throughput(Throughput::Elements(THREADS));
    g.bench_function("16_callers_one_connection", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(THREADS as usize + 1));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (client, addr, barrier) = (client.clone(), addr.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        for _ in 0..iters {
                            client.invoke_sync(&addr, RemotingCommand::request(PING), Duration::from_secs(3)).unwrap();
                        }
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            for h in handles {
                h.join().unwrap();
            }
            t0.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
