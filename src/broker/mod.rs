//! The broker (RocketMQ: BrokerController with its processors, managers and
//! services): settings, the persisted topic / subscription group / consumer
//! offset managers, client management, long polling, and the send, pull,
//! heartbeat and consumer-offset processors.

pub mod admin;
pub mod client_manager;
pub mod config;
pub mod consumer_offset;
pub mod controller;
pub mod long_polling;
pub mod processor;
pub mod rebalance_lock;
pub mod schedule;
pub mod subscription_group;
pub mod topic_config;

pub use config::BrokerConfig;
pub use controller::BrokerController;
