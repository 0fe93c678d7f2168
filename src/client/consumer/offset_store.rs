//! Consume offsets (RocketMQ: OffsetStore): on the broker for clustering
//! (RemoteBrokerOffsetStore: kept in memory, sent oneway every 5 s and when
//! a queue goes away), in a local file for broadcasting (LocalFileOffsetStore).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::client::instance::{ClientError, ClientInstance};
use crate::common::file::{read_parsed_with_backup, write_atomically};
use crate::remoting::body::{MessageQueue, OffsetTable};
use crate::remoting::code::response;

/// Where `read_offset` looks (RocketMQ: ReadOffsetType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOffsetType {
    Memory,
    Store,
    MemoryFirstThenStore,
}

/// `read_offset`'s answer when there is no offset.
pub const NO_OFFSET: i64 = -1;
/// `read_offset`'s answer when the store could not be asked.
pub const OFFSET_ERROR: i64 = -2;

/// RocketMQ: OffsetStore.
pub trait OffsetStore: Send + Sync + 'static {
    /// Reads what was persisted before (local files only).
    fn load(&self) -> Result<(), ClientError>;
    /// Sets `mq`'s offset in memory; with `increase_only`, never lowers it.
    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool);
    /// `mq`'s offset, [`NO_OFFSET`] or [`OFFSET_ERROR`].
    fn read_offset(&self, mq: &MessageQueue, ty: ReadOffsetType) -> i64;
    /// Persists the offsets of `mqs` (and forgets the others).
    fn persist_all(&self, mqs: &[MessageQueue]);
    /// Persists one queue's offset.
    fn persist(&self, mq: &MessageQueue);
    fn remove_offset(&self, mq: &MessageQueue);
    /// The offsets in memory of `topic`'s queues.
    fn offsets_of(&self, topic: &str) -> HashMap<MessageQueue, i64>;
}

fn update(table: &Mutex<HashMap<MessageQueue, i64>>, mq: &MessageQueue, offset: i64, increase_only: bool) {
    let mut t = table.lock();
    let e = t.entry(mq.clone()).or_insert(offset);
    if !increase_only || offset > *e {
        *e = offset;
    }
}

/// `read_offset`'s answer when memory decides it: the offset held, or
/// [`NO_OFFSET`] for memory-only reads; `None`: ask the store.
fn from_memory(table: &Mutex<HashMap<MessageQueue, i64>>, mq: &MessageQueue, ty: ReadOffsetType) -> Option<i64> {
    if ty != ReadOffsetType::Store
        && let Some(o) = table.lock().get(mq)
    {
        return Some(*o);
    }
    (ty == ReadOffsetType::Memory).then_some(NO_OFFSET)
}

fn offsets_of(table: &Mutex<HashMap<MessageQueue, i64>>, topic: &str) -> HashMap<MessageQueue, i64> {
    table.lock().iter().filter(|(mq, _)| mq.topic == topic).map(|(mq, o)| (mq.clone(), *o)).collect()
}

/// Offsets kept by the broker (RocketMQ: RemoteBrokerOffsetStore).
pub struct RemoteBrokerOffsetStore {
    instance: Arc<ClientInstance>,
    group: String,
    table: Mutex<HashMap<MessageQueue, i64>>,
}

impl RemoteBrokerOffsetStore {
    pub fn new(instance: Arc<ClientInstance>, group: impl Into<String>) -> Self {
        RemoteBrokerOffsetStore { instance, group: group.into(), table: Mutex::default() }
    }

    fn send(&self, mq: &MessageQueue, offset: i64) {
        let sent = self
            .instance
            .master_addr_or_update(&mq.broker_name, &mq.topic)
            .and_then(|addr| self.instance.update_consumer_offset_oneway(&addr, &self.group, mq, offset));
        if let Err(e) = sent {
            log::warn!("cannot commit offset {offset} of {mq:?} for {}: {e}", self.group);
        }
    }
}

