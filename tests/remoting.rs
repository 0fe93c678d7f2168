//! Client/server transport tests over loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rmq::common::ThreadPool;
use rmq::common::wait::{self, Deadline, Signal};
use rmq::remoting::code::response;
use rmq::remoting::{
    Channel, ChannelEventListener, ClientConfig, RemotingClient, RemotingCommand, RemotingError, RemotingServer,
    ReplyTo, SerializeType, ServerConfig,
};

const ECHO: i32 = 9001;
const NEVER_ANSWER: i32 = 9002;
const CLOSE_ME: i32 = 9003;
const BLOCK: i32 = 9004;
const BIG_REPLY: i32 = 9005;

struct Fixture {
    server: RemotingServer,
    addr: String,
    gate: Arc<Signal>,
    blocked: Arc<AtomicUsize>,
    closed: Arc<Mutex<Vec<SocketAddr>>>,
    oneway_seen: Arc<AtomicUsize>,
}

struct CloseRecorder(Arc<Mutex<Vec<SocketAddr>>>);

impl ChannelEventListener for CloseRecorder {
    fn on_channel_close(&self, channel: &Channel) {
        self.0.lock().push(channel.remote_addr());
    }
}

fn server_with(config: ServerConfig, block_pool: (usize, usize)) -> Fixture {
    let mut server = RemotingServer::new(ServerConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..config });
    let pool = Arc::new(ThreadPool::new("TestProcessorThread_", "test", 4, 10_000).unwrap());
    let block = Arc::new(ThreadPool::new("TestBlockingThread_", "test", block_pool.0, block_pool.1).unwrap());
    let oneway_seen = Arc::new(AtomicUsize::new(0));
    let seen = oneway_seen.clone();
    server.register_processor(
        ECHO,
        Arc::new(move |_: &Channel, req: RemotingCommand| {
            if req.is_oneway() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let mut r = RemotingCommand::response(response::SUCCESS, req.remark.clone());
            r.ext_fields = req.ext_fields.clone();
            Some(r.with_body(req.body.to_bytes()))
        }),
        pool.clone(),
    );
    server.register_processor(NEVER_ANSWER, Arc::new(|_: &Channel, _: RemotingCommand| None), pool.clone());
    server.register_processor(
        CLOSE_ME,
        Arc::new(|ch: &Channel, _: RemotingCommand| {
            ch.close("test asked the server to drop it");
            None
        }),
        pool.clone(),
    );
    let gate = Arc::new(Signal::new());
    let g = gate.clone();
    let blocked = Arc::new(AtomicUsize::new(0));
    let b = blocked.clone();
    server.register_processor(
        BLOCK,
        Arc::new(move |_: &Channel, _: RemotingCommand| {
            b.fetch_add(1, Ordering::SeqCst);
            g.wait(Deadline::after(Duration::from_secs(20)));
            Some(RemotingCommand::response(response::SUCCESS, None))
        }),
        block,
    );
    server.register_processor(
        BIG_REPLY,
        Arc::new(|_: &Channel, _: RemotingCommand| {
            Some(RemotingCommand::response(response::SUCCESS, None).with_body(vec![7u8; 512 * 1024]))
        }),
        pool,
    );
    let closed = Arc::new(Mutex::new(Vec::new()));
    server.add_channel_listener(Arc::new(CloseRecorder(closed.clone())));
    let addrs = server.start().unwrap();
    Fixture { server, addr: addrs[0].to_string(), gate, blocked, closed, oneway_seen }
}

fn server() -> Fixture {
    server_with(ServerConfig::default(), (1, 1))
}

fn client() -> RemotingClient {
    RemotingClient::start(ClientConfig::default()).unwrap()
}

fn echo(t: SerializeType, body: &[u8]) -> RemotingCommand {
    let mut c = RemotingCommand::request(ECHO).with_serialize_type(t).with_body(body.to_vec());
    c.ext_fields.insert("k", "v");
    c
}

#[test]
fn invoke_sync_round_trips_and_answers_in_the_callers_serialization() {
    let f = server();
    let c = client();
    for t in [SerializeType::Json, SerializeType::RocketMq] {
        let req = echo(t, b"hello");
        let opaque = req.opaque;
        let resp = c.invoke_sync(&f.addr, req, Duration::from_secs(5)).expect("answer");
        assert!(resp.is_response());
        assert_eq!(resp.opaque, opaque);
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(resp.serialize_type, t, "server answers in the form it was asked in");
        assert_eq!(resp.ext_fields.get("k"), Some("v"));
        assert_eq!(&resp.body.bytes()[..], b"hello");
    }
    assert_eq!(c.connected_addrs(), vec![f.addr.clone()], "one reused connection");
}

