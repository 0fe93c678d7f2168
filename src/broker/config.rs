//! Broker settings under Apache RocketMQ's key names: RocketMQ's BrokerConfig,
//! the broker's NettyServerConfig and (through [`StoreConfig::apply`]) its
//! MessageStoreConfig, read from a `broker.conf` in Java `.properties` form
//! plus `key=value` overrides from the command line.
//!
//! Every field's comment names its Apache key and default; where our default
//! differs from Apache 4.9.8 the comment says so and why.

use std::path::Path;
use std::time::Duration;

use crate::remoting::ServerConfig;
use crate::store::StoreConfig;

/// The environment variable that supplies `namesrvAddr` when no file or
/// override sets it (RocketMQ: MixAll.NAMESRV_ADDR_ENV).
pub const NAMESRV_ADDR_ENV: &str = "NAMESRV_ADDR";

/// RocketMQ: BrokerConfig + the broker's NettyServerConfig + MessageStoreConfig.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// brokerClusterName, "DefaultCluster".
    pub broker_cluster_name: String,
    /// brokerName. Apache defaults to the host name; we default to "broker-a"
    /// (the name Apache's sample `broker.conf` uses) so that a broker's identity
    /// does not change with the machine it runs on.
    pub broker_name: String,
    /// brokerId, 0 (the master).
    pub broker_id: u64,
    /// namesrvAddr: `;`-separated `host:port` list, e.g.
    /// `127.0.0.1:9876;192.168.0.1:9876`. When no file or override sets it,
    /// [`BrokerConfig::load`] takes it from the `NAMESRV_ADDR` environment
    /// variable (as Apache does); `Default` leaves it unset. An empty value
    /// means unset.
    pub namesrv_addr: Option<String>,
    /// brokerIP1: the address this broker registers with the name servers
    /// (`broker_addr()`). Apache detects a non-loopback local address; we
    /// default to "127.0.0.1", which works for a broker, name server and
    /// clients on one machine without guessing among interfaces. Set it for
    /// anything else.
    pub broker_ip1: String,
    /// listenPort (NettyServerConfig). 10911: Apache's class default is 8888,
    /// but its broker start-up sets 10911 before reading the file, as we do.
    /// The VIP channel listens on listenPort - 2 (`vip_port()`).
    pub listen_port: u16,
    /// serverSelectorThreads (NettyServerConfig), 3.
    pub server_selector_threads: usize,
    /// serverWorkerThreads (NettyServerConfig): our `NettyServerCodecThread_N`.
    /// Apache uses 8; we use the core count up to 8, as
    /// [`ServerConfig::default`] does.
    pub server_worker_threads: usize,
    /// serverChannelMaxIdleTimeSeconds (NettyServerConfig), 120 s.
    pub server_channel_max_idle_time: Duration,
    /// autoCreateTopicEnable, true.
    pub auto_create_topic_enable: bool,
    /// clusterTopicEnable, true: a topic named after the cluster exists.
    pub cluster_topic_enable: bool,
    /// brokerTopicEnable, true: a topic named after the broker exists.
    pub broker_topic_enable: bool,
    /// autoCreateSubscriptionGroup, true.
    pub auto_create_subscription_group: bool,
    /// defaultTopicQueueNums, 8.
    pub default_topic_queue_nums: u32,
    /// brokerPermission, 6 (PERM_READ 4 | PERM_WRITE 2). Bits: 8 priority,
    /// 4 read, 2 write, 1 inherit.
    pub broker_permission: u32,
    /// msgTraceTopicName, "RMQ_SYS_TRACE_TOPIC".
    pub msg_trace_topic_name: String,
    /// traceTopicEnable, false.
    pub trace_topic_enable: bool,
    /// longPollingEnable, true.
    pub long_polling_enable: bool,
    /// shortPollingTimeMills, 1 s: how long a pull waits when long polling is off.
    pub short_polling_time_mills: Duration,
    /// notifyConsumerIdsChangedEnable, true.
    pub notify_consumer_ids_changed_enable: bool,
    /// sendMessageThreadPoolNums (`SendMessageThread_N`), min(4, cores) as in
    /// Apache 4.9.8 (older releases used 1).
    pub send_message_thread_pool_nums: usize,
    /// pullMessageThreadPoolNums (`PullMessageThread_N`), 16 + 2 * cores.
    pub pull_message_thread_pool_nums: usize,
    /// queryMessageThreadPoolNums (`QueryMessageThread_N`), 8 + cores.
    pub query_message_thread_pool_nums: usize,
    /// adminBrokerThreadPoolNums (`AdminBrokerThread_N`), 16.
    pub admin_broker_thread_pool_nums: usize,
    /// clientManageThreadPoolNums (`ClientManageThread_N`), 32.
    pub client_manage_thread_pool_nums: usize,
    /// consumerManageThreadPoolNums (`ConsumerManageThread_N`), 32.
    pub consumer_manage_thread_pool_nums: usize,
    /// heartbeatThreadPoolNums (`HeartbeatThread_N`), min(32, cores).
    pub heartbeat_thread_pool_nums: usize,
    /// endTransactionThreadPoolNums (`EndTransactionThread_N`),
    /// max(8 + 2 * cores, 4 * the default sendMessageThreadPoolNums).
    pub end_transaction_thread_pool_nums: usize,
    /// sendThreadPoolQueueCapacity, 10,000.
    pub send_thread_pool_queue_capacity: usize,
    /// pullThreadPoolQueueCapacity, 100,000.
    pub pull_thread_pool_queue_capacity: usize,
    /// queryThreadPoolQueueCapacity, 20,000.
    pub query_thread_pool_queue_capacity: usize,
    /// adminBrokerThreadPoolQueueCapacity, 10,000. Not a key in Apache 4.9.8,
    /// whose admin pool has an unbounded queue; our pools are bounded, so we
    /// take the key and default of Apache 5.x.
    pub admin_broker_thread_pool_queue_capacity: usize,
    /// clientManagerThreadPoolQueueCapacity, 1,000,000.
    pub client_manager_thread_pool_queue_capacity: usize,
    /// consumerManagerThreadPoolQueueCapacity, 1,000,000. Apache 4.9.8 has the
    /// key but gives its consumer-manage pool an unbounded queue; we bound
    /// that pool's queue with it.
    pub consumer_manager_thread_pool_queue_capacity: usize,
    /// heartbeatThreadPoolQueueCapacity, 50,000.
    pub heartbeat_thread_pool_queue_capacity: usize,
    /// endTransactionPoolQueueCapacity, 100,000.
    pub end_transaction_pool_queue_capacity: usize,
    /// brokerFastFailureEnable, true: requests that waited in a pool's queue
    /// longer than the times below are answered SYSTEM_BUSY.
    pub broker_fast_failure_enable: bool,
    /// waitTimeMillsInSendQueue, 200 ms.
    pub wait_time_mills_in_send_queue: Duration,
    /// waitTimeMillsInPullQueue, 5 s.
    pub wait_time_mills_in_pull_queue: Duration,
    /// waitTimeMillsInHeartbeatQueue, 31 s.
    pub wait_time_mills_in_heartbeat_queue: Duration,
    /// waitTimeMillsInTransactionQueue, 3 s.
    pub wait_time_mills_in_transaction_queue: Duration,
    /// registerNameServerPeriod, 30 s. Apache clamps the period it uses to
    /// 10..60 s; `apply` clamps the value it stores the same way.
    pub register_name_server_period: Duration,
    /// registerBrokerTimeoutMills, 6 s: the deadline of one registration.
    pub register_broker_timeout_mills: Duration,
    /// flushConsumerOffsetInterval, 5 s (`apply` takes at least 1 ms).
    pub flush_consumer_offset_interval: Duration,
    /// channelExpiredTimeout, 120 s: a producer or consumer channel silent this
    /// long is dropped. A constant in Apache 4.9.8; the key is Apache 5.x's.
    pub channel_expired_timeout: Duration,
    /// The store's settings (MessageStoreConfig keys such as storePathRootDir,
    /// flushDiskType, messageDelayLevel, mappedFileSizeCommitLog).
    pub store: StoreConfig,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get())
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let cores = cores();
        let server = ServerConfig::default();
        let send_threads = cores.min(4);
        BrokerConfig {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            namesrv_addr: None,
            broker_ip1: "127.0.0.1".into(),
            listen_port: 10911,
            server_selector_threads: server.selector_threads,
            server_worker_threads: server.codec_threads,
            server_channel_max_idle_time: server.idle_timeout,
            auto_create_topic_enable: true,
            cluster_topic_enable: true,
            broker_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            broker_permission: 6,
            msg_trace_topic_name: "RMQ_SYS_TRACE_TOPIC".into(),
            trace_topic_enable: false,
            long_polling_enable: true,
            short_polling_time_mills: Duration::from_millis(1000),
            notify_consumer_ids_changed_enable: true,
            send_message_thread_pool_nums: send_threads,
            pull_message_thread_pool_nums: 16 + 2 * cores,
            query_message_thread_pool_nums: 8 + cores,
            admin_broker_thread_pool_nums: 16,
            client_manage_thread_pool_nums: 32,
            consumer_manage_thread_pool_nums: 32,
            heartbeat_thread_pool_nums: cores.min(32),
            end_transaction_thread_pool_nums: (8 + 2 * cores).max(4 * send_threads),
            send_thread_pool_queue_capacity: 10_000,
            pull_thread_pool_queue_capacity: 100_000,
            query_thread_pool_queue_capacity: 20_000,
            admin_broker_thread_pool_queue_capacity: 10_000,
            client_manager_thread_pool_queue_capacity: 1_000_000,
            consumer_manager_thread_pool_queue_capacity: 1_000_000,
            heartbeat_thread_pool_queue_capacity: 50_000,
            end_transaction_pool_queue_capacity: 100_000,
            broker_fast_failure_enable: true,
            wait_time_mills_in_send_queue: Duration::from_millis(200),
            wait_time_mills_in_pull_queue: Duration::from_secs(5),
            wait_time_mills_in_heartbeat_queue: Duration::from_secs(31),
            wait_time_mills_in_transaction_queue: Duration::from_secs(3),
            register_name_server_period: Duration::from_secs(30),
            register_broker_timeout_mills: Duration::from_secs(6),
            flush_consumer_offset_interval: Duration::from_secs(5),
            channel_expired_timeout: Duration::from_secs(120),
            store: StoreConfig::default(),
        }
    }
}