impl OffsetStore for RemoteBrokerOffsetStore {
    fn load(&self) -> Result<(), ClientError> {
        Ok(())
    }

    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        update(&self.table, mq, offset, increase_only);
    }

    fn read_offset(&self, mq: &MessageQueue, ty: ReadOffsetType) -> i64 {
        if let Some(o) = from_memory(&self.table, mq, ty) {
            return o;
        }
        let asked = self
            .instance
            .master_addr_or_update(&mq.broker_name, &mq.topic)
            .and_then(|addr| self.instance.query_consumer_offset(&addr, &self.group, mq));
        match asked {
            Ok(o) => {
                update(&self.table, mq, o, false);
                o
            }
            Err(ClientError::Refused { code: response::QUERY_NOT_FOUND, .. }) => NO_OFFSET,
            Err(e) => {
                log::warn!("cannot read the offset of {mq:?} for {}: {e}", self.group);
                OFFSET_ERROR
            }
        }
    }

    fn persist_all(&self, mqs: &[MessageQueue]) {
        let offsets: Vec<(MessageQueue, i64)> = {
            let mut t = self.table.lock();
            t.retain(|mq, _| mqs.contains(mq));
            t.iter().map(|(mq, o)| (mq.clone(), *o)).collect()
        };
        for (mq, o) in offsets {
            self.send(&mq, o);
        }
    }

    fn persist(&self, mq: &MessageQueue) {
        let o = self.table.lock().get(mq).copied();
        if let Some(o) = o {
            self.send(mq, o);
        }
    }

    fn remove_offset(&self, mq: &MessageQueue) {
        self.table.lock().remove(mq);
    }

    fn offsets_of(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        offsets_of(&self.table, topic)
    }
}

/// Offsets in `<dir>/<client id>/<group>/offsets.json`, Apache's file
/// layout (RocketMQ: LocalFileOffsetStore).
pub struct LocalFileOffsetStore {
    path: PathBuf,
    table: Mutex<HashMap<MessageQueue, i64>>,
}

impl LocalFileOffsetStore {
    pub fn new(dir: &Path, client_id: &str, group: &str) -> Self {
        LocalFileOffsetStore { path: dir.join(client_id).join(group).join("offsets.json"), table: Mutex::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_file(&self) -> Result<HashMap<MessageQueue, i64>, ClientError> {
        let bad = |what: String| ClientError::State(format!("cannot read {}: {what}", self.path.display()));
        let table = read_parsed_with_backup(&self.path, OffsetTable::decode).map_err(|e| bad(e.to_string()))?;
        Ok(table.map(|t| t.offset_table.into_iter().collect()).unwrap_or_default())
    }
}

impl OffsetStore for LocalFileOffsetStore {
    fn load(&self) -> Result<(), ClientError> {
        let read = self.read_file()?;
        self.table.lock().extend(read);
        Ok(())
    }

    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        update(&self.table, mq, offset, increase_only);
    }

    fn read_offset(&self, mq: &MessageQueue, ty: ReadOffsetType) -> i64 {
        if let Some(o) = from_memory(&self.table, mq, ty) {
            return o;
        }
        match self.read_file() {
            Ok(t) => match t.get(mq) {
                Some(o) => {
                    update(&self.table, mq, *o, false);
                    *o
                }
                None => NO_OFFSET,
            },
            Err(e) => {
                log::warn!("{e}");
                OFFSET_ERROR
            }
        }
    }

    fn persist_all(&self, mqs: &[MessageQueue]) {
        if mqs.is_empty() {
            return;
        }
        let mut entries: Vec<(MessageQueue, i64)> =
            self.table.lock().iter().filter(|(mq, _)| mqs.contains(mq)).map(|(mq, o)| (mq.clone(), *o)).collect();
        entries.sort();
        let body = OffsetTable { offset_table: entries }.encode();
        let written = match self.path.parent() {
            Some(dir) => std::fs::create_dir_all(dir).and_then(|_| write_atomically(&self.path, &body)),
            None => write_atomically(&self.path, &body),
        };
        if let Err(e) = written {
            log::warn!("cannot write {}: {e}", self.path.display());
        }
    }

    fn persist(&self, _mq: &MessageQueue) {}

    fn remove_offset(&self, mq: &MessageQueue) {
        self.table.lock().remove(mq);
    }

    fn offsets_of(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        offsets_of(&self.table, topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_store_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFileOffsetStore::new(dir.path(), "127.0.0.1@1", "g");
        let (a, b) = (MessageQueue::new("T", "b", 0), MessageQueue::new("T", "b", 1));
        store.update_offset(&a, 7, false);
        store.update_offset(&a, 5, true);
        assert_eq!(store.read_offset(&a, ReadOffsetType::Memory), 7, "increase-only never lowers");
        store.update_offset(&b, 3, false);
        store.persist_all(&[a.clone(), b.clone()]);
        let text = std::fs::read_to_string(store.path()).expect("file");
        assert!(text.starts_with("{\"offsetTable\":{{"), "fastjson's layout: {text}");
        let again = LocalFileOffsetStore::new(dir.path(), "127.0.0.1@1", "g");
        assert_eq!(again.read_offset(&a, ReadOffsetType::Memory), NO_OFFSET);
        again.load().expect("load");
        assert_eq!(again.read_offset(&a, ReadOffsetType::Memory), 7);
        assert_eq!(again.read_offset(&b, ReadOffsetType::Store), 3);
        assert_eq!(again.read_offset(&MessageQueue::new("T", "b", 9), ReadOffsetType::Store), NO_OFFSET);
    }
}
