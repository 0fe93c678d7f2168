//! Rebalancing (RocketMQ: RebalanceImpl): which queues of each subscribed
//! topic this consumer owns. Every 20 s, or when a broker says the group
//! changed, `RebalanceService` asks each consumer to rebalance: the group's
//! client ids from a broker, queues and ids sorted, the allocation strategy,
//! then new ProcessQueues get a PullRequest and dropped ones persist their
//! offset (orderly: give back their broker lock).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::client::consumer::allocate::AllocateStrategy;
use crate::client::consumer::offset_store::{NO_OFFSET, OffsetStore, ReadOffsetType};
use crate::client::consumer::process_queue::ProcessQueue;
use crate::client::consumer::pull_service::PullRequest;
use crate::client::consumer::{ConsumeFromWhere, MessageModel};
use crate::client::instance::ClientInstance;
use crate::common::topic::RETRY_GROUP_TOPIC_PREFIX;
use crate::remoting::body::{MessageQueue, SubscriptionData};

/// How often `RebalanceService` rebalances without being woken (RocketMQ:
/// rocketmq.client.rebalance.waitInterval, 20 s).
pub const REBALANCE_INTERVAL: Duration = Duration::from_secs(20);
/// When an orderly queue could not be locked, rebalance again after this.
const LOCK_RETRY_DELAY: Duration = Duration::from_secs(1);

/// One consumer's side of rebalancing (RocketMQ: RebalanceImpl /
/// RebalancePushImpl; the lite pull consumer uses it the same way).
pub struct Rebalance {
    pub group: String,
    pub model: MessageModel,
    pub orderly: bool,
    pub consume_from_where: ConsumeFromWhere,
    /// CONSUME_FROM_TIMESTAMP's start, in milliseconds.
    pub consume_timestamp: i64,
    strategy: Arc<dyn AllocateStrategy>,
    instance: Arc<ClientInstance>,
    offset_store: Arc<dyn OffsetStore>,
    /// Topic -> subscription (RocketMQ: subscriptionInner).
    pub subscriptions: RwLock<BTreeMap<String, SubscriptionData>>,
    /// RocketMQ: processQueueTable.
    process_queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    /// Serialises rebalances (the service thread, start, offset resets).
    running: Mutex<()>,
}

