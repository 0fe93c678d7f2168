//! The client library (RocketMQ's client module): the shared client
//! instance, the producer with its latency fault tolerance, the push, pull
//! and lite pull consumers, the requests brokers send to clients, and the
//! admin operations behind `rmq admin`.

pub mod admin;
pub mod api;
pub mod config;
pub mod consumer;
pub mod instance;
pub mod latency;
pub mod processor;
pub mod producer;
pub mod unique_id;
