//! Remoting errors (RocketMQ: RemotingConnectException,
//! RemotingSendRequestException, RemotingTimeoutException,
//! RemotingTooMuchRequestException, RemotingCommandException).

use std::fmt;
use std::time::Duration;

use crate::remoting::command::CodecError;
use crate::remoting::header::HeaderError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemotingError {
    /// Could not connect to `addr`.
    Connect { addr: String, reason: String },
    /// The request could not be written to `addr`.
    SendRequest { addr: String, reason: String },
    /// No response from `addr` within `timeout`.
    Timeout { addr: String, timeout: Duration },
    /// The connection to `addr` closed before the response came.
    ConnectionClosed { addr: String },
    /// Too many async or oneway requests in flight.
    TooMuchRequest(String),
    /// Bytes that are not a valid command.
    Codec(CodecError),
    /// A header field missing or malformed.
    Header(HeaderError),
    /// The client or server was shut down.
    ShutDown,
}

impl fmt::Display for RemotingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemotingError::Connect { addr, reason } => write!(f, "connect to {addr} failed: {reason}"),
            RemotingError::SendRequest { addr, reason } => write!(f, "send request to {addr} failed: {reason}"),
            RemotingError::Timeout { addr, timeout } => {
                write!(f, "wait response on the channel <{addr}> timeout, {} ms", timeout.as_millis())
            }
            RemotingError::ConnectionClosed { addr } => {
                write!(f, "connection to {addr} closed before the response arrived")
            }
            RemotingError::TooMuchRequest(m) => write!(f, "too many requests in flight: {m}"),
            RemotingError::Codec(e) => write!(f, "bad frame: {e}"),
            RemotingError::Header(e) => write!(f, "bad header: {e}"),
            RemotingError::ShutDown => f.write_str("remoting service is shut down"),
        }
    }
}

impl std::error::Error for RemotingError {}

impl From<CodecError> for RemotingError {
    fn from(e: CodecError) -> Self {
        RemotingError::Codec(e)
    }
}

impl From<HeaderError> for RemotingError {
    fn from(e: HeaderError) -> Self {
        RemotingError::Header(e)
    }
}
