//! Consumer groups' settings (RocketMQ: SubscriptionGroupManager and
//! SubscriptionGroupConfig), persisted in
//! `<storePathRootDir>/config/subscriptionGroup.json` as
//! `{"subscriptionGroupTable":{group: SubscriptionGroupConfig}, "dataVersion":{...}}`.
//!
//! Loading starts from the groups Apache's broker creates in its
//! constructor, then lays the file's groups over them.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::topic_config::{config_file, next_version, read_config, to_pretty};
use crate::common::file::write_atomically;
use crate::common::time::now_millis;
use crate::remoting::body::{DataVersion, MASTER_ID};

/// RocketMQ: MixAll.TOOLS_CONSUMER_GROUP.
pub const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";
/// RocketMQ: MixAll.FILTERSRV_CONSUMER_GROUP.
pub const FILTERSRV_CONSUMER_GROUP: &str = "FILTERSRV_CONSUMER";
/// RocketMQ: MixAll.SELF_TEST_CONSUMER_GROUP.
pub const SELF_TEST_CONSUMER_GROUP: &str = "SELF_TEST_C_GROUP";
/// RocketMQ: MixAll.ONS_HTTP_PROXY_GROUP.
pub const ONS_HTTP_PROXY_GROUP: &str = "CID_ONS-HTTP-PROXY";
/// RocketMQ: MixAll.CID_ONSAPI_PULL_GROUP.
pub const CID_ONSAPI_PULL_GROUP: &str = "CID_ONSAPI_PULL";
/// RocketMQ: MixAll.CID_ONSAPI_PERMISSION_GROUP.
pub const CID_ONSAPI_PERMISSION_GROUP: &str = "CID_ONSAPI_PERMISSION";
/// RocketMQ: MixAll.CID_ONSAPI_OWNER_GROUP.
pub const CID_ONSAPI_OWNER_GROUP: &str = "CID_ONSAPI_OWNER";
/// Groups with this prefix are created even when auto-creation is off
/// (RocketMQ: MixAll.CID_RMQ_SYS_PREFIX).
pub const CID_RMQ_SYS_PREFIX: &str = "CID_RMQ_SYS_";

/// The groups every broker has (RocketMQ: SubscriptionGroupManager.init).
pub const SYSTEM_GROUPS: [&str; 7] = [
    TOOLS_CONSUMER_GROUP,
    FILTERSRV_CONSUMER_GROUP,
    SELF_TEST_CONSUMER_GROUP,
    ONS_HTTP_PROXY_GROUP,
    CID_ONSAPI_PULL_GROUP,
    CID_ONSAPI_PERMISSION_GROUP,
    CID_ONSAPI_OWNER_GROUP,
];

/// RocketMQ: MixAll.isSysConsumerGroup.
pub fn is_sys_consumer_group(group: &str) -> bool {
    group.starts_with(CID_RMQ_SYS_PREFIX)
}

/// One consumer group's settings, with Apache's JSON field names and
/// defaults (RocketMQ: SubscriptionGroupConfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_broadcast_enable: bool,
    pub retry_queue_nums: i32,
    pub retry_max_times: i32,
    pub broker_id: i64,
    pub which_broker_when_consume_slowly: i64,
    pub notify_consumer_ids_changed_enable: bool,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: MASTER_ID,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
        }
    }
}

impl SubscriptionGroupConfig {
    /// The defaults for `group`.
    pub fn new(group: &str) -> Self {
        SubscriptionGroupConfig { group_name: group.to_string(), ..Default::default() }
    }
}

/// The file's shape, and the GET_ALL_SUBSCRIPTIONGROUP_CONFIG body
/// (RocketMQ: SubscriptionGroupWrapper).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    pub subscription_group_table: HashMap<String, SubscriptionGroupConfig>,
    pub data_version: DataVersion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupsFile<'a> {
    subscription_group_table: BTreeMap<&'a str, &'a SubscriptionGroupConfig>,
    data_version: &'a DataVersion,
}

struct State {
    table: HashMap<String, SubscriptionGroupConfig>,
    data_version: DataVersion,
}

/// The broker's consumer groups (RocketMQ: SubscriptionGroupManager).
/// Thread-safe.
pub struct SubscriptionGroupManager {
    path: PathBuf,
    auto_create: bool,
    state: RwLock<State>,
    persist_lock: Mutex<()>,
}

impl SubscriptionGroupManager {
    /// `<storePathRootDir>/config/subscriptionGroup.json`.
    pub fn default_path(store_path_root_dir: &Path) -> PathBuf {
        config_file(store_path_root_dir, "subscriptionGroup.json")
    }