/// The smallest and largest registration period Apache uses.
const REGISTER_PERIOD_MIN: Duration = Duration::from_secs(10);
const REGISTER_PERIOD_MAX: Duration = Duration::from_secs(60);

impl BrokerConfig {
    /// Sets the setting named by its Apache key (as in `broker.conf`); store
    /// keys go to [`StoreConfig::apply`]. `Ok(false)`: a key we do not know;
    /// `Err`: a known key with a bad value, naming key, value and what was
    /// expected. Values are trimmed. Booleans are `true` or `false` in any
    /// case (Apache reads anything but `true` as false; we reject it).
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let v = value.trim();
        let bad = |what: &str| format!("{key}={value:?}: expected {what}");
        let flag = || {
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(bad("true or false"))
            }
        };
        let ms = || v.parse::<u64>().map(Duration::from_millis).map_err(|_| bad("milliseconds (a whole number)"));
        let threads = || match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad("a thread count of at least 1")),
        };
        let capacity = || match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad("a queue capacity of at least 1")),
        };
        let name = |what: &str| {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(bad(what))
            } else {
                Ok(v.to_string())
            }
        };
        match key {
            "brokerClusterName" => self.broker_cluster_name = name("a cluster name without spaces")?,
            "brokerName" => self.broker_name = name("a broker name without spaces")?,
            "brokerId" => {
                self.broker_id = v.parse().map_err(|_| bad("a broker id (0 for the master, 1.. for slaves)"))?
            }
            "namesrvAddr" => {
                let addrs = split_addrs(v);
                for addr in &addrs {
                    check_host_port(addr).map_err(|e| bad(&format!("host:port[;host:port...] ({e})")))?;
                }
                self.namesrv_addr = if addrs.is_empty() { None } else { Some(v.to_string()) };
            }
            "brokerIP1" => {
                if !is_host(v) {
                    return Err(bad("an IP address or host name"));
                }
                self.broker_ip1 = v.to_string()
            }
            "listenPort" => {
                self.listen_port = match v.parse::<u16>() {
                    Ok(p) if p >= 3 => p,
                    _ => return Err(bad("a port from 3 to 65535 (the VIP channel listens on listenPort - 2)")),
                }
            }
            "serverSelectorThreads" => self.server_selector_threads = threads()?,
            "serverWorkerThreads" => self.server_worker_threads = threads()?,
            "serverChannelMaxIdleTimeSeconds" => {
                self.server_channel_max_idle_time =
                    v.parse::<u64>().map(Duration::from_secs).map_err(|_| bad("seconds (a whole number)"))?
            }
            "autoCreateTopicEnable" => self.auto_create_topic_enable = flag()?,
            "clusterTopicEnable" => self.cluster_topic_enable = flag()?,
            "brokerTopicEnable" => self.broker_topic_enable = flag()?,
            "autoCreateSubscriptionGroup" => self.auto_create_subscription_group = flag()?,
            "defaultTopicQueueNums" => {
                self.default_topic_queue_nums = match v.parse::<u32>() {
                    Ok(n) if (1..=i32::MAX as u32).contains(&n) => n,
                    _ => return Err(bad("a queue count of at least 1")),
                }
            }
            "brokerPermission" => {
                self.broker_permission = match v.parse::<u32>() {
                    Ok(p) if p <= 15 => p,
                    _ => return Err(bad("permission bits from 0 to 15 (8 priority, 4 read, 2 write, 1 inherit)")),
                }
            }
            "msgTraceTopicName" => self.msg_trace_topic_name = name("a topic name")?,
            "traceTopicEnable" => self.trace_topic_enable = flag()?,
            "longPollingEnable" => self.long_polling_enable = flag()?,
            "shortPollingTimeMills" => self.short_polling_time_mills = ms()?,
            "notifyConsumerIdsChangedEnable" => self.notify_consumer_ids_changed_enable = flag()?,
            "sendMessageThreadPoolNums" => self.send_message_thread_pool_nums = threads()?,
            "pullMessageThreadPoolNums" => self.pull_message_thread_pool_nums = threads()?,
            "queryMessageThreadPoolNums" => self.query_message_thread_pool_nums = threads()?,
            "adminBrokerThreadPoolNums" => self.admin_broker_thread_pool_nums = threads()?,
            "clientManageThreadPoolNums" => self.client_manage_thread_pool_nums = threads()?,
            "consumerManageThreadPoolNums" => self.consumer_manage_thread_pool_nums = threads()?,
            "heartbeatThreadPoolNums" => self.heartbeat_thread_pool_nums = threads()?,
            "endTransactionThreadPoolNums" => self.end_transaction_thread_pool_nums = threads()?,
            "sendThreadPoolQueueCapacity" => self.send_thread_pool_queue_capacity = capacity()?,
            "pullThreadPoolQueueCapacity" => self.pull_thread_pool_queue_capacity = capacity()?,
            "queryThreadPoolQueueCapacity" => self.query_thread_pool_queue_capacity = capacity()?,
            "adminBrokerThreadPoolQueueCapacity" => self.admin_broker_thread_pool_queue_capacity = capacity()?,
            "clientManagerThreadPoolQueueCapacity" => self.client_manager_thread_pool_queue_capacity = capacity()?,
            "consumerManagerThreadPoolQueueCapacity" => self.consumer_manager_thread_pool_queue_capacity = capacity()?,
            "heartbeatThreadPoolQueueCapacity" => self.heartbeat_thread_pool_queue_capacity = capacity()?,
            "endTransactionPoolQueueCapacity" => self.end_transaction_pool_queue_capacity = capacity()?,
            "brokerFastFailureEnable" => self.broker_fast_failure_enable = flag()?,
            "waitTimeMillsInSendQueue" => self.wait_time_mills_in_send_queue = ms()?,
            "waitTimeMillsInPullQueue" => self.wait_time_mills_in_pull_queue = ms()?,
            "waitTimeMillsInHeartbeatQueue" => self.wait_time_mills_in_heartbeat_queue = ms()?,
            "waitTimeMillsInTransactionQueue" => self.wait_time_mills_in_transaction_queue = ms()?,
            "registerNameServerPeriod" => {
                self.register_name_server_period = ms()?.clamp(REGISTER_PERIOD_MIN, REGISTER_PERIOD_MAX)
            }
            "registerBrokerTimeoutMills" => self.register_broker_timeout_mills = ms()?,
            "flushConsumerOffsetInterval" => self.flush_consumer_offset_interval = ms()?.max(Duration::from_millis(1)),
            "channelExpiredTimeout" => self.channel_expired_timeout = ms()?,
            _ => return self.store.apply(key, value),
        }
        Ok(true)
    }

    /// Fills in what the environment supplies when nothing else set it:
    /// `namesrv_env` is the value of `NAMESRV_ADDR` (pass
    /// `std::env::var(NAMESRV_ADDR_ENV).ok()`), used when `namesrvAddr` is
    /// unset. A bad value is an error naming the variable.
    pub fn apply_env_defaults(&mut self, namesrv_env: Option<String>) -> Result<(), String> {
        if self.namesrv_addr.is_some() {
            return Ok(());
        }
        if let Some(env) = namesrv_env {
            self.apply("namesrvAddr", &env).map_err(|e| format!("environment variable {NAMESRV_ADDR_ENV}: {e}"))?;
        }
        Ok(())
    }

    /// Applies every `key=value` of a `.properties` text in order (later
    /// lines win). Returns a warning for each unknown key; an error names
    /// the line.
    pub fn apply_properties(&mut self, text: &str) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for (line, key, value) in parse_properties(text)? {
            match self.apply(&key, &value) {
                Ok(true) => {}
                Ok(false) => warnings.push(format!("line {line}: unknown key {key:?} ignored")),
                Err(e) => return Err(format!("line {line}: {e}")),
            }
        }
        Ok(warnings)
    }

    /// A config from a `broker.conf` text (defaults for what it does not
    /// set), with a warning for each unknown key. The environment is not
    /// consulted: see [`BrokerConfig::apply_env_defaults`].
    pub fn from_properties(text: &str) -> Result<(BrokerConfig, Vec<String>), String> {
        let mut config = BrokerConfig::default();
        let warnings = config.apply_properties(text)?;
        Ok((config, warnings))
    }

    /// Reads the file at `path`, then applies `overrides` (command-line
    /// `key=value`s, which win), then `NAMESRV_ADDR` from the environment if
    /// neither set `namesrvAddr`. Errors name the file (or the override).
    pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<(BrokerConfig, Vec<String>), String> {
        BrokerConfig::load_with_env(path, overrides, std::env::var(NAMESRV_ADDR_ENV).ok())
    }

    /// [`BrokerConfig::load`] with the value of `NAMESRV_ADDR` given
    /// explicitly instead of read from the environment.
    pub fn load_with_env(
        path: &Path,
        overrides: &[(String, String)],
        namesrv_env: Option<String>,
    ) -> Result<(BrokerConfig, Vec<String>), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (mut config, mut warnings) =
            BrokerConfig::from_properties(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (key, value) in overrides {
            match config.apply(key, value) {
                Ok(true) => {}
                Ok(false) => warnings.push(format!("command line: unknown key {key:?} ignored")),
                Err(e) => return Err(format!("command line: {e}")),
            }
        }
        config.apply_env_defaults(namesrv_env)?;
        Ok((config, warnings))
    }

    /// The address registered with the name servers: `brokerIP1:listenPort`
    /// (an IPv6 address without brackets, as Apache writes it).
    pub fn broker_addr(&self) -> String {
        format!("{}:{}", self.broker_ip1, self.listen_port)
    }

    /// The VIP channel's port: listenPort - 2.
    pub fn vip_port(&self) -> u16 {
        self.listen_port.saturating_sub(2)
    }

    /// The name server addresses: `namesrvAddr` split on `;`, trimmed,
    /// empties dropped.
    pub fn namesrv_addrs(&self) -> Vec<String> {
        self.namesrv_addr.as_deref().map(split_addrs).unwrap_or_default()
    }

    /// The highest delay level (the number of levels in the store's
    /// `messageDelayLevel`, 18 by default); 0 if that setting does not parse.
    pub fn max_delay_level(&self) -> usize {
        self.store.delay_levels().map_or(0, |levels| levels.len())
    }
}