#[test]
fn ten_thousand_concurrent_invoke_async_calls_complete() {
    let f = server();
    let c = client();
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Signal::new());
    const N: usize = 10_000;
    for i in 0..N {
        let (ok, bad, done) = (ok.clone(), bad.clone(), done.clone());
        let body = i.to_string().into_bytes();
        let expect = body.clone();
        c.invoke_async(&f.addr, echo(SerializeType::Json, &body), Duration::from_secs(30), move |r| {
            match r {
                Ok(resp) if resp.body.bytes()[..] == expect[..] => ok.fetch_add(1, Ordering::SeqCst),
                _ => bad.fetch_add(1, Ordering::SeqCst),
            };
            if ok.load(Ordering::SeqCst) + bad.load(Ordering::SeqCst) == N {
                done.set();
            }
        })
        .expect("queued");
    }
    assert!(done.wait(Deadline::after(Duration::from_secs(60))), "only {} completed", ok.load(Ordering::SeqCst));
    assert_eq!(ok.load(Ordering::SeqCst), N);
    assert_eq!(bad.load(Ordering::SeqCst), 0);
    assert_eq!(c.pending_requests(), 0);
}

/// Only the selector writes, on a sender's request: many threads sending at
/// once over one connection must never leave a frame queued with no write
/// coming (a lost request shows up as a timeout here).
#[test]
fn many_threads_sending_on_one_connection_all_get_their_own_answers() {
    let f = server();
    let c = Arc::new(client());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (c, addr) = (c.clone(), f.addr.clone());
            std::thread::spawn(move || {
                for i in 0..300 {
                    let body = format!("{t}-{i}").into_bytes();
                    let r = c.invoke_sync(&addr, echo(SerializeType::Json, &body), Duration::from_secs(10));
                    let r = r.unwrap_or_else(|e| panic!("thread {t} call {i}: {e}"));
                    assert_eq!(&r.body.bytes()[..], &body[..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("sender thread");
    }
    assert_eq!(c.connected_addrs().len(), 1, "all over one connection");
}

/// A oneway send returns once queued; shutting the client down right after
/// must still write it.
#[test]
fn a_oneway_sent_just_before_shutdown_still_leaves() {
    let f = server();
    let c = client();
    c.invoke_sync(&f.addr, echo(SerializeType::Json, b"connect"), Duration::from_secs(5)).unwrap();
    for _ in 0..50 {
        c.invoke_oneway(&f.addr, echo(SerializeType::Json, b"bye"), Duration::from_secs(5)).unwrap();
    }
    c.shutdown();
    assert!(
        wait::until(Duration::from_secs(5), || f.oneway_seen.load(Ordering::SeqCst) == 50),
        "the server saw {} of 50 oneway requests",
        f.oneway_seen.load(Ordering::SeqCst)
    );
}

#[test]
fn sync_and_async_timeouts_fire() {
    let f = server();
    let c = client();
    let t0 = Instant::now();
    let r = c.invoke_sync(&f.addr, RemotingCommand::request(NEVER_ANSWER), Duration::from_millis(200));
    assert!(matches!(r, Err(RemotingError::Timeout { .. })), "{r:?}");
    assert!(t0.elapsed() >= Duration::from_millis(200) && t0.elapsed() < Duration::from_secs(3));

    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let t0 = Instant::now();
    c.invoke_async(&f.addr, RemotingCommand::request(NEVER_ANSWER), Duration::from_millis(200), move |r| {
        *g.lock() = Some((r, t0.elapsed()));
    })
    .unwrap();
    assert!(wait::until(Duration::from_secs(5), || got.lock().is_some()));
    let (r, after) = got.lock().take().unwrap();
    assert!(matches!(r, Err(RemotingError::Timeout { .. })), "{r:?}");
    // The housekeeping scan runs every second.
    assert!(after >= Duration::from_millis(200) && after < Duration::from_millis(2500), "{after:?}");
    assert_eq!(c.pending_requests(), 0);
}

#[test]
fn a_dropped_connection_fails_pending_calls_at_once() {
    let f = server();
    let c = Arc::new(client());
    // Park a sync and an async call on the connection, then have the server drop it.
    let c2 = c.clone();
    let addr = f.addr.clone();
    let sync_call = std::thread::spawn(move || {
        let t0 = Instant::now();
        (c2.invoke_sync(&addr, RemotingCommand::request(NEVER_ANSWER), Duration::from_secs(30)), t0.elapsed())
    });
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    c.invoke_async(&f.addr, RemotingCommand::request(NEVER_ANSWER), Duration::from_secs(30), move |r| {
        *g.lock() = Some(r);
    })
    .unwrap();
    assert!(wait::until(Duration::from_secs(5), || c.pending_requests() == 2));
    let t0 = Instant::now();
    c.invoke_oneway(&f.addr, RemotingCommand::request(CLOSE_ME), Duration::from_secs(5)).unwrap();
    let (r, _) = sync_call.join().unwrap();
    assert!(matches!(r, Err(RemotingError::ConnectionClosed { .. })), "{r:?}");
    assert!(wait::until(Duration::from_secs(5), || got.lock().is_some()));
    assert!(matches!(got.lock().take(), Some(Err(RemotingError::ConnectionClosed { .. }))));
    assert!(t0.elapsed() < Duration::from_secs(2), "failed after {:?}, not at once", t0.elapsed());
    // The next call reconnects.
    let resp = c.invoke_sync(&f.addr, echo(SerializeType::Json, b"again"), Duration::from_secs(5)).unwrap();
    assert_eq!(&resp.body.bytes()[..], b"again");
}

fn read_to_end_or_reset(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn an_oversize_or_garbage_frame_closes_only_its_connection() {
    let f = server();
    let c = client();
    assert!(c.invoke_sync(&f.addr, echo(SerializeType::Json, b"before"), Duration::from_secs(5)).is_ok());

    let mut oversize = TcpStream::connect(&f.addr).unwrap();
    oversize.write_all(&(17u32 * 1024 * 1024).to_be_bytes()).unwrap();
    oversize.write_all(&[0u8; 64]).unwrap();
    assert!(read_to_end_or_reset(&mut oversize), "oversize frame must close its connection");

    let mut garbage = TcpStream::connect(&f.addr).unwrap();
    let junk = b"\x00\x00\x00\x0c\x00\x00\x00\x08not json";
    garbage.write_all(junk).unwrap();
    assert!(read_to_end_or_reset(&mut garbage), "garbage header must close its connection");

    let resp = c.invoke_sync(&f.addr, echo(SerializeType::RocketMq, b"after"), Duration::from_secs(5)).unwrap();
    assert_eq!(&resp.body.bytes()[..], b"after", "the well-behaved connection is undisturbed");
    assert!(wait::until(Duration::from_secs(5), || f.closed.lock().len() >= 2), "listener told of both closes");
}

#[test]
fn a_full_processor_pool_answers_system_busy() {
    let f = server();
    let c = client();
    let results = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let r = results.clone();
        c.invoke_async(&f.addr, RemotingCommand::request(BLOCK), Duration::from_secs(20), move |res| {
            r.lock().push(res);
        })
        .unwrap();
        if i == 0 {
            assert!(wait::until(Duration::from_secs(5), || f.blocked.load(Ordering::SeqCst) == 1));
        }
    }
    // One running, one queued, the third refused at once.
    assert!(wait::until(Duration::from_secs(5), || results.lock().len() == 1));
    {
        let first = results.lock();
        let busy = first[0].as_ref().expect("a response");
        assert_eq!(busy.code, response::SYSTEM_BUSY);
        assert!(busy.remark.as_deref().unwrap_or("").contains("[OVERLOAD]system busy"), "{:?}", busy.remark);
    }
    f.gate.set();
    assert!(wait::until(Duration::from_secs(10), || results.lock().len() == 3));
    let codes: Vec<i32> = results.lock().iter().map(|r| r.as_ref().unwrap().code).collect();
    assert_eq!(codes, vec![response::SYSTEM_BUSY, response::SUCCESS, response::SUCCESS]);
}

#[test]
fn unknown_codes_are_refused_and_oneway_gets_no_reply() {
    let f = server();
    let c = client();
    let r = c.invoke_sync(&f.addr, RemotingCommand::request(4242), Duration::from_secs(5)).unwrap();
    assert_eq!(r.code, response::REQUEST_CODE_NOT_SUPPORTED);
    assert_eq!(r.remark.as_deref(), Some(" request type 4242 not supported"));

    // Over a raw socket: a oneway echo, then a normal one; the first frame back
    // must answer the second.
    let mut s = TcpStream::connect(&f.addr).unwrap();
    let mut oneway = echo(SerializeType::Json, b"one");
    oneway.mark_oneway();
    let normal = echo(SerializeType::Json, b"two");
    s.write_all(&oneway.encode()).unwrap();
    s.write_all(&normal.encode()).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut frame).unwrap();
    let mut whole = len.to_vec();
    whole.extend_from_slice(&frame);
    let resp = RemotingCommand::decode_frame(&whole).unwrap();
    assert_eq!(resp.opaque, normal.opaque);
    assert_eq!(&resp.body.bytes()[..], b"two");
    assert_eq!(f.oneway_seen.load(Ordering::SeqCst), 1, "the oneway request was processed");
}

#[test]
fn a_client_that_does_not_read_is_disconnected() {
    let f = server_with(ServerConfig { max_outbound_bytes: 1024 * 1024, ..ServerConfig::default() }, (1, 1));
    let mut s = TcpStream::connect(&f.addr).unwrap();
    let local = s.local_addr().unwrap();
    // Ask for 100 x 512 KiB and read none of it.
    for _ in 0..100 {
        if s.write_all(&RemotingCommand::request(BIG_REPLY).encode()).is_err() {
            break;
        }
    }
    assert!(
        wait::until(Duration::from_secs(10), || f.closed.lock().contains(&local)),
        "server kept buffering for a peer that does not read"
    );
    drop(f.server);
}

#[test]
fn the_server_can_ask_a_connected_client() {
    let mut f = server();
    let c = client();
    c.register_processor(
        7777,
        Arc::new(|_: &Channel, req: RemotingCommand| {
            Some(RemotingCommand::response(response::SUCCESS, Some(format!("client saw {}", req.code))))
        }),
    );
    // The server learns the client's channel from a request it sends.
    let seen: Arc<Mutex<Option<(Channel, ReplyTo)>>> = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let pool = Arc::new(ThreadPool::new("TestAskThread_", "test", 1, 10).unwrap());
    f.server.register_processor(
        7776,
        Arc::new(move |ch: &Channel, req: RemotingCommand| {
            *s2.lock() = Some((ch.clone(), ReplyTo::of(&req)));
            Some(RemotingCommand::response(response::SUCCESS, None))
        }),
        pool,
    );
    c.invoke_sync(&f.addr, RemotingCommand::request(7776), Duration::from_secs(5)).unwrap();
    let (ch, _) = seen.lock().clone().unwrap();
    let r = f.server.invoke_sync(&ch, RemotingCommand::request(7777), Duration::from_secs(5)).unwrap();
    assert_eq!(r.remark.as_deref(), Some("client saw 7777"));
    f.server.shutdown();
}

#[test]
fn client_and_server_threads_carry_rocketmq_names() {
    let f = server();
    let c = client();
    c.invoke_sync(&f.addr, echo(SerializeType::Json, b"x"), Duration::from_secs(5)).unwrap();
    let names = rmq::common::thread::registered_names();
    for expected in [
        "NettyClientSelector_1",
        "NettyClientWorkerThread_1",
        "NettyClientWorkerThread_4",
        "NettyClientPublicExecutor_1",
        "ClientHouseKeepingService",
        "NettyBoss_1",
        "NettyServerNIOSelector_1",
        "NettyServerNIOSelector_3",
        "NettyServerCodecThread_1",
        "NettyEventExecutor",
        "ServerHouseKeepingService",
        "Attach Listener",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let dump = rmq::common::thread_dump();
    assert!(dump.contains("\"NettyClientSelector_1\""), "{dump}");
    assert!(dump.contains("\"NettyServerNIOSelector_1\""));
}

#[test]
fn connecting_to_a_closed_port_fails_clearly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client();
    let r = c.invoke_sync(&format!("127.0.0.1:{port}"), RemotingCommand::request(ECHO), Duration::from_secs(3));
    assert!(matches!(r, Err(RemotingError::Connect { .. })), "{r:?}");
}
