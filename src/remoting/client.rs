//! `RemotingClient` (RocketMQ: NettyRemotingClient) with its literal threads:
//! `NettyClientSelector_1` reads every connection and cuts frames,
//! `NettyClientWorkerThread_1..4` decode them and complete waiting requests or
//! run processors for requests the server sends, `NettyClientPublicExecutor_1..N`
//! run async callbacks, `ClientHouseKeepingService` fails timed-out requests
//! every second.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::common::wait::{Deadline, Semaphore};
use crate::common::{ServiceThread, ThreadPool};
use crate::remoting::command::{DEFAULT_MAX_FRAME, RemotingCommand};
use crate::remoting::connection::Connection;
use crate::remoting::dispatch::{
    Decoders, DecodingSink, InvokeCallback, InvokeResult, ProcessorTable, RequestProcessor, ResponseTable, Waiter,
};
use crate::remoting::error::RemotingError;
use crate::remoting::event_loop::{LoopConfig, SelectorHandle};

/// RocketMQ: NettyClientConfig.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `NettyClientWorkerThread_N` count (clientWorkerThreads, 4).
    pub worker_threads: usize,
    /// `NettyClientPublicExecutor_N` count (clientCallbackExecutorThreads, cores).
    pub callback_threads: usize,
    /// Async invokes in flight at once (clientAsyncSemaphoreValue, 65535).
    pub async_permits: usize,
    /// Oneway invokes in flight at once (clientOnewaySemaphoreValue, 65535).
    pub oneway_permits: usize,
    /// connectTimeoutMillis, 3 s.
    pub connect_timeout: Duration,
    /// clientChannelMaxIdleTimeSeconds, 120 s.
    pub idle_timeout: Duration,
    pub max_frame: usize,
    /// Bytes queued for one connection before it is closed.
    pub max_outbound_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            worker_threads: 4,
            callback_threads: std::thread::available_parallelism().map_or(4, |n| n.get()),
            async_permits: 65535,
            oneway_permits: 65535,
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(120),
            max_frame: DEFAULT_MAX_FRAME,
            max_outbound_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The per-address connection, created on first use. Connecting holds
/// `connecting`, so one address is dialled once however many callers wait.
#[derive(Default)]
struct ChannelSlot {
    conn: RwLock<Option<Arc<Connection>>>,
    connecting: Mutex<()>,
}

struct Inner {
    config: ClientConfig,
    table: Arc<ResponseTable>,
    processors: Arc<ProcessorTable>,
    channels: RwLock<HashMap<String, Arc<ChannelSlot>>>,
    async_permits: Arc<Semaphore>,
    oneway_permits: Semaphore,
}

/// A client connection pool with request/response matching.
pub struct RemotingClient {
    inner: Arc<Inner>,
    selector: SelectorHandle,
    decoders: Arc<Decoders>,
    callbacks: Arc<ThreadPool>,
    housekeeping: ServiceThread,
}

impl RemotingClient {
    /// Starts the client's threads.
    pub fn start(config: ClientConfig) -> std::io::Result<Self> {
        let callbacks = Arc::new(ThreadPool::new(
            "NettyClientPublicExecutor_",
            "remoting-client",
            config.callback_threads,
            config.async_permits.max(1024),
        )?);
        let inner = Arc::new(Inner {
            table: Arc::new(ResponseTable::new(Some(callbacks.clone()))),
            processors: Arc::new(ProcessorTable::default()),
            channels: RwLock::new(HashMap::new()),
            async_permits: Arc::new(Semaphore::new(config.async_permits)),
            oneway_permits: Semaphore::new(config.oneway_permits),
            config: config.clone(),
        });
        let decoders = Arc::new(Decoders::start(
            "NettyClientWorkerThread_",
            "remoting-client",
            config.worker_threads,
            inner.table.clone(),
            inner.processors.clone(),
        )?);
        let sink = Arc::new(DecodingSink { decoders: decoders.clone(), table: inner.table.clone(), on_close: None });
        let selector = SelectorHandle::start(
            "NettyClientSelector_1".into(),
            "remoting-client",
            LoopConfig { max_frame: config.max_frame, idle_timeout: config.idle_timeout },
            sink,
        )?;
        let hk = inner.clone();
        let housekeeping = ServiceThread::start("ClientHouseKeepingService", "remoting-client", move |ctx| {
            while !ctx.is_stopped() {
                crate::common::thread::doing("sleeping until the next response table scan");
                ctx.wait_for_running(Duration::from_secs(1));
                crate::common::thread::doing("scanning the response table");
                hk.table.fail_expired();
            }
        })?;
        Ok(RemotingClient { inner, selector, decoders, callbacks, housekeeping })
    }

    /// Runs `processor` on a worker thread for requests with `code` that a
    /// server sends us (RocketMQ: registerProcessor).
    pub fn register_processor(&self, code: i32, processor: Arc<dyn RequestProcessor>) {
        self.inner.processors.register(code, processor, None);
    }

