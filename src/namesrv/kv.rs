//! Namespaced key/value settings (RocketMQ: KVConfigManager), persisted as
//! `{"configTable":{namespace:{key:value}}}` with an atomic write. Brokers
//! read the `ORDER_TOPIC_CONFIG` namespace with their registration reply.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::common::file::{read_parsed_with_backup, write_atomically};

/// The namespace of global order topics (RocketMQ: NAMESPACE_ORDER_TOPIC_CONFIG).
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct KvConfigFile {
    config_table: HashMap<String, HashMap<String, String>>,
}

pub struct KvConfigManager {
    path: PathBuf,
    table: RwLock<HashMap<String, HashMap<String, String>>>,
}

impl KvConfigManager {
    /// Loads `path` (or its `.bak` when it is missing, empty or malformed);
    /// a missing file is an empty table, a malformed one without a usable
    /// `.bak` an error naming the file.
    pub fn load(path: PathBuf) -> io::Result<Self> {
        let table = read_parsed_with_backup(&path, crate::remoting::json::from_body::<KvConfigFile>)?
            .map(|f| f.config_table)
            .unwrap_or_default();
        Ok(KvConfigManager { path, table: RwLock::new(table) })
    }

    pub fn put(&self, namespace: &str, key: &str, value: &str) -> io::Result<()> {
        self.table.write().entry(namespace.to_string()).or_default().insert(key.to_string(), value.to_string());
        self.persist()
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.table.read().get(namespace)?.get(key).cloned()
    }

    pub fn delete(&self, namespace: &str, key: &str) -> io::Result<()> {
        let removed = {
            let mut t = self.table.write();
            let r = t.get_mut(namespace).and_then(|m| m.remove(key)).is_some();
            t.retain(|_, m| !m.is_empty());
            r
        };
        if removed { self.persist() } else { Ok(()) }
    }

    /// Every key of a namespace, `None` when it has none.
    pub fn list(&self, namespace: &str) -> Option<HashMap<String, String>> {
        self.table.read().get(namespace).filter(|m| !m.is_empty()).cloned()
    }

    fn persist(&self) -> io::Result<()> {
        let file = KvConfigFile { config_table: self.table.read().clone() };
        write_atomically(&self.path, &crate::remoting::json::to_body(&file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kvConfig.json");
        let kv = KvConfigManager::load(p.clone()).unwrap();
        kv.put(NAMESPACE_ORDER_TOPIC_CONFIG, "T", "broker-a:4").unwrap();
        kv.put("other", "k", "v").unwrap();
        kv.delete("other", "k").unwrap();
        let again = KvConfigManager::load(p.clone()).unwrap();
        assert_eq!(again.get(NAMESPACE_ORDER_TOPIC_CONFIG, "T").as_deref(), Some("broker-a:4"));
        assert_eq!(again.list("other"), None);
        std::fs::write(&p, b"{not json").unwrap();
        let from_bak = KvConfigManager::load(p.clone()).unwrap();
        assert_eq!(from_bak.get("other", "k").as_deref(), Some("v"), "the .bak holds the state before the last write");
        std::fs::write(dir.path().join("kvConfig.json.bak"), b"{not json either").unwrap();
        assert!(KvConfigManager::load(p).err().unwrap().to_string().contains("kvConfig.json"));
    }
}
