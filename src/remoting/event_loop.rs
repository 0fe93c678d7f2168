//! The selector: one mio `Poll` loop on a named thread that reads every
//! socket given to it, cuts frames and hands them on, writes what writers
//! left queued, and closes idle or broken connections (RocketMQ's Netty
//! selector plus its frame decoder and idle handler).

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use crossbeam_queue::SegQueue;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::common::thread;
use crate::remoting::command::FrameDecoder;
use crate::remoting::connection::Connection;

const WAKER: Token = Token(usize::MAX);
const READ_CHUNK: usize = 64 * 1024;

/// What a selector does with what it reads.
pub(crate) trait FrameSink: Send + Sync + 'static {
    /// Takes one frame; gives it back when the consumer is full (the selector
    /// then stops reading that connection until the frame is taken).
    fn on_frame(&self, conn: &Arc<Connection>, frame: Bytes) -> Result<(), Bytes>;
    /// The connection ended (peer closed, error, idle, or our own close).
    fn on_close(&self, conn: &Arc<Connection>);
}

/// Selector settings.
#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub max_frame: usize,
    pub idle_timeout: Duration,
}

/// Connections (by id) whose queued frames a selector is asked to write,
/// and its wake-up.
pub(crate) struct WriteRequests {
    ids: SegQueue<u64>,
    /// A wake-up is on its way and the selector has not looked yet: later
    /// requests need not wake it again.
    waking: AtomicBool,
    waker: Waker,
}

impl WriteRequests {
    pub(crate) fn request(&self, conn_id: u64) {
        self.ids.push(conn_id);
        if !self.waking.swap(true, Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            // The next request tries again; the selector also looks at
            // waiting requests every time round its loop.
            self.waking.store(false, Ordering::SeqCst);
            log::error!("cannot wake the selector: {e}");
        }
    }
}

/// A handle to give connections to a running selector and stop it.
pub(crate) struct SelectorHandle {
    tx: Sender<Arc<Connection>>,
    writes: Arc<WriteRequests>,
    stopped: Arc<AtomicBool>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl SelectorHandle {
    /// Starts a selector thread named `name`.
    pub fn start(name: String, role: &'static str, cfg: LoopConfig, sink: Arc<dyn FrameSink>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let writes = Arc::new(WriteRequests {
            ids: SegQueue::new(),
            waking: AtomicBool::new(false),
            waker: Waker::new(poll.registry(), WAKER)?,
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let stopped = Arc::new(AtomicBool::new(false));
        let st = stopped.clone();
        let w = writes.clone();
        let handle = thread::spawn(name, role, move || {
            Selector { poll, rx, writes: w, stopped: st, cfg, sink, conns: HashMap::new(), paused: 0 }.run()
        })?;
        Ok(SelectorHandle { tx, writes, stopped, thread: parking_lot::Mutex::new(Some(handle)) })
    }

    /// Hands a new connection to the selector.
    pub fn register(&self, conn: Arc<Connection>) -> io::Result<()> {
        self.tx.send(conn).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "selector is shut down"))?;
        self.writes.waker.wake()
    }

    /// What a connection whose writes this selector does is created with.
    pub fn write_requests(&self) -> Arc<WriteRequests> {
        self.writes.clone()
    }

    /// Stops the loop, closing its connections, and joins the thread.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        self.writes.wake();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
    }
}

struct ConnState {
    conn: Arc<Connection>,
    inbuf: BytesMut,
    /// A frame the sink could not take yet; reading waits until it does.
    pending: Option<Bytes>,
}

struct Selector {
    poll: Poll,
    rx: Receiver<Arc<Connection>>,
    writes: Arc<WriteRequests>,
    stopped: Arc<AtomicBool>,
    cfg: LoopConfig,
    sink: Arc<dyn FrameSink>,
    conns: HashMap<Token, ConnState>,
    paused: usize,
}

