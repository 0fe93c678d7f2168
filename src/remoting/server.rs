//! `RemotingServer` (RocketMQ: NettyRemotingServer) with its literal threads:
//! `NettyBoss_1` accepts on every listen address, `NettyServerNIOSelector_1..3`
//! read the sockets and cut frames, `NettyServerCodecThread_1..N` decode and
//! route each request to its processor's bounded pool (full: SYSTEM_BUSY),
//! `NettyEventExecutor` tells listeners about closed connections, and
//! `ServerHouseKeepingService` fails server-initiated requests that timed out.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::common::wait::Deadline;
use crate::common::{ServiceThread, ThreadPool, thread};
use crate::remoting::command::{DEFAULT_MAX_FRAME, RemotingCommand};
use crate::remoting::connection::{Channel, Connection};
use crate::remoting::dispatch::{
    CloseHook, Decoders, DecodingSink, InvokeResult, ProcessorTable, RequestProcessor, ResponseTable, Waiter,
};
use crate::remoting::error::RemotingError;
use crate::remoting::event_loop::{FrameSink, LoopConfig, SelectorHandle};

/// RocketMQ: NettyServerConfig.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to listen on (a broker: listenPort and the VIP port - 2).
    pub listen: Vec<SocketAddr>,
    /// serverSelectorThreads, 3.
    pub selector_threads: usize,
    /// serverWorkerThreads (`NettyServerCodecThread_N`): Apache uses 8; we use
    /// the core count up to 8.
    pub codec_threads: usize,
    /// serverChannelMaxIdleTimeSeconds, 120 s.
    pub idle_timeout: Duration,
    pub max_frame: usize,
    /// Bytes queued for one connection before it is closed (slow reader).
    pub max_outbound_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            selector_threads: 3,
            codec_threads: std::thread::available_parallelism().map_or(4, |n| n.get()).min(8),
            idle_timeout: Duration::from_secs(120),
            max_frame: DEFAULT_MAX_FRAME,
            max_outbound_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Told about connections that end. RocketMQ: ChannelEventListener.
pub trait ChannelEventListener: Send + Sync + 'static {
    fn on_channel_close(&self, channel: &Channel);
}

struct Running {
    boss: JoinHandle<()>,
    boss_waker: Arc<Waker>,
    boss_stopped: Arc<AtomicBool>,
    selectors: Arc<Vec<SelectorHandle>>,
    decoders: Arc<Decoders>,
    events: Option<JoinHandle<()>>,
    housekeeping: ServiceThread,
}

/// Sends requests from a server to its connected clients and matches
/// their answers (the server's response table).
#[derive(Clone)]
pub struct ServerInvoker(Arc<ResponseTable>);

impl ServerInvoker {
    /// Sends `request` on `channel` and waits up to `timeout` for the answer.
    pub fn invoke_sync(&self, channel: &Channel, request: RemotingCommand, timeout: Duration) -> InvokeResult {
        let deadline = Deadline::after(timeout);
        let slot = Arc::new(crate::common::wait::OneShot::new());
        let opaque = request.opaque;
        self.0.insert(opaque, channel.connection(), timeout, Waiter::Sync(slot.clone()));
        if let Err(e) = channel.connection().send(&request) {
            self.0.remove(opaque);
            return Err(e);
        }
        match slot.wait(deadline) {
            Some(r) => r,
            None => {
                self.0.remove(opaque);
                Err(RemotingError::Timeout { addr: channel.remote_addr().to_string(), timeout })
            }
        }
    }
}

/// A server: listeners, selectors, codec threads and registered processors.
pub struct RemotingServer {
    config: ServerConfig,
    processors: Arc<ProcessorTable>,
    table: Arc<ResponseTable>,
    listeners: Vec<Arc<dyn ChannelEventListener>>,
    local_addrs: Vec<SocketAddr>,
    running: Option<Running>,
}

const BOSS_WAKER: Token = Token(usize::MAX);

impl RemotingServer {
    pub fn new(config: ServerConfig) -> Self {
        RemotingServer {
            config,
            processors: Arc::new(ProcessorTable::default()),
            table: Arc::new(ResponseTable::new(None)),
            listeners: Vec::new(),
            local_addrs: Vec::new(),
            running: None,
        }
    }

    /// Runs `processor` on `pool` for requests with `code`.
    pub fn register_processor(&self, code: i32, processor: Arc<dyn RequestProcessor>, pool: Arc<ThreadPool>) {
        self.processors.register(code, processor, Some(pool));
    }

    /// Runs `processor` on `pool` for every code without its own processor.
    pub fn register_default_processor(&self, processor: Arc<dyn RequestProcessor>, pool: Arc<ThreadPool>) {
        self.processors.register_default(processor, Some(pool));
    }

    /// Adds a listener for closed connections (before `start`).
    pub fn add_channel_listener(&mut self, listener: Arc<dyn ChannelEventListener>) {
        self.listeners.push(listener);
    }

