//! `rmq bench producer|consumer`: throughput and latency of sends and of
//! consumption (RocketMQ: the benchmark Producer and Consumer of its
//! examples), measured here so the command line stays thin and the
//! measuring can be tested.
//!
//! Latencies go into [`Histogram`]s, one per recording thread, merged every
//! second: the per-second line and the final summary read percentiles from
//! the merged counts, so no sample is kept and no lock is shared by senders.
//! A producer's latency is its send call's; a consumer's is end to end: the
//! listener's clock minus the send time the producer bench put in the
//! [`SEND_NS_PROPERTY`] property (nanoseconds), or minus the message's born
//! timestamp (milliseconds) for messages from other producers.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;

use crate::client::config::ClientConfig;
use crate::client::consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageListener, PushConsumer,
    PushConsumerConfig,
};
use crate::client::producer::{Producer, ProducerConfig, SendStatus};
use crate::common::message::{Message, MessageExt};
use crate::common::wait::{Deadline, Signal};

/// The user property holding a bench message's send time, nanoseconds since
/// the epoch: lets a consumer measure sub-millisecond end-to-end latency.
pub const SEND_NS_PROPERTY: &str = "bench_send_ns";
/// The user property marking the messages one `--prefill` sent, so the
/// consumer bench knows when exactly that backlog is drained.
pub const RUN_PROPERTY: &str = "bench_run";

