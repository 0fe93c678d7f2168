//! Consumer groups' committed offsets (RocketMQ: ConsumerOffsetManager),
//! persisted in `<storePathRootDir>/config/consumerOffset.json` as
//! `{"offsetTable":{"topic@group":{"0":123,"1":456}}}`.
//!
//! Apache's brokers write the queue ids without quotes (`{0:123}`); both
//! forms are read, standard JSON is written. Commits change memory only:
//! the broker calls [`ConsumerOffsetManager::persist`] every 5 seconds
//! (flushConsumerOffsetInterval) and on shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::topic_config::{config_file, read_config, to_pretty};
use crate::common::file::write_atomically;

/// Between topic and group in the table's keys (RocketMQ: TOPIC_GROUP_SEPARATOR).
pub const TOPIC_GROUP_SEPARATOR: char = '@';

type OffsetTable = HashMap<String, HashMap<i32, i64>>;

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OffsetFile {
    offset_table: OffsetTable,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFileOut<'a> {
    offset_table: BTreeMap<&'a str, BTreeMap<i32, i64>>,
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}{TOPIC_GROUP_SEPARATOR}{group}")
}

/// `(topic, group)` of a `topic@group` key; `None` unless it has exactly
/// one separator and a group (as Apache's split on `@`).
fn split_key(key: &str) -> Option<(&str, &str)> {
    let (topic, group) = key.split_once(TOPIC_GROUP_SEPARATOR)?;
    if group.is_empty() || group.contains(TOPIC_GROUP_SEPARATOR) {
        return None;
    }
    Some((topic, group))
}

/// The committed offsets of every group (RocketMQ: ConsumerOffsetManager).
/// Thread-safe.
pub struct ConsumerOffsetManager {
    path: PathBuf,
    table: RwLock<OffsetTable>,
    persist_lock: Mutex<()>,
}

impl ConsumerOffsetManager {
    /// `<storePathRootDir>/config/consumerOffset.json`.
    pub fn default_path(store_path_root_dir: &Path) -> PathBuf {
        config_file(store_path_root_dir, "consumerOffset.json")
    }

    /// Loads `path` (the file itself, or its `.bak` when it is missing,
    /// empty or malformed). A missing file is an empty table; a malformed
    /// one without a usable `.bak` an error naming the file.
    pub fn load(path: PathBuf) -> io::Result<Self> {
        let table = read_config::<OffsetFile>(&path)?.map(|f| f.offset_table).unwrap_or_default();
        Ok(ConsumerOffsetManager { path, table: RwLock::new(table), persist_lock: Mutex::new(()) })
    }