impl Selector {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; READ_CHUNK];
        let mut last_idle_check = Instant::now();
        let decoder = FrameDecoder::new(self.cfg.max_frame);
        while !self.stopped.load(Ordering::Acquire) {
            thread::doing("selecting");
            let timeout = if self.paused > 0 { Duration::from_millis(1) } else { Duration::from_secs(1) };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("selector poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            thread::doing("processing socket events");
            for ev in events.iter() {
                let token = ev.token();
                if token == WAKER {
                    self.on_wake();
                    continue;
                }
                if ev.is_writable()
                    && let Some(st) = self.conns.get(&token)
                {
                    write(&st.conn, true);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read(token, &decoder, &mut scratch);
                }
            }
            // Requests whose wake-up failed, or came while this round ran.
            if !self.writes.ids.is_empty() {
                self.write_requested();
            }
            if self.paused > 0 {
                self.resume_paused(&decoder, &mut scratch);
            }
            if last_idle_check.elapsed() >= Duration::from_secs(1) {
                last_idle_check = Instant::now();
                self.close_idle();
            }
        }
        // What senders queued before the stop still leaves.
        self.write_requested();
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            if let Some(st) = self.conns.get(&t) {
                st.conn.close("shutting down");
            }
            self.remove(t);
        }
    }

    fn accept_new(&mut self) {
        while let Ok(conn) = self.rx.try_recv() {
            let token = Token(conn.id() as usize);
            let fd = conn.stream().as_raw_fd();
            if let Err(e) =
                self.poll.registry().register(&mut SourceFd(&fd), token, Interest::READABLE | Interest::WRITABLE)
            {
                log::error!("cannot register connection to {}: {e}", conn.peer());
                conn.close("selector registration failed");
                self.sink.on_close(&conn);
                continue;
            }
            self.conns.insert(token, ConnState { conn, inbuf: BytesMut::with_capacity(READ_CHUNK), pending: None });
        }
    }

    /// A wake-up: new connections and write requests. The requests are
    /// served even when an earlier round took them already, because that
    /// clears `waking`, which the sender of this wake-up set; left set, no
    /// sender would wake the selector again.
    fn on_wake(&mut self) {
        self.accept_new();
        self.write_requested();
    }

    /// Writes the connections senders asked to be written.
    fn write_requested(&mut self) {
        // A swap, so this clear is ordered before the pops below by itself.
        self.writes.waking.swap(false, Ordering::SeqCst);
        while let Some(id) = self.writes.ids.pop() {
            let token = Token(id as usize);
            if !self.conns.contains_key(&token) {
                // Registered after this wake-up's accept: a connection is
                // handed over before anyone can send on it, so it waits in
                // the channel now.
                self.accept_new();
            }
            if let Some(st) = self.conns.get(&token) {
                write(&st.conn, false);
            }
        }
    }

    /// Reads until the socket is drained, the sink is full, or the stream ends.
    fn read(&mut self, token: Token, decoder: &FrameDecoder, scratch: &mut [u8]) {
        let Some(st) = self.conns.get_mut(&token) else { return };
        if st.pending.is_some() {
            return;
        }
        let outcome = loop {
            match (st.conn.stream()).read(scratch) {
                Ok(0) => break Err("closed by peer".to_string()),
                Ok(n) => {
                    st.conn.touch();
                    st.inbuf.extend_from_slice(&scratch[..n]);
                    match deliver(&*self.sink, st, decoder) {
                        Ok(true) => continue,
                        Ok(false) => break Ok(true),
                        Err(e) => break Err(e),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(format!("read failed: {e}")),
            }
        };
        match outcome {
            Ok(true) => self.paused += 1,
            Ok(false) => {}
            Err(reason) => {
                if !st.conn.is_closed() {
                    st.conn.close(&reason);
                }
                self.remove(token);
            }
        }
    }

    fn resume_paused(&mut self, decoder: &FrameDecoder, scratch: &mut [u8]) {
        let tokens: Vec<Token> = self.conns.iter().filter(|(_, s)| s.pending.is_some()).map(|(t, _)| *t).collect();
        for t in tokens {
            let Some(st) = self.conns.get_mut(&t) else { continue };
            let Some(frame) = st.pending.take() else { continue };
            match self.sink.on_frame(&st.conn, frame) {
                Err(frame) => st.pending = Some(frame),
                Ok(()) => match deliver(&*self.sink, st, decoder) {
                    Ok(false) => {}
                    Ok(true) => {
                        self.paused -= 1;
                        // Edge-triggered: bytes that arrived while paused
                        // raise no new event, so read on now.
                        self.read(t, decoder, scratch);
                    }
                    Err(e) => {
                        self.paused -= 1;
                        st.conn.close(&e);
                        self.remove(t);
                    }
                },
            }
        }
    }

    fn close_idle(&mut self) {
        let limit = self.cfg.idle_timeout.as_millis() as i64;
        let idle: Vec<Token> =
            self.conns.iter().filter(|(_, s)| s.conn.idle_millis() > limit).map(|(t, _)| *t).collect();
        for t in idle {
            if let Some(st) = self.conns.get(&t) {
                st.conn.close(&format!("idle for more than {} s", self.cfg.idle_timeout.as_secs()));
            }
            self.remove(t);
        }
    }

    fn remove(&mut self, token: Token) {
        if let Some(st) = self.conns.remove(&token) {
            if st.pending.is_some() {
                self.paused -= 1;
            }
            let fd = st.conn.stream().as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            self.sink.on_close(&st.conn);
        }
    }
}

/// Writes what `conn` has queued; a failed write closes it.
fn write(conn: &Connection, writable: bool) {
    if let Err(e) = conn.write(writable) {
        conn.close(&format!("write failed: {e}"));
    }
}

/// Hands every whole frame in the buffer to the sink. `Ok(true)`: all taken;
/// `Ok(false)`: the sink is full and one frame waits in `pending`.
fn deliver(sink: &dyn FrameSink, st: &mut ConnState, decoder: &FrameDecoder) -> Result<bool, String> {
    loop {
        match decoder.next_frame(&mut st.inbuf) {
            Ok(Some(frame)) => {
                if let Err(frame) = sink.on_frame(&st.conn, frame) {
                    st.pending = Some(frame);
                    return Ok(false);
                }
            }
            Ok(None) => return Ok(true),
            Err(e) => return Err(format!("malformed frame: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remoting::command::RemotingCommand;
    use std::net::TcpListener;

    struct Discard;
    impl FrameSink for Discard {
        fn on_frame(&self, _: &Arc<Connection>, _: Bytes) -> Result<(), Bytes> {
            Ok(())
        }
        fn on_close(&self, _: &Arc<Connection>) {}
    }

    /// A selector driven by hand, with the sending end of its channel.
    fn selector() -> (Selector, Sender<Arc<Connection>>) {
        let poll = Poll::new().unwrap();
        let writes = Arc::new(WriteRequests {
            ids: SegQueue::new(),
            waking: AtomicBool::new(false),
            waker: Waker::new(poll.registry(), WAKER).unwrap(),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = LoopConfig { max_frame: 1 << 20, idle_timeout: Duration::from_secs(60) };
        let sel = Selector {
            poll,
            rx,
            writes,
            stopped: Arc::new(AtomicBool::new(false)),
            cfg,
            sink: Arc::new(Discard),
            conns: HashMap::new(),
            paused: 0,
        };
        (sel, tx)
    }

    /// A connection written by `sel`, and its peer's end.
    fn connected(sel: &Selector) -> (Connection, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let conn = Connection::new(mio::net::TcpStream::from_std(client), 1 << 30, sel.writes.clone()).unwrap();
        (conn, peer)
    }

    /// The wake-up that carries a connection's first write request may be
    /// handled after the selector last looked for new connections: the
    /// request must still be written, not dropped with the connection
    /// left marked as waiting for a write that never comes.
    #[test]
    fn a_write_request_for_a_connection_not_yet_taken_in_is_written() {
        let (mut sel, tx) = selector();
        let (conn, mut peer) = connected(&sel);
        let conn = Arc::new(conn);
        tx.send(conn.clone()).unwrap();
        let req = RemotingCommand::request(1);
        conn.send(&req).unwrap();
        // The selector sees the request before it took the connection in.
        sel.write_requested();
        let expect = req.encode();
        let mut got = vec![0u8; expect.len()];
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        peer.read_exact(&mut got).expect("the frame was written");
        assert_eq!(got, expect);
    }

    /// Frames whose bodies are several buffers, more of them than the socket
    /// takes at once: every byte arrives, in order, across partial writes.
    #[test]
    fn frames_leave_whole_and_in_order_across_partial_writes() {
        let (sel, _tx) = selector();
        let (conn, mut peer) = connected(&sel);
        let mut expect = Vec::new();
        for i in 0..200u32 {
            let parts: Vec<Bytes> = (0..3u8).map(|j| Bytes::from(vec![(i as u8) ^ j; 20_000 + j as usize])).collect();
            let cmd = RemotingCommand::request(1).with_body(crate::remoting::command::Body::Many(parts));
            expect.extend_from_slice(&cmd.encode());
            conn.send(&cmd).unwrap();
        }
        let want = expect.len();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; want];
            peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            peer.read_exact(&mut got).map(|_| got)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() && Instant::now() < deadline {
            conn.write(true).unwrap();
            std::thread::yield_now();
        }
        let got = reader.join().unwrap().expect("every byte arrived");
        assert!(got == expect, "bytes differ from the frames sent");
    }

    /// A sender can set `waking` after the selector took its request in an
    /// earlier round; the wake-up it then sends must clear the flag again.
    #[test]
    fn every_wake_up_lets_the_next_request_wake_the_selector() {
        let (mut sel, _tx) = selector();
        sel.writes.waking.store(true, Ordering::SeqCst);
        sel.on_wake();
        assert!(!sel.writes.waking.load(Ordering::SeqCst), "later requests would not wake the selector");
    }
}
