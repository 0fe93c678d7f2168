//! One TCP connection, shared by its selector (which reads and writes it)
//! and every thread that sends on it (callers, processors), and the
//! [`Channel`] handle processors use to answer on it.
//!
//! Writing is Netty's: a sender encodes its command, adds the frame to the
//! connection's lock-free outbound queue and asks the connection's selector
//! to write (one wake-up per connection until the selector has written).
//! The selector hands everything queued by then to the kernel in one
//! `writev`, so frames that senders queue while it is on its way leave
//! together: fewer, larger TCP sends, which costs both ends less per frame
//! than a `writev` per frame from each sender. What the kernel does not take
//! waits for the socket to turn writable. Queued bytes are capped: a peer
//! that does not read is disconnected, never buffered for without bound.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;
use mio::net::TcpStream;
use parking_lot::Mutex;

use crate::common::time::now_millis;
use crate::remoting::command::{Body, RemotingCommand, SerializeType};
use crate::remoting::error::RemotingError;
use crate::remoting::event_loop::WriteRequests;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Most buffers handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// One encoded command: its header as encoded and its body's buffers as
/// they were (no copy into one buffer).
struct Frame {
    header: Vec<u8>,
    body: Body,
}

impl Frame {
    fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&self.header[..]).chain(self.body.segments().iter().map(|b| &b[..]))
    }
}

/// Frames taken from the incoming queue, in order, not yet written.
#[derive(Default)]
struct Outbound {
    queue: VecDeque<Frame>,
    /// Bytes of the front frame written already.
    written: usize,
    /// The socket said WouldBlock; only the selector writes until it turns writable.
    blocked: bool,
}

pub struct Connection {
    id: u64,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    stream: TcpStream,
    /// Whole frames from writers, in arrival order.
    incoming: SegQueue<Frame>,
    /// Bytes in `incoming` and `out` together.
    queued: AtomicUsize,
    /// Only the selector writes; others lock it to drop what is queued on close.
    out: Mutex<Outbound>,
    closed: AtomicBool,
    /// The selector that writes this connection.
    selector: Arc<WriteRequests>,
    /// This connection waits in `selector`'s write requests.
    write_requested: AtomicBool,
    last_active: AtomicI64,
    max_outbound: usize,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Connection#{}({})", self.id, self.peer)
    }
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, max_outbound: usize, selector: Arc<WriteRequests>) -> io::Result<Self> {
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
            selector,
            write_requested: AtomicBool::new(false),
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
            let mut out = self.out.lock();
            out.queue.clear();
            out.written = 0;
            drop(out);
            self.queued.store(0, Ordering::Relaxed);
        }
    }

    /// Encodes `cmd`, queues it and asks the selector to write.
    pub fn send(&self, cmd: &RemotingCommand) -> Result<(), RemotingError> {
        self.enqueue(Self::frame_of(cmd))?;
        // SeqCst pairs with the selector's clear in `write`: either the
        // selector's drain sees this frame or this sender sees the request
        // cleared and asks again.
        if !self.write_requested.swap(true, Ordering::SeqCst) {
            self.selector.request(self.id);
        }
        Ok(())
    }

    fn frame_of(cmd: &RemotingCommand) -> Frame {
        Frame { header: cmd.encode_header(), body: cmd.body.clone() }
    }

    /// Adds `frame` to the incoming queue, closing a connection whose peer
    /// does not read.
    fn enqueue(&self, frame: Frame) -> Result<(), RemotingError> {
        if self.is_closed() {
            return Err(RemotingError::ConnectionClosed { addr: self.peer.to_string() });
        }
        let len = frame.len();
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

    /// The selector's write: everything queued, until done or the socket is
    /// full. `writable`: the socket said it can take bytes again (else a
    /// sender asked, and a socket still full is left for that event).
    pub(crate) fn write(&self, writable: bool) -> io::Result<()> {
        if !writable {
            self.write_requested.swap(false, Ordering::SeqCst);
        }
        let mut out = self.out.lock();
        if writable {
            out.blocked = false;
        }
        while let Some(frame) = self.incoming.pop() {
            out.queue.push_back(frame);
        }
        if out.blocked || out.queue.is_empty() {
            return Ok(());
        }
        self.write_queued(&mut out)?;
        self.touch();
        Ok(())
    }

    fn write_queued(&self, out: &mut Outbound) -> io::Result<()> {
        while !out.queue.is_empty() {
            let n = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut used = 0;
                let mut skip = out.written;
                'fill: for frame in &out.queue {
                    for part in frame.parts() {
                        if part.len() <= skip {
                            skip -= part.len();
                            continue;
                        }
                        if used == MAX_IOVECS {
                            break 'fill;
                        }
                        slices[used] = IoSlice::new(&part[skip..]);
                        skip = 0;
                        used += 1;
                    }
                }
                match (&self.stream).write_vectored(&slices[..used]) {
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
            let mut done = out.written + n;
            while let Some(front) = out.queue.front() {
                let len = front.len();
                if len > done {
                    break;
                }
                done -= len;
                out.queue.pop_front();
            }
            out.written = done;
        }
        Ok(())
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
    pub fn respond(&self, to: ReplyTo, mut response: RemotingCommand) -> Result<(), RemotingError> {
        if to.oneway {
            return Ok(());
        }
        response.flag |= crate::remoting::command::FLAG_RESPONSE;
        response.opaque = to.opaque;
        response.serialize_type = to.serialize_type;
        self.0.send(&response)
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
