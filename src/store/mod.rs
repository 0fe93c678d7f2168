//! The message store: CommitLog and ConsumeQueues on memory-mapped files,
//! flushing, dispatch to ConsumeQueues, crash recovery and file cleaning.

pub mod config;
pub mod mapped_file;
pub mod mapped_file_queue;

pub use config::{FlushDiskType, StoreConfig};