    /// Binds every listen address and starts the threads. Returns the bound
    /// addresses (port 0 resolved).
    pub fn start(&mut self) -> io::Result<Vec<SocketAddr>> {
        if self.running.is_some() {
            return Ok(self.local_addrs.clone());
        }
        let cfg = self.config.clone();
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for (i, addr) in cfg.listen.iter().enumerate() {
            let mut l = TcpListener::bind(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            poll.registry().register(&mut l, Token(i), Interest::READABLE)?;
            self.local_addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let boss_waker = Arc::new(Waker::new(poll.registry(), BOSS_WAKER)?);

        let (events_tx, events) = if self.listeners.is_empty() {
            (None, None)
        } else {
            let (tx, rx) = crossbeam_channel::unbounded::<Channel>();
            let ls = self.listeners.clone();
            let h = thread::spawn("NettyEventExecutor", "remoting-server", move || {
                loop {
                    thread::doing("waiting for channel events");
                    let Ok(ch) = rx.recv() else { break };
                    thread::doing("notifying channel listeners");
                    for l in &ls {
                        l.on_channel_close(&ch);
                    }
                }
            })?;
            (Some(tx), Some(h))
        };

        let decoders = Arc::new(Decoders::start(
            "NettyServerCodecThread_",
            "remoting-server",
            cfg.codec_threads,
            self.table.clone(),
            self.processors.clone(),
        )?);
        let on_close = events_tx.map(|tx| {
            Box::new(move |c: &Arc<Connection>| {
                let _ = tx.send(Channel(c.clone()));
            }) as CloseHook
        });
        let sink: Arc<dyn FrameSink> =
            Arc::new(DecodingSink { decoders: decoders.clone(), table: self.table.clone(), on_close });
        let mut selectors = Vec::new();
        for i in 1..=cfg.selector_threads.max(1) {
            selectors.push(SelectorHandle::start(
                format!("NettyServerNIOSelector_{i}"),
                "remoting-server",
                LoopConfig { max_frame: cfg.max_frame, idle_timeout: cfg.idle_timeout },
                sink.clone(),
            )?);
        }
        drop(sink);
        let selectors = Arc::new(selectors);

        let boss_stopped = Arc::new(AtomicBool::new(false));
        let stopped = boss_stopped.clone();
        let sel = selectors.clone();
        let max_out = cfg.max_outbound_bytes;
        let boss = thread::spawn("NettyBoss_1", "remoting-server", move || {
            run_boss(poll, listeners, &sel, &stopped, max_out)
        })?;
        let table = self.table.clone();
        let housekeeping = ServiceThread::start("ServerHouseKeepingService", "remoting-server", move |ctx| {
            while !ctx.is_stopped() {
                thread::doing("sleeping until the next response table scan");
                ctx.wait_for_running(Duration::from_secs(1));
                thread::doing("scanning the response table");
                table.fail_expired();
            }
        })?;
        self.running = Some(Running { boss, boss_waker, boss_stopped, selectors, decoders, events, housekeeping });
        log::info!("remoting server listening on {:?}", self.local_addrs);
        Ok(self.local_addrs.clone())
    }

    /// The bound addresses (after `start`).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Sends a request to a connected client and waits for its answer
    /// (e.g. GET_CONSUMER_RUNNING_INFO).
    pub fn invoke_sync(&self, channel: &Channel, request: RemotingCommand, timeout: Duration) -> InvokeResult {
        self.invoker().invoke_sync(channel, request, timeout)
    }

    /// A handle processors keep to send requests to clients.
    pub fn invoker(&self) -> ServerInvoker {
        ServerInvoker(self.table.clone())
    }

    /// Sends a request that expects no answer to a connected client.
    pub fn invoke_oneway(&self, channel: &Channel, request: RemotingCommand) -> Result<(), RemotingError> {
        channel.send_oneway(request)
    }

    /// Stops accepting, closes every connection and joins every thread.
    pub fn shutdown(&mut self) {
        let Some(r) = self.running.take() else { return };
        r.boss_stopped.store(true, Ordering::Release);
        let _ = r.boss_waker.wake();
        let _ = r.boss.join();
        for s in r.selectors.iter() {
            s.shutdown();
        }
        drop(r.selectors);
        r.decoders.shutdown();
        if let Some(e) = r.events {
            let _ = e.join();
        }
        r.housekeeping.shutdown();
        self.table.fail_all();
    }
}

impl Drop for RemotingServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run_boss(
    mut poll: Poll,
    listeners: Vec<TcpListener>,
    selectors: &[SelectorHandle],
    stopped: &AtomicBool,
    max_outbound: usize,
) {
    let mut events = Events::with_capacity(64);
    let mut next = 0usize;
    while !stopped.load(Ordering::Acquire) {
        thread::doing("waiting for connections");
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("acceptor poll failed: {e}");
            }
            continue;
        }
        for ev in events.iter() {
            let Some(listener) = listeners.get(ev.token().0) else { continue };
            loop {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        thread::doing("accepting a connection");
                        let sel = &selectors[next % selectors.len()];
                        next = next.wrapping_add(1);
                        match Connection::new(stream, max_outbound, sel.write_requests()) {
                            Ok(conn) => {
                                log::debug!("accepted connection from {peer}");
                                if let Err(e) = sel.register(Arc::new(conn)) {
                                    log::warn!("cannot hand connection from {peer} to a selector: {e}");
                                }
                            }
                            Err(e) => log::warn!("dropping connection from {peer}: {e}"),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        log::error!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
}
