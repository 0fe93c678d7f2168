//! Apache RocketMQ's request and response headers, field names as on the wire.

use crate::command_header;

command_header! {
    /// SEND_MESSAGE (10). RocketMQ: SendMessageRequestHeader
    pub struct SendMessageRequestHeader {
        producer_group: String = "producerGroup",
        topic: String = "topic",
        default_topic: String = "defaultTopic",
        default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        queue_id: i32 = "queueId",
        sys_flag: i32 = "sysFlag",
        born_timestamp: i64 = "bornTimestamp",
        flag: i32 = "flag",
        properties: Option<String> = "properties",
        reconsume_times: Option<i32> = "reconsumeTimes",
        unit_mode: Option<bool> = "unitMode",
        batch: Option<bool> = "batch",
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
    }

    /// SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320): the same fields
    /// under one-letter names. RocketMQ: SendMessageRequestHeaderV2
    pub struct SendMessageRequestHeaderV2 {
        producer_group: String = "a",
        topic: String = "b",
        default_topic: String = "c",
        default_topic_queue_nums: i32 = "d",
        queue_id: i32 = "e",
        sys_flag: i32 = "f",
        born_timestamp: i64 = "g",
        flag: i32 = "h",
        properties: Option<String> = "i",
        reconsume_times: Option<i32> = "j",
        unit_mode: Option<bool> = "k",
        max_reconsume_times: Option<i32> = "l",
        batch: Option<bool> = "m",
        broker_name: Option<String> = "n",
    }

    /// RocketMQ: SendMessageResponseHeader
    pub struct SendMessageResponseHeader {
        msg_id: String = "msgId",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        transaction_id: Option<String> = "transactionId",
    }

    /// PULL_MESSAGE (11). RocketMQ: PullMessageRequestHeader
    pub struct PullMessageRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        queue_offset: i64 = "queueOffset",
        max_msg_nums: i32 = "maxMsgNums",
        sys_flag: i32 = "sysFlag",
        commit_offset: i64 = "commitOffset",
        suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        subscription: Option<String> = "subscription",
        sub_version: i64 = "subVersion",
        expression_type: Option<String> = "expressionType",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// RocketMQ: PullMessageResponseHeader
    pub struct PullMessageResponseHeader {
        suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        next_begin_offset: i64 = "nextBeginOffset",
        min_offset: i64 = "minOffset",
        max_offset: i64 = "maxOffset",
    }

    /// QUERY_CONSUMER_OFFSET (14). RocketMQ: QueryConsumerOffsetRequestHeader
    pub struct QueryConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// RocketMQ: QueryConsumerOffsetResponseHeader
    pub struct QueryConsumerOffsetResponseHeader {
        offset: i64 = "offset",
    }

    /// UPDATE_CONSUMER_OFFSET (15). RocketMQ: UpdateConsumerOffsetRequestHeader
    pub struct UpdateConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        commit_offset: i64 = "commitOffset",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// UNREGISTER_CLIENT (35). RocketMQ: UnregisterClientRequestHeader
    pub struct UnregisterClientRequestHeader {
        client_id: String = "clientID",
        producer_group: Option<String> = "producerGroup",
        consumer_group: Option<String> = "consumerGroup",
    }

    /// CONSUMER_SEND_MSG_BACK (36). RocketMQ: ConsumerSendMsgBackRequestHeader
    pub struct ConsumerSendMsgBackRequestHeader {
        offset: i64 = "offset",
        group: String = "group",
        delay_level: i32 = "delayLevel",
        origin_msg_id: Option<String> = "originMsgId",
        origin_topic: Option<String> = "originTopic",
        unit_mode: Option<bool> = "unitMode",
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// GET_CONSUMER_LIST_BY_GROUP (38). RocketMQ: GetConsumerListByGroupRequestHeader
    pub struct GetConsumerListByGroupRequestHeader {
        consumer_group: String = "consumerGroup",
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED (40). RocketMQ: NotifyConsumerIdsChangedRequestHeader
    pub struct NotifyConsumerIdsChangedRequestHeader {
        consumer_group: String = "consumerGroup",
    }

    /// PUT_KV_CONFIG (100). RocketMQ: PutKVConfigRequestHeader
    pub struct PutKvConfigRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
        value: String = "value",
    }

    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102).
    /// RocketMQ: GetKVConfigRequestHeader, DeleteKVConfigRequestHeader
    pub struct KvConfigKeyRequestHeader {
        namespace: String = "namespace",
        key: String = "key",
    }

    /// RocketMQ: GetKVConfigResponseHeader
    pub struct GetKvConfigResponseHeader {
        value: Option<String> = "value",
    }

    /// GET_KVLIST_BY_NAMESPACE (219). RocketMQ: GetKVListByNamespaceRequestHeader
    pub struct GetKvListByNamespaceRequestHeader {
        namespace: String = "namespace",
    }

    /// REGISTER_BROKER (103). RocketMQ: RegisterBrokerRequestHeader
    pub struct RegisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        ha_server_addr: String = "haServerAddr",
        broker_id: i64 = "brokerId",
        compressed: Option<bool> = "compressed",
        body_crc32: Option<i32> = "bodyCrc32",
    }

    /// RocketMQ: RegisterBrokerResponseHeader
    pub struct RegisterBrokerResponseHeader {
        ha_server_addr: Option<String> = "haServerAddr",
        master_addr: Option<String> = "masterAddr",
    }

    /// UNREGISTER_BROKER (104). RocketMQ: UnRegisterBrokerRequestHeader
    pub struct UnregisterBrokerRequestHeader {
        broker_name: String = "brokerName",
        broker_addr: String = "brokerAddr",
        cluster_name: String = "clusterName",
        broker_id: i64 = "brokerId",
    }

    /// DELETE_TOPIC_IN_NAMESRV (216). RocketMQ: DeleteTopicFromNamesrvRequestHeader
    pub struct DeleteTopicFromNamesrvRequestHeader {
        topic: String = "topic",
        cluster_name: Option<String> = "clusterName",
    }

    /// GET_TOPICS_BY_CLUSTER (224). RocketMQ: GetTopicsByClusterRequestHeader
    pub struct GetTopicsByClusterRequestHeader {
        cluster: String = "cluster",
    }

    /// GET_ROUTEINFO_BY_TOPIC (105). RocketMQ: GetRouteInfoRequestHeader
    pub struct GetRouteInfoRequestHeader {
        topic: String = "topic",
        accept_standard_json_only: Option<bool> = "acceptStandardJsonOnly",
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v: SendMessageRequestHeaderV2) -> Self {
        SendMessageRequestHeader {
            producer_group: v.producer_group,
            topic: v.topic,
            default_topic: v.default_topic,
            default_topic_queue_nums: v.default_topic_queue_nums,
            queue_id: v.queue_id,
            sys_flag: v.sys_flag,
            born_timestamp: v.born_timestamp,
            flag: v.flag,
            properties: v.properties,
            reconsume_times: v.reconsume_times,
            unit_mode: v.unit_mode,
            batch: v.batch,
            max_reconsume_times: v.max_reconsume_times,
        }
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v: SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2 {
            producer_group: v.producer_group,
            topic: v.topic,
            default_topic: v.default_topic,
            default_topic_queue_nums: v.default_topic_queue_nums,
            queue_id: v.queue_id,
            sys_flag: v.sys_flag,
            born_timestamp: v.born_timestamp,
            flag: v.flag,
            properties: v.properties,
            reconsume_times: v.reconsume_times,
            unit_mode: v.unit_mode,
            max_reconsume_times: v.max_reconsume_times,
            batch: v.batch,
            broker_name: None,
        }
    }
}

