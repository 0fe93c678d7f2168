//! The client library (RocketMQ's client module). So far: the admin operations
//! behind `rmq admin`, client settings, and the producer-side unique message ids.

pub mod admin;
pub mod config;
pub mod unique_id;