    /// Creates the system groups, then lays `path` (the file itself, or its
    /// `.bak` when it is missing or empty) over them. A missing file is no
    /// error; a malformed one is, naming the file. `auto_create` is
    /// autoCreateSubscriptionGroup (Apache's default: true).
    pub fn load(path: PathBuf, auto_create: bool) -> io::Result<Self> {
        let mut table: HashMap<String, SubscriptionGroupConfig> =
            SYSTEM_GROUPS.iter().map(|g| (g.to_string(), SubscriptionGroupConfig::new(g))).collect();
        let mut data_version = DataVersion { counter: 0, timestamp: now_millis() };
        if let Some(file) = read_config::<SubscriptionGroupWrapper>(&path)? {
            for (name, mut cfg) in file.subscription_group_table {
                if cfg.group_name.is_empty() {
                    cfg.group_name = name.clone();
                }
                table.insert(name, cfg);
            }
            data_version = file.data_version;
        }
        Ok(SubscriptionGroupManager {
            path,
            auto_create,
            state: RwLock::new(State { table, data_version }),
            persist_lock: Mutex::new(()),
        })
    }

    /// The file this manager persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        self.state.read().table.get(group).cloned()
    }

    /// RocketMQ: findSubscriptionGroupConfig. The group's settings; an
    /// unknown group is created with the defaults (bumping the data version
    /// and persisting) when auto-creation is on or the group is a
    /// `CID_RMQ_SYS_` group, else `None`. A failed write is logged, as
    /// Apache does; the group stays created and the next write saves it.
    pub fn find_or_create(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        if let Some(cfg) = self.get(group) {
            return Some(cfg);
        }
        if !(self.auto_create || is_sys_consumer_group(group)) {
            return None;
        }
        let cfg = {
            let mut s = self.state.write();
            if let Some(cfg) = s.table.get(group) {
                return Some(cfg.clone());
            }
            let cfg = SubscriptionGroupConfig::new(group);
            s.table.insert(group.to_string(), cfg.clone());
            next_version(&mut s.data_version);
            cfg
        };
        log::info!("auto create a subscription group, {cfg:?}");
        if let Err(e) = self.persist() {
            log::error!("persist file {} failed: {e}", self.path.display());
        }
        Some(cfg)
    }

    /// Creates or replaces `cfg` (RocketMQ: updateSubscriptionGroupConfig),
    /// bumps the data version and persists.
    pub fn update(&self, cfg: SubscriptionGroupConfig) -> io::Result<()> {
        {
            let mut s = self.state.write();
            match s.table.insert(cfg.group_name.clone(), cfg.clone()) {
                Some(old) => log::info!("update subscription group config, old: {old:?} new: {cfg:?}"),
                None => log::info!("create new subscription group, {cfg:?}"),
            }
            next_version(&mut s.data_version);
        }
        self.persist()
    }

    /// Removes `group` (RocketMQ: deleteSubscriptionGroupConfig); bumps the
    /// data version and persists only when it existed.
    pub fn delete(&self, group: &str) -> io::Result<Option<SubscriptionGroupConfig>> {
        let old = {
            let mut s = self.state.write();
            let old = s.table.remove(group);
            if old.is_some() {
                next_version(&mut s.data_version);
            }
            old
        };
        match &old {
            Some(cfg) => {
                log::info!("delete subscription group OK, subscription group: {cfg:?}");
                self.persist()?;
            }
            None => log::warn!("delete subscription group failed, subscription groupName: {group} not exist"),
        }
        Ok(old)
    }

    /// Turns consumption off for `group` in memory and bumps the data
    /// version, without persisting (RocketMQ: disableConsume).
    pub fn disable_consume(&self, group: &str) {
        let mut s = self.state.write();
        if let Some(cfg) = s.table.get_mut(group) {
            cfg.consume_enable = false;
            next_version(&mut s.data_version);
        }
    }

    /// Every group, sorted by name.
    pub fn all(&self) -> Vec<SubscriptionGroupConfig> {
        let mut v: Vec<SubscriptionGroupConfig> = self.state.read().table.values().cloned().collect();
        v.sort_by(|a, b| a.group_name.cmp(&b.group_name));
        v
    }

    pub fn data_version(&self) -> DataVersion {
        self.state.read().data_version.clone()
    }

    /// Table and data version as one snapshot (the
    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG body).
    pub fn wrapper(&self) -> SubscriptionGroupWrapper {
        let s = self.state.read();
        SubscriptionGroupWrapper { subscription_group_table: s.table.clone(), data_version: s.data_version.clone() }
    }

    /// Writes the table and data version to the file.
    pub fn persist(&self) -> io::Result<()> {
        let _writing = self.persist_lock.lock();
        let bytes = {
            let s = self.state.read();
            let file = GroupsFile {
                subscription_group_table: s.table.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                data_version: &s.data_version,
            };
            to_pretty(&file)?
        };
        write_atomically(&self.path, &bytes)
    }
}
