//! The client library (RocketMQ's client module). So far: the admin operations
//! behind `rmq admin`, client settings, the shared client instance, unique
//! message ids, and the producer's synchronous send.

pub mod admin;
pub mod api;
pub mod config;
pub mod consumer;
pub mod instance;
pub mod processor;
pub mod producer;
pub mod unique_id;
