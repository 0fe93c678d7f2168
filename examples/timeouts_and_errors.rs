//! What failures look like. Every client call returns a `ClientError`:
//! `State` when the client refuses the call itself (not started, invalid
//! message), `Refused` when a name server or broker answers with an error
//! code, `Remoting` when the request failed on the wire (no connection, no
//! answer in time). Each case here prints the error's text and what its
//! variant means for the caller.
//!
//! make run                                  # in another terminal
//! cargo run --example timeouts_and_errors

use std::error::Error;
use std::net::TcpListener;
use std::time::Duration;

use rmq::client::config::ClientConfig;
use rmq::client::instance::ClientError;
use rmq::client::producer::{Producer, ProducerConfig, SendResult};
use rmq::common::message::Message;
use rmq::remoting::RemotingError;

pub const TOPIC: &str = "ErrorsTopic";

/// One failure: what was tried and the error it gave.
#[derive(Debug)]
pub struct Case {
    pub what: &'static str,
    pub error: ClientError,
}

/// What the caller can make of `e`, decided by its variant (the text is for
/// people and may change).
pub fn meaning(e: &ClientError) -> &'static str {
    match e {
        ClientError::State(_) => "refused by the client: fix the call or the message, retrying will not help",
        ClientError::Refused { .. } => "refused by the server: see the code",
        ClientError::Remoting(RemotingError::Timeout { .. }) => {
            "no answer in time: the message may or may not be stored; retry (and deduplicate by key) or give up"
        }
        ClientError::Remoting(RemotingError::Connect { .. }) => "cannot connect: check the address, retry later",
        ClientError::Remoting(_) => "failed on the wire: retry later",
    }
}

/// A client of `namesrv` with its own client instance (an instance keeps
/// the name servers it was created with, so separate cases need separate ones).
fn client(namesrv: &str, instance: &str) -> ClientConfig {
    ClientConfig { namesrv_addr: Some(namesrv.into()), instance_name: instance.into(), ..Default::default() }
}

/// The error of a send that had to fail.
fn failure(sent: Result<SendResult, ClientError>) -> Result<ClientError, Box<dyn Error>> {
    match sent {
        Ok(r) => Err(format!("the send was expected to fail, but {} was stored", r.msg_id).into()),
        Err(e) => Ok(e),
    }
}

/// A producer that was never started refuses to send.
pub fn send_before_start(namesrv: &str) -> Result<ClientError, Box<dyn Error>> {
    let producer = Producer::new(ProducerConfig::new("errors_not_started"), client(namesrv, "errors_not_started"));
    failure(producer.send(Message::new(TOPIC, "too early")))
}

/// A message needs a body.
pub fn empty_body(namesrv: &str) -> Result<ClientError, Box<dyn Error>> {
    let producer = Producer::new(ProducerConfig::new("errors_empty_body"), client(namesrv, "errors_empty_body"));
    producer.start()?;
    failure(producer.send(Message::new(TOPIC, "")))
}

/// Topic names are 1 to 127 of `[%|a-zA-Z0-9_-]`.
pub fn illegal_topic(namesrv: &str) -> Result<ClientError, Box<dyn Error>> {
    let producer = Producer::new(ProducerConfig::new("errors_bad_topic"), client(namesrv, "errors_bad_topic"));
    producer.start()?;
    failure(producer.send(Message::new("orders/2024 eu", "where to?")))
}

/// An address nobody listens on: a port the system just gave out and took back.
pub fn address_nobody_listens_on() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// Starting needs no name server; the first send asks one for the topic's
/// route, and fails when none can be reached.
pub fn absent_name_server() -> Result<ClientError, Box<dyn Error>> {
    let nobody = address_nobody_listens_on()?;
    let producer = Producer::new(ProducerConfig::new("errors_no_namesrv"), client(&nobody, "errors_no_namesrv"));
    producer.start()?;
    failure(producer.send(Message::new(TOPIC, "lost")))
}

/// A send timeout no broker can meet (10 µs; a slow network or an
/// overloaded broker does the same to a realistic one). The timeout covers
/// connecting too, so a producer of the same client instance sends first and
/// opens the connection: the hasty producer's whole timeout goes to waiting
/// for the answer.
pub fn short_send_timeout(namesrv: &str) -> Result<ClientError, Box<dyn Error>> {
    let client = client(namesrv, "errors_timeout");
    let patient = Producer::new(ProducerConfig::new("errors_patient"), client.clone());
    patient.start()?;
    patient.send(Message::new(TOPIC, "in time"))?;
    let mut config = ProducerConfig::new("errors_hasty");
    config.send_msg_timeout = Duration::from_micros(10);
    let hasty = Producer::new(config, client);
    hasty.start()?;
    failure(hasty.send(Message::new(TOPIC, "too hasty")))
}

/// Every case, in turn.
pub fn run(namesrv: &str) -> Result<Vec<Case>, Box<dyn Error>> {
    Ok(vec![
        Case { what: "sending before start", error: send_before_start(namesrv)? },
        Case { what: "an empty body", error: empty_body(namesrv)? },
        Case { what: "an illegal topic name", error: illegal_topic(namesrv)? },
        Case { what: "a name server that is not there", error: absent_name_server()? },
        Case { what: "a send timeout too short", error: short_send_timeout(namesrv)? },
    ])
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let namesrv = std::env::var("NAMESRV_ADDR").unwrap_or_else(|_| "127.0.0.1:9876".into());
    for case in run(&namesrv)? {
        println!("{}:\n  {}\n  -> {}", case.what, case.error, meaning(&case.error));
    }
    Ok(())
}