/// Parses one command-line override `key=value` (both trimmed; the value may
/// be empty or contain `=`).
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
        _ => Err(format!("{s:?}: expected key=value")),
    }
}

fn split_addrs(s: &str) -> Vec<String> {
    s.split(';').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect()
}

fn is_host(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
        || (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
}

/// `host:port`, split at the last `:` as Apache does.
fn check_host_port(addr: &str) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} has no port"))?;
    if host.is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{addr:?} has a bad port")),
    }
}

/// Parses the Java `.properties` subset a `broker.conf` uses into
/// `(line number, key, value)` in file order. A key ends at the first
/// unescaped `=`, `:` or white space; then white space, at most one `=` or
/// `:`, and white space are skipped; the rest, trimmed, is the value. Lines
/// starting with `#` or `!` are comments; blank lines are skipped; a line
/// ending in an odd number of `\` continues on the next. Escapes: `\t`, `\n`,
/// `\r`, `\f`, `\uXXXX`, and `\` before any other character stands for that
/// character. A line without both a key and a separator is an error naming
/// its number (Java would take it as a key with an empty value).
pub fn parse_properties(text: &str) -> Result<Vec<(usize, String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let number = index + 1;
        let first = first.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_entry(&logical).ok_or_else(|| {
            format!("line {number}: expected key=value, key: value or key value, found {:?}", first.trim_end())
        })?;
        let key = unescape(key).map_err(|e| format!("line {number}: {e}"))?;
        let value = unescape(value).map_err(|e| format!("line {number}: {e}"))?;
        out.push((number, key, value.trim().to_string()));
    }
    Ok(out)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into its raw (still escaped) key and value.