impl Rebalance {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        group: String,
        model: MessageModel,
        orderly: bool,
        consume_from_where: ConsumeFromWhere,
        consume_timestamp: i64,
        strategy: Arc<dyn AllocateStrategy>,
        instance: Arc<ClientInstance>,
        offset_store: Arc<dyn OffsetStore>,
    ) -> Self {
        Rebalance {
            group,
            model,
            orderly,
            consume_from_where,
            consume_timestamp,
            strategy,
            instance,
            offset_store,
            subscriptions: RwLock::default(),
            process_queues: Mutex::default(),
            running: Mutex::new(()),
        }
    }

    pub fn process_queue(&self, mq: &MessageQueue) -> Option<Arc<ProcessQueue>> {
        self.process_queues.lock().get(mq).cloned()
    }

    /// The queues this consumer owns now, sorted.
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = self.process_queues.lock().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn process_queues(&self) -> Vec<(MessageQueue, Arc<ProcessQueue>)> {
        let mut v: Vec<_> = self.process_queues.lock().iter().map(|(m, p)| (m.clone(), p.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Rebalances every subscribed topic and drops queues of topics no
    /// longer subscribed. Returns whether the owned queues changed.
    pub fn do_rebalance(&self) -> bool {
        let _one_at_a_time = self.running.lock();
        let subs: Vec<String> = self.subscriptions.read().keys().cloned().collect();
        let mut changed = false;
        for topic in &subs {
            changed |= self.rebalance_by_topic(topic);
        }
        let stale: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .process_queues
            .lock()
            .iter()
            .filter(|(mq, _)| !subs.contains(&mq.topic))
            .map(|(m, p)| (m.clone(), p.clone()))
            .collect();
        for (mq, pq) in stale {
            pq.set_dropped(true);
            self.process_queues.lock().remove(&mq);
            changed = true;
        }
        if changed {
            self.instance.send_heartbeat_to_all_brokers();
        }
        changed
    }

    fn rebalance_by_topic(&self, topic: &str) -> bool {
        let mut mqs = self.instance.subscribe_queues(topic);
        if mqs.is_none() {
            if let Err(e) = self.instance.update_topic_route(topic) {
                log::warn!("rebalance of {}: no route of {topic}: {e}", self.group);
            }
            mqs = self.instance.subscribe_queues(topic);
        }
        let Some(mqs) = mqs else {
            if !topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                log::warn!("rebalance of {}: the topic {topic} has no route", self.group);
            }
            return false;
        };
        let mine: BTreeSet<MessageQueue> = match self.model {
            MessageModel::Broadcasting => mqs.into_iter().collect(),
            MessageModel::Clustering => {
                let Some(addr) = self.instance.any_broker_of_topic(topic) else { return false };
                let mut cids = match self.instance.consumer_id_list(&addr, &self.group) {
                    Ok(c) => c,
                    Err(e) => {
                        log::warn!("rebalance of {}: cannot get the consumer ids from {addr}: {e}", self.group);
                        return false;
                    }
                };
                if mqs.is_empty() || cids.is_empty() {
                    return false;
                }
                cids.sort();
                self.strategy.allocate(&self.group, self.instance.client_id(), &mqs, &cids).into_iter().collect()
            }
        };
        self.update_process_queue_table(topic, &mine)
    }

    /// Drops queues of `topic` not in `mine` (or not pulled for too long),
    /// and creates ProcessQueues + PullRequests for the new ones.
    fn update_process_queue_table(&self, topic: &str, mine: &BTreeSet<MessageQueue>) -> bool {
        let mut changed = false;
        let existing: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .process_queues
            .lock()
            .iter()
            .filter(|(mq, _)| mq.topic == topic)
            .map(|(m, p)| (m.clone(), p.clone()))
            .collect();
        for (mq, pq) in existing {
            let gone = !mine.contains(&mq);
            if gone || pq.is_pull_expired() {
                if !gone {
                    log::warn!("{}: {mq:?} was not pulled for too long; dropping it", self.group);
                }
                pq.set_dropped(true);
                if self.remove_unnecessary_queue(&mq, &pq) {
                    self.process_queues.lock().remove(&mq);
                    changed = true;
                }
            }
        }
        let mut requests = Vec::new();
        for mq in mine {
            if self.process_queues.lock().contains_key(mq) {
                continue;
            }
            if self.orderly && self.model == MessageModel::Clustering && !self.lock(mq) {
                // Its previous owner may still be giving it up: try again soon.
                log::info!("{}: {mq:?} is locked by another consumer; trying again in 1 s", self.group);
                self.instance.rebalance_later(LOCK_RETRY_DELAY);
                continue;
            }
            self.offset_store.remove_offset(mq);
            let next_offset = self.compute_pull_from_where(mq);
            if next_offset < 0 {
                log::warn!("{}: no start offset for {mq:?} ({next_offset}); retried next rebalance", self.group);
                continue;
            }
            let pq = Arc::new(ProcessQueue::new());
            if self.orderly {
                // Locked just above: consume at once, not after the next renewal.
                pq.set_locked(true);
            }
            self.process_queues.lock().insert(mq.clone(), pq.clone());
            requests.push(PullRequest {
                consumer_group: self.group.clone(),
                mq: mq.clone(),
                pq,
                next_offset,
                locked_first: false,
            });
            changed = true;
        }
        if let Some(ps) = self.instance.pull_service() {
            for r in requests {
                ps.execute_pull_request_immediately(r);
            }
        }
        changed
    }

    /// Persists and forgets a dropped queue's offset; orderly consumers give
    /// back the broker lock once no listener runs on the queue (RocketMQ:
    /// removeUnnecessaryMessageQueue). False: still busy, try next time.
    fn remove_unnecessary_queue(&self, mq: &MessageQueue, pq: &Arc<ProcessQueue>) -> bool {
        self.offset_store.persist(mq);
        self.offset_store.remove_offset(mq);
        if self.orderly && self.model == MessageModel::Clustering {
            let Some(_g) = pq.consume_lock.try_lock_for(Duration::from_secs(1)) else {
                pq.inc_try_unlock_times();
                return false;
            };
            self.unlock(mq, true);
        }
        true
    }

    /// Where a new queue starts: the committed offset, else per
    /// ConsumeFromWhere (RocketMQ: RebalancePushImpl.computePullFromWhere).
    /// Negative when it cannot be known now.
    pub fn compute_pull_from_where(&self, mq: &MessageQueue) -> i64 {
        let last = self.offset_store.read_offset(mq, ReadOffsetType::Store);
        if last >= 0 {
            return last;
        }
        if last != NO_OFFSET {
            return last;
        }
        let retry = mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX);
        let asked = match self.consume_from_where {
            ConsumeFromWhere::FirstOffset => return 0,
            ConsumeFromWhere::LastOffset if retry => return 0,
            ConsumeFromWhere::LastOffset => self.instance.max_offset(mq),
            ConsumeFromWhere::Timestamp if retry => self.instance.max_offset(mq),
            ConsumeFromWhere::Timestamp => self.instance.search_offset(mq, self.consume_timestamp),
        };
        asked.unwrap_or_else(|e| {
            log::warn!("{}: cannot find where to start {mq:?}: {e}", self.group);
            -1
        })
    }

    /// LOCK_BATCH_MQ for one queue; sets the ProcessQueue's flag if it has one.
    pub fn lock(&self, mq: &MessageQueue) -> bool {
        let Ok(addr) = self.instance.master_addr_or_update(&mq.broker_name, &mq.topic) else { return false };
        match self.instance.lock_batch_mq(&addr, &self.group, BTreeSet::from([mq.clone()])) {
            Ok(locked) => {
                let ok = locked.contains(mq);
                if let Some(pq) = self.process_queue(mq) {
                    pq.set_locked(ok);
                }
                ok
            }
            Err(e) => {
                log::warn!("{}: cannot lock {mq:?}: {e}", self.group);
                false
            }
        }
    }

    /// Renews the broker locks of every owned queue, broker by broker
    /// (RocketMQ: lockAll); queues another consumer holds are marked unlocked.
    pub fn lock_all(&self) {
        for (broker, mqs) in self.by_broker() {
            let Ok(addr) = self.instance.master_addr_or_update(&broker, &mqs[0].topic) else { continue };
            match self.instance.lock_batch_mq(&addr, &self.group, mqs.iter().cloned().collect()) {
                Ok(locked) => {
                    for mq in &mqs {
                        if let Some(pq) = self.process_queue(mq) {
                            pq.set_locked(locked.contains(mq));
                        }
                    }
                }
                Err(e) => log::warn!("{}: cannot renew the locks on {broker}: {e}", self.group),
            }
        }
    }

    /// UNLOCK_BATCH_MQ for one queue.
    pub fn unlock(&self, mq: &MessageQueue, oneway: bool) {
        let Ok(addr) = self.instance.master_addr_or_update(&mq.broker_name, &mq.topic) else { return };
        if let Err(e) = self.instance.unlock_batch_mq(&addr, &self.group, BTreeSet::from([mq.clone()]), oneway) {
            log::warn!("{}: cannot unlock {mq:?}: {e}", self.group);
        }
    }

    /// Gives back every broker lock (on shutdown).
    pub fn unlock_all(&self, oneway: bool) {
        for (broker, mqs) in self.by_broker() {
            let Ok(addr) = self.instance.master_addr_or_update(&broker, &mqs[0].topic) else { continue };
            if let Err(e) = self.instance.unlock_batch_mq(&addr, &self.group, mqs.iter().cloned().collect(), oneway) {
                log::warn!("{}: cannot unlock on {broker}: {e}", self.group);
            }
            for mq in &mqs {
                if let Some(pq) = self.process_queue(mq) {
                    pq.set_locked(false);
                }
            }
        }
    }

    fn by_broker(&self) -> BTreeMap<String, Vec<MessageQueue>> {
        let mut m: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
        for mq in self.owned_queues() {
            m.entry(mq.broker_name.clone()).or_default().push(mq);
        }
        m
    }

    /// Consumes an owned queue again from `offset` (RESET_CONSUMER_CLIENT_OFFSET):
    /// a fresh ProcessQueue replaces the old one, whose pulls and listener
    /// results no longer count, and pulls start at `offset`. False when the
    /// queue is not owned.
    pub fn restart_queue_at(&self, mq: &MessageQueue, offset: i64) -> bool {
        let pq = {
            let mut t = self.process_queues.lock();
            let Some(old) = t.get(mq).cloned() else { return false };
            old.set_dropped(true);
            let pq = Arc::new(ProcessQueue::new());
            pq.set_locked(old.is_locked());
            t.insert(mq.clone(), pq.clone());
            pq
        };
        if let Some(ps) = self.instance.pull_service() {
            ps.execute_pull_request_immediately(PullRequest {
                consumer_group: self.group.clone(),
                mq: mq.clone(),
                pq,
                next_offset: offset,
                locked_first: true,
            });
        }
        true
    }

    /// Drops and forgets `mq` (offset illegal, offset reset).
    pub fn remove_process_queue(&self, mq: &MessageQueue) {
        let pq = self.process_queues.lock().remove(mq);
        if let Some(pq) = pq {
            pq.set_dropped(true);
            self.remove_unnecessary_queue(mq, &pq);
        }
    }

    /// Drops every queue (on shutdown; RocketMQ: destroy).
    pub fn destroy(&self) {
        for (_, pq) in self.process_queues.lock().drain() {
            pq.set_dropped(true);
        }
    }
}
