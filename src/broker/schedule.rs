//! Delayed messages (RocketMQ: ScheduleMessageService). A message with a
//! delay level is stored in `SCHEDULE_TOPIC_XXXX`, queue `level - 1`, with its
//! real topic and queue in properties; its ConsumeQueue unit carries the
//! delivery time. `ScheduleMessageTimerThread` moves each message back to its
//! real topic and queue when due. Progress per level is kept in
//! `config/delayOffset.json` (`{"offsetTable":{"1":12,...}}`), persisted every
//! 10 s and at shutdown, so a clean restart neither loses nor repeats them.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::common::file::{read_parsed_with_backup, write_atomically};
use crate::common::message::{self, MessageToStore, property};
use crate::common::time::now_millis;
use crate::common::{ScheduledExecutor, thread};
use crate::store::message_store::SCHEDULE_TOPIC;
use crate::store::{GetMessageResult, MessageStore};

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DelayOffsetTable {
    pub offset_table: BTreeMap<i32, i64>,
}

/// Moves a message with delay level `level` (> 0) into the schedule topic,
/// keeping its real topic and queue (RocketMQ does this in CommitLog.putMessage).
pub fn to_schedule_topic(m: &mut MessageToStore, level: i32, max_level: i32) {
    let level = level.min(max_level).max(1);
    let mut props = message::string_to_properties(&m.properties);
    props.insert(property::REAL_TOPIC, m.topic.clone());
    props.insert(property::REAL_QID, m.queue_id.to_string());
    props.insert(property::DELAY, level.to_string());
    m.properties = message::properties_to_string(&props);
    m.topic = SCHEDULE_TOPIC.to_string();
    m.queue_id = level - 1;
}

pub struct ScheduleMessageService {
    offsets: Arc<Mutex<DelayOffsetTable>>,
    path: PathBuf,
    timer: ScheduledExecutor,
}

impl ScheduleMessageService {
    pub fn start(store: Arc<MessageStore>, path: PathBuf, levels: usize) -> io::Result<Self> {
        let table: DelayOffsetTable =
            read_parsed_with_backup(&path, crate::remoting::json::from_body)?.unwrap_or_default();
        let offsets = Arc::new(Mutex::new(table));
        let timer = ScheduledExecutor::new("ScheduleMessageTimerThread", "broker")?;
        let (o, s) = (offsets.clone(), store.clone());
        timer.schedule_with_fixed_delay(Duration::from_millis(100), Duration::from_millis(100), move || {
            thread::doing("delivering due delayed messages");
            for level in 1..=levels as i32 {
                deliver_due(&s, &o, level);
            }
        });
        let (o, p) = (offsets.clone(), path.clone());
        timer.schedule_at_fixed_rate(Duration::from_secs(10), Duration::from_secs(10), move || {
            if let Err(e) = persist(&o, &p) {
                log::error!("cannot persist delay offsets: {e}");
            }
        });
        Ok(ScheduleMessageService { offsets, path, timer })
    }

    /// Progress per level (GET_ALL_DELAY_OFFSET).
    pub fn offsets_json(&self) -> Vec<u8> {
        crate::remoting::json::to_body(&*self.offsets.lock())
    }

    pub fn shutdown(&self) {
        self.timer.shutdown();
        if let Err(e) = persist(&self.offsets, &self.path) {
            log::error!("cannot persist delay offsets: {e}");
        }
    }
}

fn persist(offsets: &Mutex<DelayOffsetTable>, path: &std::path::Path) -> io::Result<()> {
    let body = crate::remoting::json::to_body(&*offsets.lock());
    write_atomically(path, &body)
}

/// What one read of a level's queue at `offset` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The message at queue offset `at` (after `offset` when the ones
    /// between are gone) is the next one to deliver when due.
    Deliver { at: i64 },
    /// Nothing to deliver below `to`: their CommitLog records were cleaned.
    Skip { to: i64 },
    /// Nothing yet.
    Wait,
}

fn next_of(r: &GetMessageResult, offset: i64) -> Next {
    match r.queue_offsets.first() {
        Some(&at) if !r.messages.is_empty() => Next::Deliver { at },
        _ if r.next_begin_offset > offset => Next::Skip { to: r.next_begin_offset },
        _ => Next::Wait,
    }
}

