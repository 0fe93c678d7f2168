//! The broker (RocketMQ: BrokerController and its processors, managers and
//! services). Under construction: settings, the persisted topic /
//! subscription group / consumer offset managers, and long polling are in.

pub mod config;
pub mod consumer_offset;
pub mod long_polling;
pub mod subscription_group;
pub mod topic_config;