command_header! {
    /// UPDATE_AND_CREATE_TOPIC (17). RocketMQ: CreateTopicRequestHeader
    pub struct CreateTopicRequestHeader {
        topic: String = "topic",
        default_topic: String = "defaultTopic",
        read_queue_nums: i32 = "readQueueNums",
        write_queue_nums: i32 = "writeQueueNums",
        perm: i32 = "perm",
        topic_filter_type: String = "topicFilterType",
        topic_sys_flag: Option<i32> = "topicSysFlag",
        order: bool = "order",
    }

    /// DELETE_TOPIC_IN_BROKER (215). RocketMQ: DeleteTopicRequestHeader
    pub struct DeleteTopicRequestHeader {
        topic: String = "topic",
    }

    /// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME
    /// (32). RocketMQ: GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader,
    /// GetEarliestMsgStoretimeRequestHeader
    pub struct QueueRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// GET_MAX_OFFSET, GET_MIN_OFFSET and SEARCH_OFFSET_BY_TIMESTAMP replies.
    /// RocketMQ: GetMaxOffsetResponseHeader, GetMinOffsetResponseHeader,
    /// SearchOffsetResponseHeader
    pub struct OffsetResponseHeader {
        offset: i64 = "offset",
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (29). RocketMQ: SearchOffsetRequestHeader
    pub struct SearchOffsetRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
        timestamp: i64 = "timestamp",
        /// The broker name (sent by Apache 4.9.8 clients; brokers ignore it).
        bname: Option<String> = "bname",
    }

    /// RocketMQ: GetEarliestMsgStoretimeResponseHeader
    pub struct GetEarliestMsgStoretimeResponseHeader {
        timestamp: i64 = "timestamp",
    }

    /// VIEW_MESSAGE_BY_ID (33): `offset` is a CommitLog offset.
    /// RocketMQ: ViewMessageRequestHeader
    pub struct ViewMessageRequestHeader {
        offset: i64 = "offset",
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO (300) and GET_TOPIC_STATS_INFO (202).
    /// RocketMQ: QueryTopicConsumeByWhoRequestHeader, GetTopicStatsInfoRequestHeader
    pub struct TopicRequestHeader {
        topic: String = "topic",
    }

    /// GET_CONSUMER_CONNECTION_LIST (203). RocketMQ: GetConsumerConnectionListRequestHeader
    pub struct GetConsumerConnectionListRequestHeader {
        consumer_group: String = "consumerGroup",
    }

    /// GET_CONSUME_STATS (208). RocketMQ: GetConsumeStatsRequestHeader
    pub struct GetConsumeStatsRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: Option<String> = "topic",
    }

    /// GET_CONSUMER_RUNNING_INFO (307). RocketMQ: GetConsumerRunningInfoRequestHeader
    pub struct GetConsumerRunningInfoRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: String = "clientId",
        jstack_enable: Option<bool> = "jstackEnable",
    }

    /// RESET_CONSUMER_CLIENT_OFFSET (220), sent by a broker to a consumer.
    /// RocketMQ: ResetOffsetRequestHeader
    pub struct ResetOffsetRequestHeader {
        topic: String = "topic",
        group: String = "group",
        timestamp: i64 = "timestamp",
        is_force: bool = "isForce",
    }

    /// CONSUME_MESSAGE_DIRECTLY (309). RocketMQ: ConsumeMessageDirectlyResultRequestHeader
    pub struct ConsumeMessageDirectlyResultRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: Option<String> = "clientId",
        msg_id: Option<String> = "msgId",
        broker_name: Option<String> = "brokerName",
    }
}
