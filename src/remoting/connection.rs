//! One TCP connection, shared by its selector (which reads it) and every
//! thread that writes to it (callers, processors), and the [`Channel`] handle
//! processors use to answer on it.
//!
//! Writing: a writer encodes its command, adds the frame to the connection's
//! lock-free outbound queue and, unless another thread is writing already,
//! takes the write lock and hands everything queued to the kernel in one
//! `writev` (so concurrent writers batch each other's frames). What the
//! kernel does not take waits for the selector, which writes it when the
//! socket turns writable. This skips a thread hop Netty makes (handing every
//! write to the event loop) while keeping one writer at a time per socket.
//! Queued bytes are capped: a peer that does not read is disconnected, never
//! buffered for without bound.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use bytes::{Buf, Bytes};
use crossbeam_queue::SegQueue;
use mio::net::TcpStream;
use parking_lot::Mutex;

use crate::common::time::now_millis;
use crate::remoting::command::{RemotingCommand, SerializeType};
use crate::remoting::error::RemotingError;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Most buffers handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// Bytes taken from the incoming queue, in order, not yet written.
#[derive(Default)]
struct Outbound {
    queue: VecDeque<Bytes>,
    /// The socket said WouldBlock; only the selector writes until it turns writable.
    blocked: bool,
}

pub struct Connection {
    id: u64,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    stream: TcpStream,
    /// Whole frames from writers, in arrival order.
    incoming: SegQueue<Vec<Bytes>>,
    /// Bytes in `incoming` and `out` together.
    queued: AtomicUsize,
    out: Mutex<Outbound>,
    closed: AtomicBool,
    last_active: AtomicI64,
    max_outbound: usize,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection#{}({})", self.id, self.peer)
    }
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, max_outbound: usize) -> io::Result<Self> {
        let peer = stream.peer_addr()?;
        let local = stream.local_addr().ok();
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            peer,
            local,
            stream,
            incoming: SegQueue::new(),
            queued: AtomicUsize::new(0),
            out: Mutex::new(Outbound::default()),
            closed: AtomicBool::new(false),
            last_active: AtomicI64::new(now_millis()),
            max_outbound,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }
    pub(crate) fn touch(&self) {
        self.last_active.store(now_millis(), Ordering::Relaxed);
    }
    pub(crate) fn idle_millis(&self) -> i64 {
        now_millis() - self.last_active.load(Ordering::Relaxed)
    }

    /// Closes the socket in both directions. The selector sees it end and
    /// reports the close to the connection's owner, once.
    pub fn close(&self, reason: &str) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            log::info!("closing connection to {}: {reason}", self.peer);
            let _ = self.stream.shutdown(Shutdown::Both);
            while self.incoming.pop().is_some() {}
            self.out.lock().queue.clear();
            self.queued.store(0, Ordering::Relaxed);
        }
    }

    /// Encodes and sends `cmd`.
    pub fn send(&self, cmd: &RemotingCommand) -> Result<(), RemotingError> {
        self.send_buffers(Self::frame_of(cmd))
    }

    /// Encodes `cmd` and queues it without writing: a later write on this
    /// connection (any writer's, [`flush_deferred`], or the selector's)
    /// takes it along.
    fn queue(&self, cmd: &RemotingCommand) -> Result<(), RemotingError> {
        self.enqueue(Self::frame_of(cmd))
    }

    fn frame_of(cmd: &RemotingCommand) -> Vec<Bytes> {
        let header = Bytes::from(cmd.encode_header());
        let body = cmd.body.segments();
        let mut bufs = Vec::with_capacity(1 + body.len());
        bufs.push(header);
        bufs.extend(body.iter().cloned());
        bufs
    }

    /// Adds `frame` to the incoming queue, closing a connection whose peer
    /// does not read.
    fn enqueue(&self, frame: Vec<Bytes>) -> Result<(), RemotingError> {
        if self.is_closed() {
            return Err(RemotingError::ConnectionClosed { addr: self.peer.to_string() });
        }
        let len: usize = frame.iter().map(Bytes::len).sum();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > self.max_outbound {
            self.close(&format!("peer is not reading: more than {} bytes queued", self.max_outbound));
            return Err(RemotingError::SendRequest {
                addr: self.peer.to_string(),
                reason: "peer is not reading; connection closed".into(),
            });
        }
        self.incoming.push(frame);
        Ok(())
    }

    /// Writes what was queued (a writer that found the lock taken leaves it
    /// to the holder).
    fn write_pending(&self) -> Result<(), RemotingError> {
        if let Err(e) = self.write_out(false) {
            self.close(&format!("write failed: {e}"));
            return Err(RemotingError::SendRequest { addr: self.peer.to_string(), reason: e.to_string() });
        }
        self.touch();
        Ok(())
    }

    fn send_buffers(&self, frame: Vec<Bytes>) -> Result<(), RemotingError> {
        self.enqueue(frame)?;
        self.write_pending()
    }

    /// Writes queued bytes until done or the socket is full (selector, on writable).
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.write_out(true)
    }

    /// Moves frames from `incoming` to the socket. A writer that finds the
    /// write lock taken leaves its frame to the holder, which looks at
    /// `incoming` again after letting go of the lock, so no frame is
    /// stranded. The selector (`writable`) waits for the lock and clears the
    /// blocked state the kernel's WouldBlock set.
    fn write_out(&self, writable: bool) -> io::Result<()> {
        let mut first = true;
        loop {
            let guard = if writable && first { Some(self.out.lock()) } else { self.out.try_lock() };
            let Some(mut out) = guard else { return Ok(()) };
            if writable && first {
                out.blocked = false;
            }
            first = false;
            while let Some(frame) = self.incoming.pop() {
                out.queue.extend(frame.into_iter().filter(|b| !b.is_empty()));
            }
            if !out.blocked {
                self.write_queued(&mut out)?;
            }
            drop(out);
            if self.incoming.is_empty() {
                return Ok(());
            }
        }
    }

    fn write_queued(&self, out: &mut Outbound) -> io::Result<()> {
        while !out.queue.is_empty() {
            let n = {
                let slices: Vec<IoSlice<'_>> = out.queue.iter().take(MAX_IOVECS).map(|b| IoSlice::new(b)).collect();
                match (&self.stream).write_vectored(&slices) {
                    Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        out.blocked = true;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.queued.fetch_sub(n, Ordering::AcqRel);
            let mut left = n;
            while left > 0 {
                let Some(front) = out.queue.front_mut() else { break };
                if front.len() <= left {
                    left -= front.len();
                    out.queue.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
        Ok(())
    }
}

thread_local! {
    /// On a thread that coalesces replies: the connections it queued replies
    /// on and has not written yet. `None` elsewhere.
    static DEFERRED: RefCell<Option<Vec<Arc<Connection>>>> = const { RefCell::new(None) };
}

/// Most jobs in a row whose replies wait to be written together.
const MAX_DEFERRED_JOBS: usize = 16;

thread_local! {
    static DEFERRED_JOBS: Cell<usize> = const { Cell::new(0) };
}

/// A processor pool's after-job hook ([`crate::common::ThreadPool::with_after_job`]):
/// makes the thread queue the replies its jobs send while more jobs wait, and
/// write them all once its queue is empty (or after a few jobs), so replies to
/// requests that arrived together leave in one write instead of one each.
pub fn coalesce_replies_after_job(queue_empty: bool) {
    let jobs = DEFERRED_JOBS.with(|n| {
        let v = n.get() + 1;
        n.set(v);
        v
    });
    if queue_empty || jobs >= MAX_DEFERRED_JOBS {
        DEFERRED_JOBS.with(|n| n.set(0));
        flush_deferred();
    }
    // From now on (after the first job) this thread defers its replies.
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(Vec::new());
        }
    });
}

/// Writes what this thread queued without writing.
pub(crate) fn flush_deferred() {
    let conns = DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take)).unwrap_or_default();
    for c in conns {
        if let Err(e) = c.write_pending() {
            log::warn!("cannot write replies to {}: {e}", c.peer());
        }
    }
}

