//! The broker's admin and query requests (RocketMQ: AdminBrokerProcessor).

use std::sync::Arc;

use crate::broker::controller::BrokerShared;
use crate::remoting::code::{request, response};
use crate::remoting::{Channel, RemotingCommand, RequestProcessor};

pub struct AdminBrokerProcessor(pub Arc<BrokerShared>);

impl RequestProcessor for AdminBrokerProcessor {
    fn process(&self, channel: &Channel, req: RemotingCommand) -> Option<RemotingCommand> {
        match req.code {
            request::LOCK_BATCH_MQ | request::UNLOCK_BATCH_MQ => {
                crate::broker::rebalance_lock::process(&self.0, channel, &req)
            }
            code => Some(RemotingCommand::response(
                response::REQUEST_CODE_NOT_SUPPORTED,
                Some(format!(" request type {code} not supported")),
            )),
        }
    }
}
