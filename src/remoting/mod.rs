//! RocketMQ's remoting protocol: commands, their two header serializations,
//! frames, request/response codes, typed headers, and the mio transport with
//! RocketMQ's client and server thread topology.

pub mod body;
pub mod client;
pub mod code;
pub mod command;
pub mod connection;
pub mod dispatch;
pub mod error;
pub(crate) mod event_loop;
pub mod header;
pub mod headers;
pub mod json;
mod json_header;
pub mod server;

pub use client::{ClientConfig, RemotingClient};
pub use command::{Body, ExtFields, LanguageCode, RemotingCommand, SerializeType};
pub use connection::{Channel, ReplyTo};
pub use dispatch::{InvokeResult, RequestProcessor};
pub use error::RemotingError;
pub use header::{CommandHeader, HeaderError};
pub use server::{ChannelEventListener, RemotingServer, ServerConfig, ServerInvoker};