/// Delivers every due message of one level, in order, stopping at the
/// first one not due yet. Messages whose records were cleaned are skipped
/// (logged), so a level never stalls behind them; a message the store took
/// counts as delivered even when its flush timed out, so it is never put
/// twice.
fn deliver_due(store: &MessageStore, offsets: &Mutex<DelayOffsetTable>, level: i32) {
    let qid = level - 1;
    let mut offset = offsets.lock().offset_table.get(&level).copied().unwrap_or(0);
    let max = store.max_offset_in_queue(SCHEDULE_TOPIC, qid);
    let min = store.min_offset_in_queue(SCHEDULE_TOPIC, qid);
    offset = offset.max(min);
    let now = now_millis();
    while offset < max {
        let r = store.get_message("SCHEDULE_TOPIC", SCHEDULE_TOPIC, qid, offset, 1, None);
        let at = match next_of(&r, offset) {
            Next::Deliver { at } => at,
            Next::Skip { to } => {
                log::warn!(
                    "{SCHEDULE_TOPIC}-{qid}: delayed messages at offsets {offset}..{to} are gone (their CommitLog file was cleaned); skipped"
                );
                offset = to;
                offsets.lock().offset_table.insert(level, offset);
                continue;
            }
            Next::Wait => break,
        };
        if at > offset {
            log::warn!("{SCHEDULE_TOPIC}-{qid}: delayed messages at offsets {offset}..{at} are gone; skipped");
            offset = at;
            offsets.lock().offset_table.insert(level, offset);
        }
        let Ok(m) = message::decode(&r.messages[0], true, false) else {
            log::error!("unreadable delayed message at {SCHEDULE_TOPIC}-{qid} offset {at}; skipped");
            offset = at + 1;
            continue;
        };
        let due = m.store_timestamp + delay_of(store, level);
        if due > now {
            break;
        }
        let mut props = m.message.properties.clone();
        let real_topic = props.remove(property::REAL_TOPIC).unwrap_or_default();
        let real_qid = props.remove(property::REAL_QID).and_then(|q| q.parse().ok()).unwrap_or(0);
        props.remove(property::DELAY);
        let back = MessageToStore {
            topic: real_topic,
            queue_id: real_qid,
            flag: m.message.flag,
            body: m.message.body.clone(),
            tags_code: props.get(property::TAGS).map_or(0, message::tags_hash),
            properties: message::properties_to_string(&props),
            sys_flag: m.sys_flag,
            born_timestamp: m.born_timestamp,
            born_host: m.born_host,
            store_host: m.store_host,
            reconsume_times: m.reconsume_times,
            prepared_transaction_offset: m.prepared_transaction_offset,
        };
        if back.topic.is_empty() {
            log::error!("delayed message at {SCHEDULE_TOPIC}-{qid} offset {at} has no real topic; skipped");
        } else {
            let put = store.put_message(&back, true);
            if put.appended.is_none() {
                // Refused (the disk is full, say): try again on the next round.
                break;
            }
            if !put.is_ok() {
                log::warn!("delayed message {SCHEDULE_TOPIC}-{qid} offset {at} delivered, but {:?}", put.status);
            }
        }
        offset = at + 1;
        offsets.lock().offset_table.insert(level, offset);
    }
    offsets.lock().offset_table.entry(level).or_insert(offset);
}

fn delay_of(store: &MessageStore, level: i32) -> i64 {
    let levels = store.config().delay_levels().unwrap_or_default();
    levels.get((level - 1).max(0) as usize).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GetMessageStatus;

    fn read(status: GetMessageStatus, next: i64, found_at: Option<i64>) -> GetMessageResult {
        GetMessageResult {
            status,
            next_begin_offset: next,
            min_offset: 0,
            max_offset: 100,
            messages: found_at.map(|_| bytes::Bytes::from_static(b"record")).into_iter().collect(),
            queue_offsets: found_at.into_iter().collect(),
            buffer_total_size: 6,
            suggest_pulling_from_slave: false,
        }
    }

    #[test]
    fn cleaned_records_are_skipped_not_waited_for() {
        // The unit at 5 points into a cleaned CommitLog file: nothing found,
        // the read moved on to 9. Waiting there would stall the level for good.
        assert_eq!(next_of(&read(GetMessageStatus::MessageWasRemoving, 9, None), 5), Next::Skip { to: 9 });
        // The read skipped the cleaned ones and found 9: delivering it and
        // going on at 6 would deliver 9 again.
        assert_eq!(next_of(&read(GetMessageStatus::Found, 10, Some(9)), 5), Next::Deliver { at: 9 });
        assert_eq!(next_of(&read(GetMessageStatus::Found, 6, Some(5)), 5), Next::Deliver { at: 5 });
        assert_eq!(next_of(&read(GetMessageStatus::OffsetOverflowOne, 5, None), 5), Next::Wait);
    }
}
