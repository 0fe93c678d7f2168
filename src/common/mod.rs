//! Shared mechanisms: named threads and their registry, service threads,
//! scheduled executors, bounded pools, waiting with deadlines, time.

pub mod file;
pub mod message;
pub mod pool;
pub mod queue;
pub mod scheduler;
pub mod service;
pub mod thread;
pub mod thread_dump;
pub mod time;
pub mod topic;
pub mod wait;

pub use pool::{PoolError, ThreadPool};
pub use scheduler::{ScheduledExecutor, TaskHandle};
pub use service::{ServiceContext, ServiceThread};
pub use thread_dump::{thread_dump, thread_dump_of};
