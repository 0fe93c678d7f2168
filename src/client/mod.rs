//! The client library (RocketMQ's client module). For now: the admin operations behind `rmq admin`.

pub mod admin;
