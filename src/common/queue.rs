//! The bounded blocking queue between threads (pools, selectors to decoding
//! threads). A consumer with nothing to do parks at once: on a machine with
//! few cores, the spin-then-yield of general-purpose channels takes CPU from
//! the threads that would fill the queue.

use std::collections::VecDeque;

use parking_lot::{Condvar, Mutex};

use crate::common::wait::Deadline;

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Why an item was not queued; the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError<T> {
    Full(T),
    Closed(T),
}

pub struct BlockingQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    capacity: usize,
}

impl<T> BlockingQueue<T> {
    pub fn new(capacity: usize) -> Self {
        BlockingQueue {
            state: Mutex::new(State { items: VecDeque::new(), closed: false }),
            not_empty: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `item` unless the queue is full or closed.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(PushError::Closed(item));
        }
        if s.items.len() >= self.capacity {
            return Err(PushError::Full(item));
        }
        s.items.push_back(item);
        drop(s);
        self.not_empty.notify_one();
        Ok(())
    }

    /// The next item; `None` once the queue is closed and drained.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if let Some(v) = s.items.pop_front() {
                return Some(v);
            }
            if s.closed {
                return None;
            }
            self.not_empty.wait(&mut s);
        }
    }

    /// The next item, waiting until `deadline`; `None` when none came.
    pub fn pop_until(&self, deadline: Deadline) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if let Some(v) = s.items.pop_front() {
                return Some(v);
            }
            if s.closed || self.not_empty.wait_until(&mut s, deadline.instant()).timed_out() {
                return s.items.pop_front();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses new items; consumers drain what is there, then get `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.not_empty.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn bounded_fifo_that_drains_after_close() {
        let q = BlockingQueue::new(2);
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        assert_eq!(q.try_push(3), Err(PushError::Full(3)));
        assert_eq!(q.pop(), Some(1));
        q.close();
        assert_eq!(q.try_push(4), Err(PushError::Closed(4)));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_parked_consumer_wakes_for_an_item_and_times_out_without_one() {
        let q = Arc::new(BlockingQueue::new(4));
        assert_eq!(q.pop_until(Deadline::after(Duration::from_millis(5))), None::<i32>);
        let q2 = q.clone();
        let h = std::thread::spawn(move || q2.pop());
        q.try_push(7).unwrap();
        assert_eq!(h.join().unwrap(), Some(7));
    }
}
