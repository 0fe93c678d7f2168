//! Queue locks for orderly consumption (RocketMQ: RebalanceLockManager).

use crate::broker::controller::BrokerShared;
use crate::remoting::code::response;
use crate::remoting::{Channel, RemotingCommand};

/// Answers LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
pub fn process(_b: &BrokerShared, _channel: &Channel, req: &RemotingCommand) -> Option<RemotingCommand> {
    Some(RemotingCommand::response(
        response::REQUEST_CODE_NOT_SUPPORTED,
        Some(format!(" request type {} not supported", req.code)),
    ))
}
