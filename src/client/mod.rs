//! The client library (RocketMQ's client module). So far: the admin operations
//! behind `rmq admin`, client settings, the shared client instance, and the
//! producer-side unique message ids.

pub mod admin;
pub mod config;
pub mod instance;
pub mod unique_id;