fn split_entry(line: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    let mut key_end = None;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            key_end = Some(i);
            break;
        }
    }
    let key_end = key_end?;
    if key_end == 0 {
        return None;
    }
    let key = &line[..key_end];
    let rest = line[key_end..].trim_start();
    let rest = match rest.strip_prefix('=').or_else(|| rest.strip_prefix(':')) {
        Some(after) => after.trim_start(),
        None => {
            // Only white space separated key and value: a value must follow.
            if rest.is_empty() {
                return None;
            }
            rest
        }
    };
    Some((key, rest))
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut high_surrogate: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            if high_surrogate.is_some() {
                return Err(format!("unpaired \\u surrogate in {s:?}"));
            }
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        if e != 'u' && high_surrogate.is_some() {
            return Err(format!("unpaired \\u surrogate in {s:?}"));
        }
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 => unit,
                    _ => return Err(format!("bad \\u escape \\u{hex} in {s:?}")),
                };
                let units: Vec<u16> = match high_surrogate.take() {
                    Some(high) => vec![high, unit],
                    None if (0xD800..0xDC00).contains(&unit) => {
                        high_surrogate = Some(unit);
                        continue;
                    }
                    None => vec![unit],
                };
                for decoded in char::decode_utf16(units) {
                    out.push(decoded.map_err(|_| format!("unpaired \\u surrogate in {s:?}"))?);
                }
            }
            other => out.push(other),
        }
    }
    if high_surrogate.is_some() {
        return Err(format!("unpaired \\u surrogate in {s:?}"));
    }
    Ok(out)
}
