//! What happens to a decoded command, on client and server alike: a response
//! completes the request waiting for it (the response table); a request runs
//! its registered processor, on the processor's pool or in place.

use std::collections::HashMap;
use std::io;
use std::thread::JoinHandle;

use bytes::Bytes;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::common::queue::{BlockingQueue, PushError};
use crate::common::{ThreadPool, thread};
use crate::remoting::code::response;
use crate::remoting::command::RemotingCommand;
use crate::remoting::connection::{Channel, Connection, ReplyTo};
use crate::remoting::error::RemotingError;
use crate::remoting::event_loop::FrameSink;

/// The answer to an invoke.
pub type InvokeResult = Result<RemotingCommand, RemotingError>;

/// Called once with the response or the error of an async invoke.
pub type InvokeCallback = Box<dyn FnOnce(InvokeResult) + Send + 'static>;

/// Handles one request code. RocketMQ: NettyRequestProcessor.
pub trait RequestProcessor: Send + Sync + 'static {
    /// Handles `request` from `channel`. Return the response, or `None` when
    /// there is none (oneway) or it will be sent later through
    /// [`Channel::respond`] (a held pull).
    fn process(&self, channel: &Channel, request: RemotingCommand) -> Option<RemotingCommand>;

    /// True to answer SYSTEM_BUSY instead of queueing (e.g. a busy store).
    fn reject_request(&self) -> bool {
        false
    }
}

impl<F> RequestProcessor for F
where
    F: Fn(&Channel, RemotingCommand) -> Option<RemotingCommand> + Send + Sync + 'static,
{
    fn process(&self, channel: &Channel, request: RemotingCommand) -> Option<RemotingCommand> {
        self(channel, request)
    }
}

pub(crate) enum Waiter {
    Sync(Arc<crate::common::wait::OneShot<InvokeResult>>),
    Async(InvokeCallback, Option<Arc<crate::common::wait::Semaphore>>),
}

struct Pending {
    conn_id: u64,
    addr: std::net::SocketAddr,
    deadline: Instant,
    timeout: Duration,
    waiter: Waiter,
}

/// Shards of the response table: callers on many threads insert and the
/// worker threads remove at once; one lock would make them queue.
const SHARDS: usize = 16;

/// Requests waiting for their responses, by opaque. RocketMQ: responseTable.
pub(crate) struct ResponseTable {
    shards: [Mutex<HashMap<i32, Pending>>; SHARDS],
    /// Runs async callbacks (RocketMQ: the public executor).
    callbacks: Option<Arc<ThreadPool>>,
}

impl ResponseTable {
    pub fn new(callbacks: Option<Arc<ThreadPool>>) -> Self {
        ResponseTable { shards: std::array::from_fn(|_| Mutex::new(HashMap::new())), callbacks }
    }

    fn shard(&self, opaque: i32) -> &Mutex<HashMap<i32, Pending>> {
        &self.shards[opaque as u32 as usize % SHARDS]
    }

    /// Removes and returns every entry `pred` selects.
    fn take_where(&self, pred: impl Fn(&Pending) -> bool) -> Vec<Pending> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut t = shard.lock();
            let ids: Vec<i32> = t.iter().filter(|(_, p)| pred(p)).map(|(o, _)| *o).collect();
            out.extend(ids.into_iter().filter_map(|o| t.remove(&o)));
        }
        out
    }

    pub fn insert(&self, opaque: i32, conn: &Connection, timeout: Duration, waiter: Waiter) {
        let p = Pending { conn_id: conn.id(), addr: conn.peer(), deadline: Instant::now() + timeout, timeout, waiter };
        self.shard(opaque).lock().insert(opaque, p);
    }

    /// Takes the entry back (the caller gave up or could not send).
    pub fn remove(&self, opaque: i32) -> Option<Waiter> {
        self.shard(opaque).lock().remove(&opaque).map(|p| p.waiter)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Completes the request `response` answers.
    pub fn complete(&self, response: RemotingCommand) {
        let entry = self.shard(response.opaque).lock().remove(&response.opaque);
        match entry {
            Some(p) => self.finish(p.waiter, Ok(response)),
            None => {
                log::debug!("response {} for opaque {} came after its request gave up", response.code, response.opaque)
            }
        }
    }

    /// Fails at once every request waiting on a connection that closed.
    pub fn fail_connection(&self, conn: &Connection) {
        for p in self.take_where(|p| p.conn_id == conn.id()) {
            self.finish(p.waiter, Err(RemotingError::ConnectionClosed { addr: p.addr.to_string() }));
        }
    }

    /// Fails requests whose deadline passed (RocketMQ: scanResponseTable).
    pub fn fail_expired(&self) {
        let now = Instant::now();
        for p in self.take_where(|p| p.deadline <= now) {
            self.finish(p.waiter, Err(RemotingError::Timeout { addr: p.addr.to_string(), timeout: p.timeout }));
        }
    }

    /// Fails everything (shutdown).
    pub fn fail_all(&self) {
        for p in self.take_where(|_| true) {
            self.finish(p.waiter, Err(RemotingError::ShutDown));
        }
    }

    pub fn finish(&self, waiter: Waiter, result: InvokeResult) {
        match waiter {
            Waiter::Sync(slot) => slot.set(result),
            Waiter::Async(cb, permit) => {
                let job = move || {
                    let _release = permit.map(PermitGuard);
                    cb(result)
                };
                match &self.callbacks {
                    Some(pool) => run_or_inline(pool, job),
                    None => run_caught(job),
                }
            }
        }
    }
}