    /// Sends `request` and blocks until its response or `timeout`.
    pub fn invoke_sync(&self, addr: &str, request: RemotingCommand, timeout: Duration) -> InvokeResult {
        let deadline = Deadline::after(timeout);
        let conn = self.connection(addr, deadline)?;
        let slot = Arc::new(crate::common::wait::OneShot::new());
        let opaque = request.opaque;
        self.inner.table.insert(opaque, &conn, timeout, Waiter::Sync(slot.clone()));
        if let Err(e) = conn.send(&request) {
            self.inner.table.remove(opaque);
            return Err(e);
        }
        match slot.wait(deadline) {
            Some(r) => r,
            None => {
                self.inner.table.remove(opaque);
                Err(RemotingError::Timeout { addr: addr.to_string(), timeout })
            }
        }
    }

    /// Sends `request`; `callback` runs on `NettyClientPublicExecutor_N` with
    /// the response or the error (timeout, closed connection). Errors found
    /// before sending are returned here and the callback is not called.
    pub fn invoke_async(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        callback: impl FnOnce(InvokeResult) + Send + 'static,
    ) -> Result<(), RemotingError> {
        let deadline = Deadline::after(timeout);
        let conn = self.connection(addr, deadline)?;
        if !self.inner.async_permits.try_acquire(deadline.remaining()) {
            return Err(RemotingError::TooMuchRequest(format!(
                "invokeAsync to {addr}: {} requests in flight",
                self.inner.config.async_permits
            )));
        }
        let opaque = request.opaque;
        let cb: InvokeCallback = Box::new(callback);
        self.inner.table.insert(opaque, &conn, timeout, Waiter::Async(cb, Some(self.inner.async_permits.clone())));
        if let Err(e) = conn.send(&request) {
            if let Some(Waiter::Async(_, _)) = self.inner.table.remove(opaque) {
                self.inner.async_permits.release();
            }
            return Err(e);
        }
        Ok(())
    }

    /// Runs `job` on `NettyClientPublicExecutor_N`, where async callbacks run
    /// (RocketMQ: the client's publicExecutor); on this thread when the pool is
    /// full or stopped. For results found without a response to wait for.
    pub fn run_on_callback_thread(&self, job: impl FnOnce() + Send + 'static) {
        crate::remoting::dispatch::run_or_inline(&self.callbacks, job)
    }

    /// Sends `request` with the oneway flag and waits for nothing.
    pub fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        let deadline = Deadline::after(timeout);
        let conn = self.connection(addr, deadline)?;
        if !self.inner.oneway_permits.try_acquire(deadline.remaining()) {
            return Err(RemotingError::TooMuchRequest(format!(
                "invokeOneway to {addr}: {} requests in flight",
                self.inner.config.oneway_permits
            )));
        }
        request.mark_oneway();
        let r = conn.send(&request);
        self.inner.oneway_permits.release();
        r
    }

    /// The open connection to `addr`, connecting first when there is none.
    fn connection(&self, addr: &str, deadline: Deadline) -> Result<Arc<Connection>, RemotingError> {
        let slot = self.inner.channels.read().get(addr).cloned();
        let slot = match slot {
            Some(s) => s,
            None => self.inner.channels.write().entry(addr.to_string()).or_default().clone(),
        };
        if let Some(c) = slot.conn.read().as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let _dialling = slot.connecting.lock();
        if let Some(c) = slot.conn.read().as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let conn = Arc::new(self.connect(addr, deadline)?);
        self.selector
            .register(conn.clone())
            .map_err(|e| RemotingError::Connect { addr: addr.into(), reason: e.to_string() })?;
        *slot.conn.write() = Some(conn.clone());
        Ok(conn)
    }

    fn connect(&self, addr: &str, deadline: Deadline) -> Result<Connection, RemotingError> {
        let fail = |reason: String| RemotingError::Connect { addr: addr.to_string(), reason };
        let target: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|e| fail(format!("bad address: {e}")))?
            .next()
            .ok_or_else(|| fail("address resolves to nothing".into()))?;
        let wait = self.inner.config.connect_timeout.min(deadline.remaining());
        if wait.is_zero() {
            return Err(fail("no time left to connect".into()));
        }
        let std = StdTcpStream::connect_timeout(&target, wait).map_err(|e| fail(e.to_string()))?;
        std.set_nonblocking(true).map_err(|e| fail(e.to_string()))?;
        let conn = Connection::new(
            mio::net::TcpStream::from_std(std),
            self.inner.config.max_outbound_bytes,
            self.selector.write_requests(),
        )
        .map_err(|e| fail(e.to_string()))?;
        log::info!("connected to {addr}");
        Ok(conn)
    }

    /// Closes the connection to `addr`, failing what waits on it.
    pub fn close_channel(&self, addr: &str) {
        let slot = self.inner.channels.read().get(addr).cloned();
        if let Some(slot) = slot
            && let Some(c) = slot.conn.write().take()
        {
            c.close("closed by the client");
        }
    }

    /// Addresses with an open connection.
    pub fn connected_addrs(&self) -> Vec<String> {
        self.inner
            .channels
            .read()
            .iter()
            .filter(|(_, s)| s.conn.read().as_ref().is_some_and(|c| !c.is_closed()))
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Requests waiting for a response now.
    pub fn pending_requests(&self) -> usize {
        self.inner.table.len()
    }

    /// Stops every thread, failing requests still waiting. Idempotent.
    pub fn shutdown(&self) {
        self.housekeeping.shutdown();
        self.selector.shutdown();
        self.inner.table.fail_all();
        self.decoders.shutdown();
        self.callbacks.shutdown();
    }
}

impl Drop for RemotingClient {
    fn drop(&mut self) {
        self.shutdown();
    }
}
