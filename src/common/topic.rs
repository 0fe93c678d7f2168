//! Topic and group names shared by broker and clients (RocketMQ:
//! TopicValidator and MixAll): system topics, retry / dead-letter topics of
//! a group, and the name checks.

/// The topic new topics are created from when a producer sends to an
/// unknown topic (RocketMQ: AUTO_CREATE_TOPIC_KEY_TOPIC).
pub const TBW102: &str = "TBW102";
/// RocketMQ: RMQ_SYS_SELF_TEST_TOPIC.
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
/// Delayed messages wait here (RocketMQ: RMQ_SYS_SCHEDULE_TOPIC).
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// RocketMQ: RMQ_SYS_OFFSET_MOVED_EVENT.
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";
/// RocketMQ: RMQ_SYS_BENCHMARK_TOPIC.
pub const BENCHMARK_TOPIC: &str = "BenchmarkTest";
/// The default message trace topic (RocketMQ: RMQ_SYS_TRACE_TOPIC).
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";
/// RocketMQ: RMQ_SYS_TRANS_HALF_TOPIC.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// RocketMQ: RMQ_SYS_TRANS_OP_HALF_TOPIC.
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// RocketMQ: RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC.
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// Topics starting with this are system topics (RocketMQ: SYSTEM_TOPIC_PREFIX).
pub const SYSTEM_TOPIC_PREFIX: &str = "rmq_sys_";
/// `<cluster>_REPLY_TOPIC` carries request-reply answers (RocketMQ: REPLY_TOPIC_POSTFIX).
pub const REPLY_TOPIC_POSTFIX: &str = "REPLY_TOPIC";
/// RocketMQ: MixAll.RETRY_GROUP_TOPIC_PREFIX.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// RocketMQ: MixAll.DLQ_GROUP_TOPIC_PREFIX.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// The longest valid topic name, in characters (RocketMQ: TOPIC_MAX_LENGTH).
pub const TOPIC_MAX_LENGTH: usize = 127;
/// Queues of [`SCHEDULE_TOPIC`], one per delay level.
pub const SCHEDULE_TOPIC_QUEUE_NUM: i32 = 18;

/// The fixed system topics (RocketMQ: TopicValidator's SYSTEM_TOPIC_SET
/// before a broker adds its own).
pub const SYSTEM_TOPICS: [&str; 9] = [
    TBW102,
    SCHEDULE_TOPIC,
    BENCHMARK_TOPIC,
    TRANS_HALF_TOPIC,
    TRACE_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Topics no client may send to (RocketMQ: NOT_ALLOWED_SEND_TOPIC_SET).
pub const NOT_ALLOWED_SEND_TOPICS: [&str; 6] = [
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// The retry topic of a consumer group (RocketMQ: MixAll.getRetryTopic).
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// The dead-letter topic of a consumer group (RocketMQ: MixAll.getDLQTopic).
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// The reply topic of a cluster (RocketMQ: MixAll.getReplyTopic).
pub fn reply_topic(cluster_name: &str) -> String {
    format!("{cluster_name}_{REPLY_TOPIC_POSTFIX}")
}

/// True when a character outside `[%|a-zA-Z0-9_-]` occurs (RocketMQ:
/// TopicValidator.isTopicOrGroupIllegal; also used for group names).
pub fn is_topic_or_group_illegal(name: &str) -> bool {
    !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// The topic-name check of SEND_MESSAGE and UPDATE_AND_CREATE_TOPIC
/// (RocketMQ: TopicValidator.validateTopic): not blank, only
/// `[%|a-zA-Z0-9_-]`, at most 127 characters. The error is the remark Apache
/// answers with (code SYSTEM_ERROR). Reserved names are not refused here:
/// see [`check_send_allowed`] and [`TopicConfigManager::check_not_system`].
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.trim().is_empty() {
        return Err("The specified topic is blank.".into());
    }
    if is_topic_or_group_illegal(topic) {
        return Err("The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$".into());
    }
    // Only ASCII is left, so bytes are characters.
    if topic.len() > TOPIC_MAX_LENGTH {
        return Err("The specified topic is longer than topic max length.".into());
    }
    Ok(())
}

/// True for topics clients may not send to (RocketMQ:
/// TopicValidator.isNotAllowedSendTopic): the schedule, transaction,
/// self-test and offset-moved topics.
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    NOT_ALLOWED_SEND_TOPICS.contains(&topic)
}

/// The send-side reserved-name check; the error is Apache's remark, answered
/// with code NO_PERMISSION.
pub fn check_send_allowed(topic: &str) -> Result<(), String> {
    if is_not_allowed_send_topic(topic) {
        return Err(format!("Sending message to topic[{topic}] is forbidden."));
    }
    Ok(())
}
