//! The client library (RocketMQ's client module). So far: the admin operations
//! behind `rmq admin`, client settings, the shared client instance, unique
//! message ids, and the producer with its latency fault tolerance.

pub mod admin;
pub mod config;
pub mod instance;
pub mod latency;
pub mod producer;
pub mod unique_id;