    /// The file this manager persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `offset` as `group`'s offset in `topic`'s queue `queue_id`
    /// (RocketMQ: commitOffset), whatever it is: filtering (-1 from clients
    /// that have none, offsets behind the queue's minimum) is the caller's.
    /// An offset lower than the stored one is logged and stored. Memory
    /// only; see [`Self::persist`].
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let k = key(topic, group);
        let mut t = self.table.write();
        let queues = t.entry(k).or_default();
        if let Some(old) = queues.insert(queue_id, offset)
            && offset < old
        {
            log::warn!(
                "update consumer offset less than store. key={topic}@{group}, queueId={queue_id}, requestOffset={offset}, storeOffset={old}"
            );
        }
    }

    /// Brings every committed offset past its queue's end (`max_of(topic,
    /// queue_id)`) back to that end, and says how many moved. A consumer may
    /// have committed messages that a crash then took before they reached
    /// the disk (they were dispatched before they were flushed); left as it
    /// is, such an offset would skip the queue's next messages. Run once the
    /// store has recovered.
    pub fn correct_beyond(&self, max_of: impl Fn(&str, i32) -> i64) -> usize {
        let mut moved = 0;
        for (k, queues) in self.table.write().iter_mut() {
            let Some((topic, group)) = split_key(k) else { continue };
            for (qid, offset) in queues.iter_mut() {
                let max = max_of(topic, *qid);
                if *offset > max {
                    log::warn!(
                        "{group}'s offset {offset} in {topic}-{qid} is past the queue's end {max} (lost in a crash): \
                         set to {max}"
                    );
                    *offset = max;
                    moved += 1;
                }
            }
        }
        moved
    }

    /// The committed offset; `None` when none was ever committed (Apache
    /// answers -1 then).
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.read().get(&key(topic, group))?.get(&queue_id).copied()
    }

    /// Every queue's committed offset of `group` in `topic` (empty when none).
    pub fn query_all(&self, group: &str, topic: &str) -> HashMap<i32, i64> {
        self.table.read().get(&key(topic, group)).cloned().unwrap_or_default()
    }

    /// Groups with offsets in `topic` (RocketMQ: whichGroupByTopic).
    pub fn groups_of_topic(&self, topic: &str) -> BTreeSet<String> {
        self.table
            .read()
            .keys()
            .filter_map(|k| split_key(k))
            .filter(|(t, _)| *t == topic)
            .map(|(_, g)| g.to_string())
            .collect()
    }

    /// Topics in which `group` has offsets (RocketMQ: whichTopicByConsumer).
    pub fn topics_of_group(&self, group: &str) -> BTreeSet<String> {
        self.table
            .read()
            .keys()
            .filter_map(|k| split_key(k))
            .filter(|(_, g)| *g == group)
            .map(|(t, _)| t.to_string())
            .collect()
    }

    /// The whole table, keyed `topic@group` (GET_ALL_CONSUMER_OFFSET).
    pub fn table(&self) -> HashMap<String, HashMap<i32, i64>> {
        self.table.read().clone()
    }

    /// Forgets every group's offsets in `topic` (memory only).
    pub fn remove_topic(&self, topic: &str) {
        self.table.write().retain(|k, _| split_key(k).is_none_or(|(t, _)| t != topic));
    }

    /// Forgets `group`'s offsets in every topic (RocketMQ: removeOffset;
    /// memory only).
    pub fn remove_group(&self, group: &str) {
        self.table.write().retain(|k, _| split_key(k).is_none_or(|(_, g)| g != group));
    }

    /// Copies `src_group`'s offsets in `topic` to `dest_group`, replacing
    /// what it had (RocketMQ: cloneOffset; memory only).
    pub fn clone_offset(&self, src_group: &str, dest_group: &str, topic: &str) {
        let mut t = self.table.write();
        if let Some(offsets) = t.get(&key(topic, src_group)).cloned() {
            t.insert(key(topic, dest_group), offsets);
        }
    }

    /// Writes the table to the file (sorted keys).
    pub fn persist(&self) -> io::Result<()> {
        let _writing = self.persist_lock.lock();
        let bytes = {
            let t = self.table.read();
            let file = OffsetFileOut {
                offset_table: t
                    .iter()
                    .map(|(k, queues)| (k.as_str(), queues.iter().map(|(q, o)| (*q, *o)).collect()))
                    .collect(),
            };
            to_pretty(&file)?
        };
        write_atomically(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_like_apache() {
        assert_eq!(split_key("T@g"), Some(("T", "g")));
        assert_eq!(split_key("%RETRY%g@g"), Some(("%RETRY%g", "g")));
        assert_eq!(split_key("T"), None);
        assert_eq!(split_key("a@b@c"), None);
        assert_eq!(split_key("T@"), None);
    }

    #[test]
    fn offsets_past_a_queues_end_come_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = ConsumerOffsetManager::load(dir.path().join("consumerOffset.json")).unwrap();
        m.commit("g", "T", 0, 50);
        m.commit("g", "T", 1, 5);
        m.commit("h", "U", 0, 7);
        let moved = m.correct_beyond(|topic, qid| if (topic, qid) == ("T", 0) { 40 } else { 10 });
        assert_eq!(moved, 1);
        assert_eq!(m.query("g", "T", 0), Some(40));
        assert_eq!(m.query("g", "T", 1), Some(5));
        assert_eq!(m.query("h", "U", 0), Some(7));
    }
}
