//! Store benches: appends (ASYNC_FLUSH, 1 and 4 writers), SYNC_FLUSH group
//! commit against serial flushes, reads of 32 x 1 KiB, crash recovery of a
//! 1 GiB CommitLog.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq::common::message::{Message, MessageToStore};
use rmq::store::{FlushDiskType, MessageStore, StoreConfig};

fn msg(qid: i32) -> MessageToStore {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let mut m = Message::new("BenchTopic", Bytes::from(vec![b'x'; 1024]));
    m.set_tags("TagA");
    MessageToStore::from_message(&m, qid, 1, host, host)
}

fn open(dir: &std::path::Path, flush: FlushDiskType) -> MessageStore {
    MessageStore::open(StoreConfig {
        mapped_file_size_commit_log: 256 * 1024 * 1024,
        flush_disk_type: flush,
        ..StoreConfig::at(dir)
    })
    .unwrap()
}

/// `threads` writers putting `per_thread` messages each; the elapsed time.
fn concurrent_puts(store: &Arc<MessageStore>, threads: usize, per_thread: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let (s, b) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let m = msg(t as i32 % 4);
                b.wait();
                for _ in 0..per_thread {
                    assert!(s.put_message(&m, true).is_ok());
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
}

fn appends(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), FlushDiskType::AsyncFlush));
    let mut g = c.benchmark_group("append_1KiB_async");
    g.throughput(Throughput::Elements(1));
    let m = msg(0);
    g.bench_function("1_writer", |b| b.iter(|| store.put_message(&m, true)));
    g.bench_function("4_writers", |b| b.iter_custom(|iters| concurrent_puts(&store, 4, iters.div_ceil(4))));
    g.finish();
}

fn sync_flush(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), FlushDiskType::SyncFlush));
    let mut g = c.benchmark_group("append_1KiB_sync_flush");
    g.sample_size(10);
    g.throughput(Throughput::Elements(16));
    g.bench_function("16_serial_puts", |b| {
        b.iter(|| {
            for _ in 0..16 {
                assert!(store.put_message(&msg(0), true).is_ok());
            }
        })
    });
    g.bench_function("16_concurrent_writers_group_commit", |b| {
        b.iter_custom(|iters| concurrent_puts(&store, 16, iters))
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), FlushDiskType::AsyncFlush);
    for _ in 0..10_000 {
        store.put_message(&msg(0), true);
    }
    assert!(store.wait_dispatched(Duration::from_secs(30)));
    let mut g = c.benchmark_group("get_message_in_memory");
    g.throughput(Throughput::Elements(32));
    let mut offset = 0;
    g.bench_function("32_x_1KiB", |b| {
        b.iter(|| {
            let r = store.get_message("g", "BenchTopic", 0, offset, 32, None);
            assert_eq!(r.message_count(), 32);
            offset = (offset + 32) % 9_900;
            r
        })
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { warm_mapped_file_enable: false, ..StoreConfig::at(dir.path()) };
    {
        let store = MessageStore::open(cfg.clone()).unwrap();
        let target = 1024 * 1024 * 1024 - 64 * 1024;
        let m = msg(0);
        while store.max_phy_offset() < target {
            store.put_message(&m, true);
        }
        assert!(store.wait_dispatched(Duration::from_secs(60)));
        store.shutdown();
    }
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    g.bench_function("after_crash_1GiB_commit_log", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::fs::write(dir.path().join("abort"), b"").unwrap();
                let t0 = Instant::now();
                let store = MessageStore::open(cfg.clone()).unwrap();
                total += t0.elapsed();
                store.shutdown();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, appends, sync_flush, reads, recovery);
criterion_main!(benches);