/// Releases an async permit when the callback finishes (or panics).
struct PermitGuard(Arc<crate::common::wait::Semaphore>);

impl Drop for PermitGuard {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Queues `job` on `pool`, or runs it on this thread when the pool is full.
pub(crate) fn run_or_inline(pool: &ThreadPool, job: impl FnOnce() + Send + 'static) {
    let cell = Arc::new(Mutex::new(Some(job)));
    let c = cell.clone();
    if pool
        .try_execute(move || {
            if let Some(j) = c.lock().take() {
                j()
            }
        })
        .is_err()
    {
        log::warn!(
            "{} is full; running a callback on {}",
            pool.name(),
            crate::common::thread::current_name().unwrap_or_default()
        );
        let job = cell.lock().take();
        if let Some(j) = job {
            run_caught(j);
        }
    }
}

fn run_caught(job: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        log::error!("an invoke callback panicked");
    }
}

/// A processor and the pool it runs on (`None`: in place).
type Registered = (Arc<dyn RequestProcessor>, Option<Arc<ThreadPool>>);

/// Request code -> registered processor.
#[derive(Default)]
pub(crate) struct ProcessorTable {
    by_code: RwLock<HashMap<i32, Registered>>,
    default: RwLock<Option<Registered>>,
}

impl ProcessorTable {
    pub fn register(&self, code: i32, p: Arc<dyn RequestProcessor>, pool: Option<Arc<ThreadPool>>) {
        self.by_code.write().insert(code, (p, pool));
    }

    pub fn register_default(&self, p: Arc<dyn RequestProcessor>, pool: Option<Arc<ThreadPool>>) {
        *self.default.write() = Some((p, pool));
    }

    fn lookup(&self, code: i32) -> Option<Registered> {
        if let Some(e) = self.by_code.read().get(&code) {
            return Some(e.clone());
        }
        self.default.read().clone()
    }
}

/// Remark RocketMQ sends with SYSTEM_BUSY when a pool is full.
pub const OVERLOAD_REMARK: &str = "[OVERLOAD]system busy, start flow control for a while";

/// Routes one decoded command.
pub(crate) fn dispatch(
    table: &ResponseTable,
    processors: &ProcessorTable,
    conn: &Arc<Connection>,
    cmd: RemotingCommand,
) {
    if cmd.is_response() {
        table.complete(cmd);
        return;
    }
    let channel = Channel(conn.clone());
    let to = ReplyTo::of(&cmd);
    let Some((processor, pool)) = processors.lookup(cmd.code) else {
        let remark = format!(" request type {} not supported", cmd.code);
        log::warn!("{} from {}:{remark}", cmd.code_name(), conn.peer());
        let _ = channel.respond(to, RemotingCommand::response(response::REQUEST_CODE_NOT_SUPPORTED, remark));
        return;
    };
    if processor.reject_request() {
        let _ = channel.respond(
            to,
            RemotingCommand::response(
                response::SYSTEM_BUSY,
                "[REJECTREQUEST]system busy, start flow control for a while".to_string(),
            ),
        );
        return;
    }
    match pool {
        None => run_processor(&*processor, &channel, to, cmd),
        Some(pool) => {
            let ch = channel.clone();
            if let Err(e) = pool.try_execute(move || run_processor(&*processor, &ch, to, cmd)) {
                log::warn!("{e}; answering SYSTEM_BUSY to {}", conn.peer());
                let _ =
                    channel.respond(to, RemotingCommand::response(response::SYSTEM_BUSY, OVERLOAD_REMARK.to_string()));
            }
        }
    }
}

