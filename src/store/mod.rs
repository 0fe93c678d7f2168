//! The message store: CommitLog and ConsumeQueues on memory-mapped files,
//! flushing, dispatch to ConsumeQueues, crash recovery and file cleaning.

pub mod checkpoint;
mod cleaning;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod disk;
mod flush;
pub mod mapped_file;
pub mod mapped_file_queue;
pub mod message_store;
mod recovery;
mod reput;

pub use config::{FlushDiskType, StoreConfig};
pub use message_store::{
    GetMessageResult, GetMessageStatus, MessageArrivingListener, MessageFilter, MessageStore, PutMessageResult,
    PutMessageStatus,
};
