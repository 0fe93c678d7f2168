//! The requests brokers send to a client (RocketMQ: ClientRemotingProcessor):
//! NOTIFY_CONSUMER_IDS_CHANGED wakes the rebalance, GET_CONSUMER_RUNNING_INFO
//! reports a consumer's state (with our thread dump when asked for a jstack),
//! CONSUME_MESSAGE_DIRECTLY hands a message to a listener, and
//! RESET_CONSUMER_CLIENT_OFFSET moves a consumer's offsets.

use std::sync::{Arc, Weak};

use crate::client::instance::ClientInstance;
use crate::common::message;
use crate::remoting::body::{ConsumeMessageDirectlyResult, OffsetTable};
use crate::remoting::code::{request, response};
use crate::remoting::connection::Channel;
use crate::remoting::headers::{
    ConsumeMessageDirectlyResultRequestHeader, GetConsumerRunningInfoRequestHeader,
    NotifyConsumerIdsChangedRequestHeader, ResetOffsetRequestHeader,
};
use crate::remoting::json::to_body;
use crate::remoting::{RemotingCommand, RequestProcessor};

/// Registers the client-side processors of `instance` on its remoting client.
pub fn register(instance: &Arc<ClientInstance>) {
    let p: Arc<dyn RequestProcessor> = Arc::new(ClientProcessor(Arc::downgrade(instance)));
    for code in [
        request::NOTIFY_CONSUMER_IDS_CHANGED,
        request::GET_CONSUMER_RUNNING_INFO,
        request::CONSUME_MESSAGE_DIRECTLY,
        request::RESET_CONSUMER_CLIENT_OFFSET,
    ] {
        instance.remoting().register_processor(code, p.clone());
    }
}

struct ClientProcessor(Weak<ClientInstance>);

impl RequestProcessor for ClientProcessor {
    fn process(&self, _channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        let Some(inst) = self.0.upgrade() else {
            return Some(RemotingCommand::error(response::SYSTEM_ERROR, "the client is shutting down"));
        };
        match req.code {
            request::NOTIFY_CONSUMER_IDS_CHANGED => {
                let h: NotifyConsumerIdsChangedRequestHeader = crate::header_or_answer!(req);
                log::info!("the broker says the consumers of {} changed; rebalancing", h.consumer_group);
                inst.rebalance_immediately();
                None
            }
            request::GET_CONSUMER_RUNNING_INFO => Some(running_info(&inst, &req)),
            request::CONSUME_MESSAGE_DIRECTLY => Some(consume_directly(&inst, &req)),
            request::RESET_CONSUMER_CLIENT_OFFSET => {
                let h: ResetOffsetRequestHeader = crate::header_or_answer!(req);
                match OffsetTable::decode(&req.body.bytes()) {
                    Ok(t) => match inst.select_consumer(&h.group) {
                        Some(c) => c.reset_offset(&h.topic, &t.offset_table.into_iter().collect()),
                        None => log::warn!("reset offset for unknown group {}", h.group),
                    },
                    Err(e) => log::warn!("undecodable reset offset body: {e}"),
                }
                None
            }
            code => Some(RemotingCommand::error(
                response::REQUEST_CODE_NOT_SUPPORTED,
                format!("the client does not support request code {code}"),
            )),
        }
    }
}

fn running_info(inst: &ClientInstance, req: &RemotingCommand) -> RemotingCommand {
    let h: GetConsumerRunningInfoRequestHeader = crate::header_or_answer!(req);
    let Some(c) = inst.select_consumer(&h.consumer_group) else {
        return RemotingCommand::error(
            response::SYSTEM_ERROR,
            format!("The Consumer Group <{}> not exist in this consumer", h.consumer_group),
        );
    };
    let mut info = c.running_info();
    if h.jstack_enable == Some(true) {
        info.jstack = Some(crate::common::thread_dump());
    }
    RemotingCommand::success().with_body(info.encode())
}

fn consume_directly(inst: &ClientInstance, req: &RemotingCommand) -> RemotingCommand {
    let h: ConsumeMessageDirectlyResultRequestHeader = crate::header_or_answer!(req);
    let msg = match message::decode(&req.body.bytes(), true, false) {
        Ok(m) => m,
        Err(e) => return RemotingCommand::error(response::SYSTEM_ERROR, format!("undecodable message: {e}")),
    };
    let result =
        inst.select_consumer(&h.consumer_group).and_then(|c| c.consume_message_directly(msg, h.broker_name.as_deref()));
    match result {
        Some(r) => RemotingCommand::success().with_body(to_body(&ConsumeMessageDirectlyResult {
            auto_commit: r.auto_commit,
            consume_result: r.status.name().into(),
            order: r.order,
            remark: r.remark,
            spent_time_mills: r.spent_time_mills,
        })),
        None => RemotingCommand::error(
            response::SYSTEM_ERROR,
            format!("The Consumer Group <{}> not exist in this consumer", h.consumer_group),
        ),
    }
}