fn run_processor(p: &dyn RequestProcessor, channel: &Channel, to: ReplyTo, cmd: RemotingCommand) {
    // Named only for a message: formatting it for every request showed in profiles.
    let request_code = cmd.code;
    let code = || crate::remoting::code::label(crate::remoting::code::request::name(request_code), request_code);
    let result = catch_unwind(AssertUnwindSafe(|| p.process(channel, cmd)));
    let reply = match result {
        Ok(r) => r,
        Err(_) => {
            let code = code();
            log::error!("processor for {code} panicked on a request from {}", channel.remote_addr());
            Some(RemotingCommand::response(response::SYSTEM_ERROR, format!("processing {code} failed unexpectedly")))
        }
    };
    if let Some(r) = reply
        && let Err(e) = channel.respond(to, r)
    {
        log::warn!("cannot answer {} to {}: {e}", code(), channel.remote_addr());
    }
}

/// Frames waiting for a decoding thread.
type FrameQueue = Arc<BlockingQueue<(Arc<Connection>, Bytes)>>;

/// The decoding threads (`NettyClientWorkerThread_N`, `NettyServerCodecThread_N`):
/// each has its own queue, and one connection's frames always go to the same
/// thread, so they are handled in the order they came.
pub(crate) struct Decoders {
    queues: Vec<FrameQueue>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Decoders {
    pub fn start(
        prefix: &str,
        role: &'static str,
        count: usize,
        table: Arc<ResponseTable>,
        processors: Arc<ProcessorTable>,
    ) -> io::Result<Self> {
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for i in 1..=count.max(1) {
            let q: FrameQueue = Arc::new(BlockingQueue::new(65536));
            queues.push(q.clone());
            let (table, processors) = (table.clone(), processors.clone());
            threads.push(thread::spawn(format!("{prefix}{i}"), role, move || {
                loop {
                    thread::doing("waiting for frames");
                    let Some((conn, frame)) = q.pop() else { break };
                    thread::doing("decoding a frame");
                    match RemotingCommand::decode(frame) {
                        Ok(cmd) => dispatch(&table, &processors, &conn, cmd),
                        Err(e) => conn.close(&format!("malformed frame: {e}")),
                    }
                }
            })?);
        }
        Ok(Decoders { queues, threads: Mutex::new(threads) })
    }

    /// Queues a frame for its connection's thread; gives it back when full.
    pub fn offer(&self, conn: &Arc<Connection>, frame: Bytes) -> Result<(), Bytes> {
        let q = &self.queues[conn.id() as usize % self.queues.len()];
        q.try_push((conn.clone(), frame)).map_err(|e| match e {
            PushError::Full((_, f)) | PushError::Closed((_, f)) => f,
        })
    }

    /// Lets the threads finish what is queued, then joins them.
    pub fn shutdown(&self) {
        for q in &self.queues {
            q.close();
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

/// Called when a connection ends.
pub(crate) type CloseHook = Box<dyn Fn(&Arc<Connection>) + Send + Sync>;

/// What a selector does with frames and closes: decode on the decoding
/// threads; on close, fail the requests waiting on the connection and tell
/// the listeners (if any).
pub(crate) struct DecodingSink {
    pub decoders: Arc<Decoders>,
    pub table: Arc<ResponseTable>,
    pub on_close: Option<CloseHook>,
}

impl FrameSink for DecodingSink {
    fn on_frame(&self, conn: &Arc<Connection>, frame: Bytes) -> Result<(), Bytes> {
        self.decoders.offer(conn, frame)
    }

    fn on_close(&self, conn: &Arc<Connection>) {
        self.table.fail_connection(conn);
        if let Some(f) = &self.on_close {
            f(conn);
        }
    }
}
