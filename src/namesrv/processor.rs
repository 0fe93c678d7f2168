//! The name server's request processor (RocketMQ: DefaultRequestProcessor).

use std::sync::Arc;

use crate::remoting::body::{KvTable, RegisterBrokerBody};
use crate::remoting::code::{request, response};
use crate::remoting::headers::*;
use crate::remoting::json::{from_body, to_body};
use crate::remoting::{Channel, RemotingCommand, RequestProcessor};

use super::kv::{KvConfigManager, NAMESPACE_ORDER_TOPIC_CONFIG};
use super::route::{Registration, RouteInfoManager};

/// The remark Apache adds to TOPIC_NOT_EXIST (RocketMQ: FAQUrl.suggestTodo).
const FAQ_SUFFIX: &str = "\nSee http://rocketmq.apache.org/docs/faq/ for further details.";

pub struct NamesrvProcessor {
    pub routes: Arc<RouteInfoManager>,
    pub kv: Arc<KvConfigManager>,
}

impl RequestProcessor for NamesrvProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        Some(match req.code {
            request::PUT_KV_CONFIG => self.put_kv(&req),
            request::GET_KV_CONFIG => self.get_kv(&req),
            request::DELETE_KV_CONFIG => self.delete_kv(&req),
            request::GET_KVLIST_BY_NAMESPACE => self.kv_list(&req),
            request::REGISTER_BROKER => self.register_broker(channel, &req),
            request::UNREGISTER_BROKER => self.unregister_broker(&req),
            request::GET_ROUTEINFO_BY_TOPIC => self.route(&req),
            request::GET_BROKER_CLUSTER_INFO => {
                RemotingCommand::success().with_body(to_body(&self.routes.cluster_info()))
            }
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
                RemotingCommand::success().with_body(to_body(&self.routes.all_topics()))
            }
            request::DELETE_TOPIC_IN_NAMESRV => self.delete_topic(&req),
            request::GET_TOPICS_BY_CLUSTER => self.topics_by_cluster(&req),
            code => RemotingCommand::error(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!(" request type {code} not supported"),
            ),
        })
    }
}

impl NamesrvProcessor {
    fn put_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: PutKvConfigRequestHeader = crate::header_or_answer!(req);
        match self.kv.put(&h.namespace, &h.key, &h.value) {
            Ok(()) => RemotingCommand::success(),
            Err(e) => RemotingCommand::error(response::SYSTEM_ERROR, format!("cannot save the KV config: {e}")),
        }
    }

    fn get_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: KvConfigKeyRequestHeader = crate::header_or_answer!(req);
        match self.kv.get(&h.namespace, &h.key) {
            Some(value) => RemotingCommand::success_with(&GetKvConfigResponseHeader { value: Some(value) }),
            None => RemotingCommand::error(
                response::QUERY_NOT_FOUND,
                format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
            ),
        }
    }

    fn delete_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: KvConfigKeyRequestHeader = crate::header_or_answer!(req);
        match self.kv.delete(&h.namespace, &h.key) {
            Ok(()) => RemotingCommand::success(),
            Err(e) => RemotingCommand::error(response::SYSTEM_ERROR, format!("cannot save the KV config: {e}")),
        }
    }

    fn kv_list(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: GetKvListByNamespaceRequestHeader = crate::header_or_answer!(req);
        match self.kv.list(&h.namespace) {
            Some(table) => RemotingCommand::success().with_body(to_body(&KvTable { table })),
            None => {
                RemotingCommand::error(response::QUERY_NOT_FOUND, format!("No config item, Namespace: {}", h.namespace))
            }
        }
    }

    fn register_broker(&self, channel: &Channel, req: &RemotingCommand) -> RemotingCommand {
        let h: RegisterBrokerRequestHeader = crate::header_or_answer!(req);
        let body = req.body.bytes();
        if let Some(crc) = h.body_crc32.filter(|c| *c != 0)
            && crate::common::message::body_crc(&body) != crc
        {
            return RemotingCommand::error(response::SYSTEM_ERROR, "crc32 not match");
        }
        if h.compressed == Some(true) {
            return RemotingCommand::error(
                response::SYSTEM_ERROR,
                "compressed register bodies are not supported; send compressed=false",
            );
        }
        let parsed = if body.is_empty() {
            None
        } else {
            match from_body::<RegisterBrokerBody>(&body) {
                Ok(b) => Some(b),
                Err(e) => {
                    return RemotingCommand::error(
                        response::SYSTEM_ERROR,
                        format!("Failed to decode RegisterBrokerBody: {e}"),
                    );
                }
            }
        };
        let result = self.routes.register_broker(Registration {
            cluster: &h.cluster_name,
            broker_addr: &h.broker_addr,
            broker_name: &h.broker_name,
            broker_id: h.broker_id,
            ha_server_addr: &h.ha_server_addr,
            topics: parsed.as_ref().map(|b| &b.topic_config_serialize_wrapper),
            filter_servers: parsed.as_ref().map(|b| b.filter_server_list.clone()).unwrap_or_default(),
            channel: Some(channel.clone()),
        });
        let mut resp = RemotingCommand::success_with(&RegisterBrokerResponseHeader {
            ha_server_addr: result.ha_server_addr,
            master_addr: result.master_addr,
        });
        if let Some(table) = self.kv.list(NAMESPACE_ORDER_TOPIC_CONFIG) {
            resp = resp.with_body(to_body(&KvTable { table }));
        }
        resp
    }

    fn unregister_broker(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: UnregisterBrokerRequestHeader = crate::header_or_answer!(req);
        self.routes.unregister_broker(&h.cluster_name, &h.broker_addr, &h.broker_name, h.broker_id);
        RemotingCommand::success()
    }

    fn route(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: GetRouteInfoRequestHeader = crate::header_or_answer!(req);
        match self.routes.pick_topic_route_data(&h.topic) {
            Some(mut route) => {
                route.order_topic_conf = self.kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, &h.topic);
                RemotingCommand::success().with_body(to_body(&route))
            }
            None => RemotingCommand::error(
                response::TOPIC_NOT_EXIST,
                format!("No topic route info in name server for the topic: {}{FAQ_SUFFIX}", h.topic),
            ),
        }
    }

    fn delete_topic(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: DeleteTopicFromNamesrvRequestHeader = crate::header_or_answer!(req);
        self.routes.delete_topic(&h.topic, h.cluster_name.as_deref().filter(|c| !c.is_empty()));
        RemotingCommand::success()
    }

    fn topics_by_cluster(&self, req: &RemotingCommand) -> RemotingCommand {
        let h: GetTopicsByClusterRequestHeader = crate::header_or_answer!(req);
        RemotingCommand::success().with_body(to_body(&self.routes.topics_by_cluster(&h.cluster)))
    }
}
