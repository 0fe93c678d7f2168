//! rmq: an Apache RocketMQ 4.x compatible messaging system on named OS threads.
//!
//! Modules depend only on those above them: `common` <- `remoting` <- `store`
//! <- `namesrv` / `broker`; `client` uses `common` and `remoting` only;
//! `bench` (the measuring behind `rmq bench`) uses `client`.

pub mod bench;
pub mod broker;
pub mod client;
pub mod common;
pub mod namesrv;
pub mod remoting;
pub mod store;