/// Sub-buckets per power of two: 2^7 = 128, so a bucket spans at most 1/128
/// (< 0.8%) of its values.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Values below `SUB` have a bucket each; each power of two above has `SUB`.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// A log-linear histogram of `u64` values (nanoseconds here) with < 1%
/// relative error, mergeable by adding counts, as HdrHistogram does with two
/// significant digits. Exact count, sum, min and max.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), count: 0, sum: 0, min: u64::MAX, max: 0 }
    }

    /// The bucket of `v`: itself below `SUB`, else its power of two and its
    /// next `SUB_BITS` bits.
    fn index_of(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let shift = 63 - v.leading_zeros() - SUB_BITS;
        let mantissa = (v >> shift) as usize; // SUB..2*SUB
        SUB + shift as usize * SUB + (mantissa - SUB)
    }

    /// The largest value that falls in bucket `i`.
    fn highest_of(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = (i - SUB) / SUB;
        let mantissa = ((i - SUB) % SUB + SUB) as u128;
        let next = (mantissa + 1) << shift;
        u64::try_from(next - 1).unwrap_or(u64::MAX)
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds `other`'s values to these.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn reset(&mut self) {
        if self.count > 0 {
            self.counts.fill(0);
        }
        self.count = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The value `q` (0..=1) of the recorded values are at or below, within
    /// the bucket precision, never above the largest recorded value.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::highest_of(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Average, p50, p99, p99.9 and max in milliseconds, for values in
    /// nanoseconds.
    pub fn latency_ms(&self) -> LatencyMs {
        let ms = |ns: u64| ns as f64 / 1e6;
        LatencyMs {
            avg: round3(self.mean() / 1e6),
            p50: round3(ms(self.value_at_quantile(0.5))),
            p99: round3(ms(self.value_at_quantile(0.99))),
            p999: round3(ms(self.value_at_quantile(0.999))),
            max: round3(ms(self.max)),
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub avg: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The recorder shard of this thread: each recording thread has its own
    /// (up to the number of shards), so their locks are uncontended.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
}

/// Latencies and failures recorded by many threads, read every second.
pub struct Recorder {
    shards: Vec<Mutex<Histogram>>,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Recorder {
    pub fn new(shards: usize) -> Self {
        Recorder {
            shards: (0..shards.max(1)).map(|_| Mutex::new(Histogram::new())).collect(),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn record(&self, ns: u64) {
        let i = SHARD.with(|s| *s) % self.shards.len();
        self.shards[i].lock().record(ns);
    }

    pub fn fail(&self, error: Option<String>) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = error {
            *self.last_error.lock() = Some(e);
        }
    }

    /// What was recorded since the last call: the merged latencies, the
    /// failures, and the last failure's error.
    fn take(&self) -> (Histogram, u64, Option<String>) {
        let mut h = Histogram::new();
        for s in &self.shards {
            let mut s = s.lock();
            h.merge(&s);
            s.reset();
        }
        (h, self.failures.swap(0, Ordering::Relaxed), self.last_error.lock().take())
    }
}

/// The final figures of a run (`--json` prints this as one line).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "producer" or "consumer".
    pub role: &'static str,
    pub topic: String,
    pub threads: usize,
    /// Messages sent (producer) or consumed (consumer).
    pub total: u64,
    /// Producer: sends that failed or did not end SEND_OK. Consumer:
    /// messages delivered again (reconsume times > 0: an earlier consume of
    /// them failed or timed out).
    pub failures: u64,
    pub elapsed_secs: f64,
    pub tps: f64,
    pub latency_ms: LatencyMs,
    /// Consumer with `--prefill`: the backlog sent first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill: Option<u64>,
    /// Consumer with `--prefill`: the rate the backlog went in at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_tps: Option<f64>,
    /// Consumer with `--prefill`: whether all of that backlog was consumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drained: Option<bool>,
    /// Consumer with `skip_older`: messages sent before it started, left
    /// out of every figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
}

impl Summary {
    fn new(
        role: &'static str,
        topic: &str,
        threads: usize,
        total: &Histogram,
        failures: u64,
        elapsed: Duration,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        Summary {
            role,
            topic: topic.to_string(),
            threads,
            total: total.count(),
            failures,
            elapsed_secs: round3(secs),
            tps: if secs > 0.0 { (total.count() as f64 / secs).round() } else { 0.0 },
            latency_ms: total.latency_ms(),
            prefill: None,
            prefill_tps: None,
            drained: None,
            skipped: None,
        }
    }

    /// The summary as one human-readable line.
    pub fn text(&self) -> String {
        let l = &self.latency_ms;
        let verb = if self.role == "producer" { "sent" } else { "consumed" };
        let mut s = format!(
            "{}: {} {verb} in {:.3} s, {} msgs/s, {} failures; latency ms avg {:.3} p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
            self.role, self.total, self.elapsed_secs, self.tps, self.failures, l.avg, l.p50, l.p99, l.p999, l.max
        );
        if let (Some(n), Some(d)) = (self.prefill, self.drained) {
            s.push_str(&format!("; prefill {n} ({} msgs/s), drained: {d}", self.prefill_tps.unwrap_or(0.0)));
        }
        if let Some(n) = self.skipped.filter(|n| *n > 0) {
            s.push_str(&format!("; {n} messages sent before the start left out"));
        }
        s
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Nanoseconds since the epoch, now (the clock producers and consumers share).
pub fn epoch_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `size` random ASCII letters: a body that is readable when printed.
pub fn filled_body(size: usize) -> Vec<u8> {
    let mut x = epoch_nanos() | 1;
    (0..size)
        .map(|_| {
            // xorshift64: enough randomness for filler.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// Hands out send times `rate` per second apart from a start, one to each
/// caller: senders wait for their slot's deadline, so the overall rate stays
/// steady whatever each send takes (a late slot is sent at once).
pub struct Pacer {
    start: Instant,
    rate: u64,
    next: AtomicU64,
}

impl Pacer {
    pub fn new(rate: u64) -> Self {
        Pacer { start: Instant::now(), rate: rate.max(1), next: AtomicU64::new(0) }
    }

    /// The deadline of the next slot.
    pub fn next_slot(&self) -> Instant {
        let n = u128::from(self.next.fetch_add(1, Ordering::Relaxed));
        let ns = n * 1_000_000_000 / u128::from(self.rate);
        self.start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

/// `rmq bench producer` settings.
#[derive(Debug, Clone)]
pub struct ProducerBench {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    /// Sender threads, each sending synchronously in a loop.
    pub threads: usize,
    pub size: usize,
    /// None: until `stop` is set.
    pub duration: Option<Duration>,
    /// Messages per second over all threads; 0: as fast as they go.
    pub rate: u64,
}

/// `rmq bench consumer` settings.
#[derive(Debug, Clone)]
pub struct ConsumerBench {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    /// Consume threads (consumeThreadMin).
    pub threads: usize,
    pub from: ConsumeFromWhere,
    /// None: until `stop` is set (or, with a prefill, until it is drained).
    pub duration: Option<Duration>,
    /// Messages sent before the consumer starts; 0: none.
    pub prefill: u64,
    /// Body size of the prefill messages.
    pub size: usize,
    /// Leave out messages sent before the consumer started: a group without
    /// committed offsets starts at a queue's first message while the broker
    /// still holds it, whatever `from` says (as in Apache), and such a
    /// backlog would swamp the figures of a run meant to see new messages.
    pub skip_older: bool,
}

fn client_config(namesrv: &str) -> ClientConfig {
    ClientConfig { namesrv_addr: Some(namesrv.to_string()), ..Default::default() }
}

fn check_size(size: usize) -> Result<(), String> {
    if size == 0 { Err("the message size must be at least 1 byte".into()) } else { Ok(()) }
}

/// Prints a line to `out`; a closed output (e.g. `| head`) does not stop the run.
fn say(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Calls `tick` every second from `start` until `end` passes or `stop` is
/// set, with the time since the previous tick.
fn every_second(start: Instant, end: Option<Instant>, stop: &Signal, mut tick: impl FnMut(Duration)) {
    let mut last = start;
    let mut n = 1u32;
    loop {
        let next = start + Duration::from_secs(u64::from(n));
        let wake = end.map_or(next, |e| e.min(next));
        let stopped = stop.wait(Deadline::after(wake.saturating_duration_since(Instant::now())));
        let now = Instant::now();
        if !stopped && now >= next {
            tick(now - last);
            last = now;
            n += 1;
        }
        if stopped || end.is_some_and(|e| now >= e) {
            return;
        }
    }
}

/// One per-second line.
fn interval_line(what: &str, h: &Histogram, failures: u64, took: Duration, error: Option<String>) -> String {
    let l = h.latency_ms();
    let tps = h.count() as f64 / took.as_secs_f64().max(1e-9);
    let mut s = format!(
        "{what} TPS: {tps:.0} Avg(ms): {:.3} P50(ms): {:.3} P99(ms): {:.3} P99.9(ms): {:.3} Max(ms): {:.3} Failures: {failures}",
        l.avg, l.p50, l.p99, l.p999, l.max
    );
    if let Some(e) = error {
        s.push_str(&format!(" (last error: {e})"));
    }
    s
}

/// Runs the producer bench: `threads` threads send `size`-byte messages
/// synchronously, each stamped with its send time, paced to `rate` when set;
/// prints a line every second to `out` and returns the summary. Ends after
/// `duration`, or when `stop` is set.
pub fn run_producer(cfg: &ProducerBench, stop: Arc<Signal>, out: &mut dyn Write) -> Result<Summary, String> {
    check_size(cfg.size)?;
    let threads = cfg.threads.max(1);
    let producer = Arc::new(Producer::new(ProducerConfig::new(&cfg.group), client_config(&cfg.namesrv)));
    producer.start().map_err(|e| format!("cannot start the producer: {e}"))?;
    let recorder = Arc::new(Recorder::new(threads));
    let done = Arc::new(AtomicBool::new(false));
    let pacer = (cfg.rate > 0).then(|| Arc::new(Pacer::new(cfg.rate)));
    let body = Bytes::from(filled_body(cfg.size));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    for i in 1..=threads {
        let (p, r, d, pc, st) = (producer.clone(), recorder.clone(), done.clone(), pacer.clone(), stop.clone());
        let (topic, body) = (cfg.topic.clone(), body.clone());
        // RocketMQ's benchmark sends from Executors.newFixedThreadPool threads.
        let spawned = crate::common::thread::spawn(format!("pool-1-thread-{i}"), "bench", move || {
            send_loop(&p, &topic, &body, &r, &d, pc.as_deref(), &st)
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                done.store(true, Ordering::Relaxed);
                stop.set();
                for h in handles {
                    let _ = h.join();
                }
                producer.shutdown();
                return Err(format!("cannot start a sender thread: {e}"));
            }
        }
    }
    let mut total = Histogram::new();
    let mut failures = 0;
    let end = cfg.duration.filter(|d| !d.is_zero()).map(|d| start + d);
    every_second(start, end, &stop, |took| {
        let (h, f, err) = recorder.take();
        say(out, &interval_line("Send", &h, f, took, err));
        total.merge(&h);
        failures += f;
    });
    done.store(true, Ordering::Relaxed);
    stop.set();
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed();
    let (h, f, _) = recorder.take();
    total.merge(&h);
    failures += f;
    producer.shutdown();
    Ok(Summary::new("producer", &cfg.topic, threads, &total, failures, elapsed))
}

/// One sender thread: sync sends until `done`.
fn send_loop(
    producer: &Producer,
    topic: &str,
    body: &Bytes,
    recorder: &Recorder,
    done: &AtomicBool,
    pacer: Option<&Pacer>,
    stop: &Signal,
) {
    while !done.load(Ordering::Relaxed) {
        if let Some(p) = pacer {
            let slot = p.next_slot();
            let now = Instant::now();
            if slot > now && stop.wait(Deadline::after(slot - now)) {
                return;
            }
        }
        let mut msg = Message::new(topic, body.clone());
        msg.put_property(SEND_NS_PROPERTY, epoch_nanos().to_string());
        let begin = Instant::now();
        match producer.send(msg) {
            Ok(r) if r.status == SendStatus::SendOk => {
                recorder.record(u64::try_from(begin.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(r) => recorder.fail(Some(format!("{:?}", r.status))),
            Err(e) => {
                recorder.fail(Some(e.to_string()));
                // A broker that refuses at once is not hammered by a tight loop.
                stop.wait(Deadline::after(Duration::from_millis(10)));
            }
        }
    }
}

/// Runs the consumer bench: optionally sends a backlog of `prefill`
/// messages first (batches from several threads), then consumes `topic`
/// with a push consumer, recording each message's end-to-end latency;
/// prints a line every second to `out` and returns the summary. Ends after
/// `duration`, when `stop` is set, or (with a prefill and no duration) when
/// the whole backlog was consumed.
pub fn run_consumer(cfg: &ConsumerBench, stop: Arc<Signal>, out: &mut dyn Write) -> Result<Summary, String> {
    let threads = cfg.threads.max(1);
    let run_id = format!("{}-{}", std::process::id(), epoch_nanos());
    // The producer stays up until the consumer has started: both share the
    // process's client instance, which stops with its last user.
    let mut prefill = None;
    let mut producer = None;
    if cfg.prefill > 0 {
        check_size(cfg.size)?;
        let p =
            Arc::new(Producer::new(ProducerConfig::new(format!("{}_prefill", cfg.group)), client_config(&cfg.namesrv)));
        p.start().map_err(|e| format!("cannot start the prefill producer: {e}"))?;
        let (sent, took) = run_prefill(&p, cfg, &run_id, &stop, out)?;
        let tps = (sent as f64 / took.as_secs_f64().max(1e-9)).round();
        say(
            out,
            &format!("prefill: {sent} messages of {} bytes in {:.3} s ({tps} msgs/s)", cfg.size, took.as_secs_f64()),
        );
        prefill = Some((sent, tps));
        producer = Some(p);
    }
    let target = prefill.map_or(0, |(sent, _)| sent);
    let recorder = Arc::new(Recorder::new(threads));
    let drained_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let marked = Arc::new(AtomicU64::new(0));
    let skipped = Arc::new(AtomicU64::new(0));
    let start_ns = epoch_nanos();
    let listener = {
        let (recorder, drained_at, marked, skipped, stop, run_id) =
            (recorder.clone(), drained_at.clone(), marked.clone(), skipped.clone(), stop.clone(), run_id.clone());
        let skip_older = cfg.skip_older;
        move |msgs: &[MessageExt], _: &mut ConsumeConcurrentlyContext| {
            let now_ns = epoch_nanos();
            for m in msgs {
                let sent = sent_ns(m);
                if skip_older && sent < start_ns {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                recorder.record(now_ns.saturating_sub(sent));
                if m.reconsume_times > 0 {
                    recorder.fail(None);
                }
                if target > 0
                    && m.property(RUN_PROPERTY) == Some(run_id.as_str())
                    && marked.fetch_add(1, Ordering::Relaxed) + 1 == target
                {
                    *drained_at.lock() = Some(Instant::now());
                    stop.set();
                }
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }
    };
    let mut pc = PushConsumerConfig::new(&cfg.group);
    pc.consume_from_where = cfg.from;
    pc.consume_thread_min = threads;
    pc.consume_thread_max = pc.consume_thread_max.max(threads);
    let consumer = PushConsumer::new(pc, client_config(&cfg.namesrv));
    consumer.subscribe(&cfg.topic, "*").map_err(|e| format!("cannot subscribe to {}: {e}", cfg.topic))?;
    consumer.register_message_listener(MessageListener::concurrently(listener));
    let start = Instant::now();
    consumer.start().map_err(|e| format!("cannot start the consumer: {e}"))?;
    if let Some(p) = producer.take() {
        p.shutdown();
    }
    let mut total = Histogram::new();
    let mut failures = 0;
    let end = cfg.duration.filter(|d| !d.is_zero()).map(|d| start + d);
    every_second(start, end, &stop, |took| {
        let (h, f, _) = recorder.take();
        say(out, &interval_line("Consume", &h, f, took, None));
        total.merge(&h);
        failures += f;
    });
    let drained = *drained_at.lock();
    let elapsed = drained.unwrap_or_else(Instant::now) - start;
    consumer.shutdown();
    let (h, f, _) = recorder.take();
    total.merge(&h);
    failures += f;
    let mut s = Summary::new("consumer", &cfg.topic, threads, &total, failures, elapsed);
    if let Some((sent, tps)) = prefill {
        s.prefill = Some(sent);
        s.prefill_tps = Some(tps);
        s.drained = Some(drained.is_some());
    }
    if cfg.skip_older {
        s.skipped = Some(skipped.load(Ordering::Relaxed));
    }
    Ok(s)
}

/// When `m` was sent, in nanoseconds since the epoch: the bench's send
/// stamp when present, else the born timestamp (millisecond precision).
fn sent_ns(m: &MessageExt) -> u64 {
    match m.property(SEND_NS_PROPERTY).and_then(|v| v.parse::<u64>().ok()) {
        Some(sent) => sent,
        None => u64::try_from(m.born_timestamp).unwrap_or(0).saturating_mul(1_000_000),
    }
}

/// Threads that send the prefill backlog.
const PREFILL_THREADS: usize = 8;
/// Messages per prefill batch, and the most bytes a batch carries.
const PREFILL_BATCH: usize = 64;
const PREFILL_BATCH_BYTES: usize = 512 * 1024;

/// Sends `cfg.prefill` messages marked with `run_id` in batches from
/// [`PREFILL_THREADS`] threads; returns how many were stored and the time it took.
fn run_prefill(
    producer: &Arc<Producer>,
    cfg: &ConsumerBench,
    run_id: &str,
    stop: &Arc<Signal>,
    out: &mut dyn Write,
) -> Result<(u64, Duration), String> {
    let per_batch = (PREFILL_BATCH_BYTES / cfg.size.max(1)).clamp(1, PREFILL_BATCH) as u64;
    let left = Arc::new(AtomicU64::new(cfg.prefill));
    let sent = Arc::new(AtomicU64::new(0));
    let recorder = Arc::new(Recorder::new(PREFILL_THREADS));
    let finished = Arc::new(Signal::new());
    let running = Arc::new(AtomicUsize::new(PREFILL_THREADS));
    let body = Bytes::from(filled_body(cfg.size));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(PREFILL_THREADS);
    for i in 1..=PREFILL_THREADS {
        let (producer, to_send, sent, recorder, finished, running, stop) = (
            producer.clone(),
            left.clone(),
            sent.clone(),
            recorder.clone(),
            finished.clone(),
            running.clone(),
            stop.clone(),
        );
        let (body, topic, run_id) = (body.clone(), cfg.topic.clone(), run_id.to_string());
        let spawned = crate::common::thread::spawn(format!("pool-1-thread-{i}"), "bench", move || {
            while !stop.is_set() {
                let taken = to_send.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                    (l > 0).then(|| l.saturating_sub(per_batch))
                });
                let Ok(before) = taken else { break };
                let n = before.min(per_batch);
                let batch = (0..n)
                    .map(|_| {
                        let mut m = Message::new(topic.as_str(), body.clone());
                        m.put_property(RUN_PROPERTY, run_id.as_str());
                        m
                    })
                    .collect();
                match producer.send_batch(batch) {
                    Ok(r) if r.status == SendStatus::SendOk => {
                        sent.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(r) => recorder.fail(Some(format!("{:?}", r.status))),
                    Err(e) => recorder.fail(Some(e.to_string())),
                }
            }
            if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                finished.set();
            }
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                left.store(0, Ordering::Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err(format!("cannot start a prefill thread: {e}"));
            }
        }
    }
    every_second(start, None, &finished, |_| {
        let (_, f, err) = recorder.take();
        let mut line = format!("prefill: {} of {} sent", sent.load(Ordering::Relaxed), cfg.prefill);
        if f > 0 {
            line.push_str(&format!(", {f} batches failed (last error: {})", err.unwrap_or_default()));
        }
        say(out, &line);
    });
    for h in handles {
        let _ = h.join();
    }
    let took = start.elapsed();
    let (_, f, err) = recorder.take();
    if f > 0 {
        say(out, &format!("prefill: {f} batches failed (last error: {})", err.unwrap_or_default()));
    }
    if stop.is_set() {
        return Err("stopped during the prefill".into());
    }
    Ok((sent.load(Ordering::Relaxed), took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_within_one_percent() {
        for v in [0u64, 1, 127, 128, 129, 255, 256, 1000, 123_456, 10_000_000_000, u64::MAX / 3, u64::MAX] {
            let i = Histogram::index_of(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            let hi = Histogram::highest_of(i);
            assert!(hi >= v, "{v}: bucket top {hi}");
            assert!((hi - v) as f64 <= v as f64 / 100.0, "{v}: bucket top {hi} off by more than 1%");
            if i > 0 {
                assert!(Histogram::highest_of(i - 1) < v, "{v} belongs in an earlier bucket");
            }
        }
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 us .. 100 ms
        }
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.min(), 1000);
        assert_eq!(h.max(), 100_000_000);
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.01;
        assert!(near(h.value_at_quantile(0.5), 50_000_000), "p50 {}", h.value_at_quantile(0.5));
        assert!(near(h.value_at_quantile(0.99), 99_000_000), "p99 {}", h.value_at_quantile(0.99));
        assert!(near(h.value_at_quantile(0.999), 99_900_000), "p99.9 {}", h.value_at_quantile(0.999));
        assert_eq!(h.value_at_quantile(1.0), 100_000_000);
        assert!((h.mean() - 50_000_500.0).abs() < 1.0);
        let l = h.latency_ms();
        assert!((l.p50 - 50.0).abs() <= 0.5 && (l.p99 - 99.0).abs() <= 1.0 && l.max == 100.0, "{l:?}");
    }

    #[test]
    fn skewed_values_and_merging() {
        // 990 fast (100 us) and 10 slow (20 ms): p50 and p99 fast, p99.9 slow.
        let mut fast = Histogram::new();
        let mut slow = Histogram::new();
        for _ in 0..990 {
            fast.record(100_000);
        }
        for _ in 0..10 {
            slow.record(20_000_000);
        }
        let mut all = Histogram::new();
        all.merge(&fast);
        all.merge(&slow);
        all.merge(&Histogram::new());
        assert_eq!(all.count(), 1000);
        let fast_bucket = |v: u64| (100_000..=101_000).contains(&v);
        assert!(fast_bucket(all.value_at_quantile(0.5)), "{}", all.value_at_quantile(0.5));
        assert!(fast_bucket(all.value_at_quantile(0.99)), "{}", all.value_at_quantile(0.99));
        assert_eq!(all.value_at_quantile(0.999), 20_000_000, "clamped to the largest value recorded");
        assert_eq!(all.max(), 20_000_000);
        all.reset();
        assert_eq!((all.count(), all.max(), all.value_at_quantile(0.5), all.mean()), (0, 0, 0, 0.0));
        all.record(5);
        assert_eq!(all.value_at_quantile(0.99), 5, "usable after a reset");
    }

    #[test]
    fn recorder_merges_threads_and_resets_on_take() {
        let r = Arc::new(Recorder::new(4));
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let r = r.clone();
                s.spawn(move || {
                    for v in 0..1000 {
                        r.record(t * 1000 + v);
                    }
                });
            }
        });
        r.fail(Some("boom".into()));
        let (h, f, e) = r.take();
        assert_eq!((h.count(), h.min(), h.max(), f, e.as_deref()), (8000, 0, 7999, 1, Some("boom")));
        let (h, f, e) = r.take();
        assert_eq!((h.count(), f, e), (0, 0, None));
    }

    #[test]
    fn pacer_spaces_slots_by_the_rate() {
        let p = Pacer::new(1000);
        let first = p.next_slot();
        let slots: Vec<Instant> = (0..1000).map(|_| p.next_slot()).collect();
        assert_eq!(slots[0] - first, Duration::from_millis(1));
        assert_eq!(slots[999] - first, Duration::from_secs(1));
    }

    #[test]
    fn summary_json_has_the_figures() {
        let mut h = Histogram::new();
        h.record(2_000_000);
        let s = Summary::new("producer", "T", 4, &h, 0, Duration::from_secs(2));
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["total"], 1);
        assert_eq!(v["tps"], 1.0);
        assert_eq!(v["latency_ms"]["p99"], 2.0);
        assert!(v.get("prefill").is_none());
        assert!(s.text().contains("1 sent"), "{}", s.text());
    }
}
