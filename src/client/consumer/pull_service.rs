//! `PullMessageService`: one thread per client instance that takes
//! PullRequests from a blocking queue and hands each to its consumer, which
//! sends an async PULL_MESSAGE; `PullMessageServiceScheduledThread` puts a
//! request back later (flow control, errors, pull interval).

use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::client::consumer::process_queue::ProcessQueue;
use crate::client::instance::ClientInstance;
use crate::common::{ScheduledExecutor, ServiceThread};
use crate::remoting::body::MessageQueue;

/// One queue's next pull (RocketMQ: PullRequest).
#[derive(Clone)]
pub struct PullRequest {
    pub consumer_group: String,
    pub mq: MessageQueue,
    pub pq: Arc<ProcessQueue>,
    pub next_offset: i64,
    /// Orderly: the offset was re-read from the offset store once the
    /// queue was locked.
    pub locked_first: bool,
}

impl std::fmt::Debug for PullRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PullRequest({}, {:?}, next {})", self.consumer_group, self.mq, self.next_offset)
    }
}

/// RocketMQ: PullMessageService.
pub struct PullMessageService {
    /// `None` only wakes the thread to see it should stop.
    tx: Sender<Option<PullRequest>>,
    thread: ServiceThread,
    scheduled: ScheduledExecutor,
}

impl PullMessageService {
    pub fn start(instance: Weak<ClientInstance>) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Option<PullRequest>>, Receiver<Option<PullRequest>>) = crossbeam_channel::unbounded();
        let thread = ServiceThread::start("PullMessageService", "client", move |ctx| {
            while !ctx.is_stopped() {
                crate::common::thread::doing("waiting for pull requests");
                let Ok(Some(req)) = rx.recv() else { continue };
                crate::common::thread::doing("sending a pull");
                let Some(inst) = instance.upgrade() else { break };
                match inst.select_consumer(&req.consumer_group) {
                    Some(c) => c.pull_message(req),
                    // The consumer shut down after this request was queued.
                    None => log::debug!("no consumer of group {} for {req:?}", req.consumer_group),
                }
            }
        })?;
        let scheduled = ScheduledExecutor::new("PullMessageServiceScheduledThread", "client")?;
        Ok(PullMessageService { tx, thread, scheduled })
    }

    /// Queues `req` for the pull thread.
    pub fn execute_pull_request_immediately(&self, req: PullRequest) {
        if self.tx.send(Some(req)).is_err() {
            log::warn!("the pull service is stopped; a pull request is dropped with its queue");
        }
    }

    /// Queues `req` after `delay` (unless the service stops first).
    pub fn execute_pull_request_later(&self, req: PullRequest, delay: Duration) {
        let tx = self.tx.clone();
        self.scheduled.schedule(delay, move || {
            let _ = tx.send(Some(req));
        });
    }

    /// Runs `f` on the scheduled thread after `delay`.
    pub fn execute_task_later(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        self.scheduled.schedule(delay, f);
    }

    /// Stops both threads and joins them.
    pub fn shutdown(&self) {
        self.scheduled.shutdown();
        self.thread.stop();
        let _ = self.tx.send(None);
        self.thread.shutdown();
    }
}
