//! Client settings shared by producers and consumers (RocketMQ:
//! ClientConfig). The client id `ip@instanceName` picks the shared client
//! instance: producers and consumers with the same id share its threads.

use std::time::Duration;

use crate::remoting::SerializeType;

/// The instance name that means "use the process id" (RocketMQ: "DEFAULT").
pub const DEFAULT_INSTANCE_NAME: &str = "DEFAULT";

#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// namesrvAddr: `;`-separated name servers; `NAMESRV_ADDR` when unset.
    pub namesrv_addr: Option<String>,
    /// clientIP: the address put in the client id (Apache picks a local
    /// non-loopback address; we default to loopback, set it for real networks).
    pub client_ip: String,
    /// instanceName: "DEFAULT" becomes the process id (Apache 4.9 appends
    /// `#<nanotime>`; one id per process is what lets every producer and
    /// consumer of the process share one client instance).
    pub instance_name: String,
    /// unitName: appended to the client id when set.
    pub unit_name: Option<String>,
    /// clientCallbackExecutorThreads: `NettyClientPublicExecutor_N`, cores.
    pub callback_threads: usize,
    /// pollNameServerInterval, 30 s.
    pub poll_name_server_interval: Duration,
    /// heartbeatBrokerInterval, 30 s.
    pub heartbeat_broker_interval: Duration,
    /// persistConsumerOffsetInterval, 5 s.
    pub persist_consumer_offset_interval: Duration,
    /// pullTimeDelayMillsWhenException, 1 s.
    pub pull_time_delay_when_exception: Duration,
    /// vipChannelEnabled: send to the broker's port - 2 (false, as Apache 4.9).
    pub vip_channel_enabled: bool,
    /// mqClientApiTimeout, 3 s.
    pub api_timeout: Duration,
    /// The header form requests use (Apache's Java client: JSON).
    pub serialize_type: SerializeType,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addr: None,
            client_ip: "127.0.0.1".into(),
            instance_name: DEFAULT_INSTANCE_NAME.into(),
            unit_name: None,
            callback_threads: std::thread::available_parallelism().map_or(4, |n| n.get()),
            poll_name_server_interval: Duration::from_secs(30),
            heartbeat_broker_interval: Duration::from_secs(30),
            persist_consumer_offset_interval: Duration::from_secs(5),
            pull_time_delay_when_exception: Duration::from_secs(1),
            vip_channel_enabled: false,
            api_timeout: Duration::from_secs(3),
            serialize_type: SerializeType::Json,
        }
    }
}

impl ClientConfig {
    /// The name servers: the setting, else `env_namesrv` (the value of
    /// `NAMESRV_ADDR`), split on `;`.
    pub fn namesrv_addrs(&self, env_namesrv: Option<&str>) -> Vec<String> {
        self.namesrv_addr
            .as_deref()
            .or(env_namesrv)
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// The instance name actually used: the process id for "DEFAULT".
    pub fn effective_instance_name(&self) -> String {
        if self.instance_name == DEFAULT_INSTANCE_NAME {
            std::process::id().to_string()
        } else {
            self.instance_name.clone()
        }
    }

    /// RocketMQ: buildMQClientId — `ip@instanceName[@unitName]`.
    pub fn client_id(&self) -> String {
        let mut id = format!("{}@{}", self.client_ip, self.effective_instance_name());
        if let Some(u) = self.unit_name.as_deref().filter(|u| !u.is_empty()) {
            id.push('@');
            id.push_str(u);
        }
        id
    }

    /// The VIP address of a broker (port - 2) when the VIP channel is on.
    pub fn broker_addr_for_send(&self, addr: String) -> String {
        if !self.vip_channel_enabled {
            return addr;
        }
        match addr.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?))) {
            Some((host, port)) if port > 2 => format!("{host}:{}", port - 2),
            _ => addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_namesrv_and_vip_addresses() {
        let c = ClientConfig::default();
        assert_eq!(c.client_id(), format!("127.0.0.1@{}", std::process::id()));
        let named = ClientConfig { instance_name: "orders".into(), unit_name: Some("u1".into()), ..c.clone() };
        assert_eq!(named.client_id(), "127.0.0.1@orders@u1");
        assert_eq!(c.namesrv_addrs(Some("a:9876; b:9876;")), vec!["a:9876", "b:9876"]);
        let set = ClientConfig { namesrv_addr: Some("x:1".into()), ..c.clone() };
        assert_eq!(set.namesrv_addrs(Some("a:9876")), vec!["x:1"], "the setting wins over the environment");
        assert_eq!(c.broker_addr_for_send("127.0.0.1:10911".into()), "127.0.0.1:10911");
        let vip = ClientConfig { vip_channel_enabled: true, ..c };
        assert_eq!(vip.broker_addr_for_send("127.0.0.1:10911".into()), "127.0.0.1:10909");
    }
}