/// Where and how to answer a request (RocketMQ keeps this in the request
/// command; processors that answer later, like held pulls, keep this).
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo {
    pub opaque: i32,
    pub serialize_type: SerializeType,
    pub oneway: bool,
}

impl ReplyTo {
    pub fn of(request: &RemotingCommand) -> Self {
        ReplyTo { opaque: request.opaque, serialize_type: request.serialize_type, oneway: request.is_oneway() }
    }
}

/// A processor's handle on the connection a request came from.
#[derive(Clone, Debug)]
pub struct Channel(pub(crate) Arc<Connection>);

impl Channel {
    pub fn id(&self) -> u64 {
        self.0.id()
    }
    /// The peer's address, `ip:port`.
    pub fn remote_addr(&self) -> SocketAddr {
        self.0.peer()
    }
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local()
    }
    pub fn is_active(&self) -> bool {
        !self.0.is_closed()
    }
    pub fn close(&self, reason: &str) {
        self.0.close(reason)
    }
    /// Sends `response` as the answer described by `to` (nothing for oneway).
    /// On a thread that coalesces replies (see [`coalesce_replies_after_job`])
    /// the frame is queued and written once that thread's queue runs dry.
    pub fn respond(&self, to: ReplyTo, mut response: RemotingCommand) -> Result<(), RemotingError> {
        if to.oneway {
            return Ok(());
        }
        response.flag |= crate::remoting::command::FLAG_RESPONSE;
        response.opaque = to.opaque;
        response.serialize_type = to.serialize_type;
        let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(conns) => {
                if !conns.iter().any(|c| Arc::ptr_eq(c, &self.0)) {
                    conns.push(self.0.clone());
                }
                true
            }
            None => false,
        });
        if deferred { self.0.queue(&response) } else { self.0.send(&response) }
    }
    /// Sends a command that expects no answer on this connection.
    pub fn send_oneway(&self, mut cmd: RemotingCommand) -> Result<(), RemotingError> {
        cmd.mark_oneway();
        self.0.send(&cmd)
    }
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.0
    }
}

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}
impl Eq for Channel {}
impl std::hash::Hash for Channel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id().hash(state)
    }
}
