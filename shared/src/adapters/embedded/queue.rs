//! SQS FIFO semantics over SQLite.
//!
//! - A dedup id sent to a queue is remembered (in `queue_dedup`, with its first send time) for
//!   the dedup window, even after its message is deleted; a repeat within the window is
//!   accepted and dropped.
//! - Messages are ordered by an autoincrement sequence. Only the oldest live message of a group
//!   (its head) can be delivered, and only when visible, so a group whose head is in flight is
//!   blocked and a group is never delivered out of order. One message per group per receive.
//! - Each delivery gets a fresh receipt, raises the receive count and hides the message for the
//!   visibility timeout. A head that already had `max_receives` deliveries is moved to the
//!   dead-letter table when it would next be delivered, as SQS redrive does.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use super::db::{Cached, Db, Fail, add, parse_ts, sub, ts};
use crate::ports::{Clock, Message, OutgoingMessage, Queue, QueueError, QueueName, SystemClock};

/// How the queues behave; the defaults are SQS's (30 s visibility, 5-minute dedup window) and
/// the design's five receives before the dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout: Duration,
    pub max_receives: u32,
    pub dedup_window: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
            dedup_window: Duration::from_secs(5 * 60),
        }
    }
}

/// The embedded queues (`ingest`, `post`), all in the one SQLite file.
pub struct SqliteQueue<C = SystemClock> {
    db: Db,
    clock: Arc<C>,
    settings: QueueSettings,
    /// Woken whenever a message is sent or settled through this handle (or its clones), so an
    /// idle worker sleeps until then instead of asking the database every few milliseconds.
    changed: Arc<tokio::sync::Notify>,
}

impl<C> Clone for SqliteQueue<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            clock: Arc::clone(&self.clock),
            settings: self.settings,
            changed: Arc::clone(&self.changed),
        }
    }
}

impl<C> fmt::Debug for SqliteQueue<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("db", &self.db)
            .field("settings", &self.settings)
            .finish()
    }
}

/// How often an idle wait longer than this looks for another process's changes to the file.
const OTHER_PROCESSES_EVERY: Duration = Duration::from_secs(1);

struct WakeOnDrop(Arc<tokio::sync::Notify>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.notify_waiters();
    }
}

fn queue_err(queue: QueueName) -> impl Fn(Fail) -> QueueError {
    move |f| match f {
        Fail::UnknownReceipt(receipt) => QueueError::UnknownReceipt {
            queue: queue.as_str(),
            receipt,
        },
        other => QueueError::Backend {
            queue: queue.as_str(),
            message: other.to_string(),
        },
    }
}

fn check_id(what: &str, id: &str) -> Result<(), Fail> {
    if id.is_empty() || id.len() > 128 {
        return Err(Fail::Other(format!(
            "{what} must be 1 to 128 characters (SQS FIFO), got {}",
            id.len()
        )));
    }
    Ok(())
}

impl SqliteQueue<SystemClock> {
    /// Queues on the system clock with the default settings.
    pub fn with_defaults(db: Db) -> Self {
        Self::new(db, SystemClock, QueueSettings::default())
    }
}

impl<C: Clock + 'static> SqliteQueue<C> {
    pub fn new(db: Db, clock: C, settings: QueueSettings) -> Self {
        Self {
            db,
            clock: Arc::new(clock),
            settings,
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// When the next message of any queue can be received: the earliest visible time of a
    /// group's head (a later message of a group waits for its head). `None`: no message.
    async fn next_receivable(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, Fail> {
        let t: Option<String> = self
            .db
            .call(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT MIN(m.visible_at) FROM queue_messages m
                         WHERE m.seq = (SELECT MIN(x.seq) FROM queue_messages x
                                        WHERE x.queue = m.queue AND x.group_id = m.group_id)",
                    )?
                    .query_row([], |r| r.get(0))?)
            })
            .await?;
        t.map(|t| parse_ts(&t)).transpose()
    }

    /// SQLite's `data_version`: changes when another connection (another process: this one
    /// shares one connection) commits to the file.
    async fn data_version(&self) -> Result<i64, Fail> {
        self.db
            .call(|conn| Ok(conn.query_row_cached("PRAGMA data_version", [], |r| r.get(0))?))
            .await
    }

    /// Wakes the idle workers when dropped: at the end of a call that changed a queue,
    /// whichever way it returns.
    fn waking(&self) -> WakeOnDrop {
        WakeOnDrop(Arc::clone(&self.changed))
    }

    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// Moves every dead letter of `queue` back to the end of the queue, visible now, with its
    /// receive count reset (a replay). Returns how many moved.
    pub async fn redrive_dead_letters(&self, queue: QueueName) -> Result<usize, QueueError> {
        let _wake = self.waking();
        let now = ts(self.clock.now());
        self.db
            .write(move |tx| {
                let moved = tx.execute_cached(
                    "INSERT INTO queue_messages
                         (queue, group_id, dedup_id, body, sent_at, visible_at, receive_count)
                     SELECT queue, group_id, dedup_id, body, sent_at, ?2, 0
                     FROM queue_dead_letters WHERE queue = ?1 ORDER BY id",
                    params![queue.as_str(), now],
                )?;
                tx.execute_cached(
                    "DELETE FROM queue_dead_letters WHERE queue = ?1",
                    params![queue.as_str()],
                )?;
                Ok(moved)
            })
            .await
            .map_err(queue_err(queue))
    }

    /// Moves one dead letter (by the `receipt` that [`Queue::dead_letters`] gave it) back to
    /// the end of the queue with its receive count reset. False if there is no such dead letter.
    pub async fn redrive_dead_letter(
        &self,
        queue: QueueName,
        receipt: &str,
    ) -> Result<bool, QueueError> {
        let _wake = self.waking();
        let Some(id) = dead_letter_id(receipt) else {
            return Ok(false);
        };
        let now = ts(self.clock.now());
        self.db
            .write(move |tx| {
                let moved = tx.execute_cached(
                    "INSERT INTO queue_messages
                         (queue, group_id, dedup_id, body, sent_at, visible_at, receive_count)
                     SELECT queue, group_id, dedup_id, body, sent_at, ?3, 0
                     FROM queue_dead_letters WHERE queue = ?1 AND id = ?2",
                    params![queue.as_str(), id, now],
                )?;
                tx.execute_cached(
                    "DELETE FROM queue_dead_letters WHERE queue = ?1 AND id = ?2",
                    params![queue.as_str(), id],
                )?;
                Ok(moved == 1)
            })
            .await
            .map_err(queue_err(queue))
    }

    /// Deletes one dead letter (by the `receipt` that [`Queue::dead_letters`] gave it): a
    /// person closed it. False if there is no such dead letter.
    pub async fn discard_dead_letter(
        &self,
        queue: QueueName,
        receipt: &str,
    ) -> Result<bool, QueueError> {
        let _wake = self.waking();
        let Some(id) = dead_letter_id(receipt) else {
            return Ok(false);
        };
        self.db
            .write(move |tx| {
                let n = tx.execute_cached(
                    "DELETE FROM queue_dead_letters WHERE queue = ?1 AND id = ?2",
                    params![queue.as_str(), id],
                )?;
                Ok(n == 1)
            })
            .await
            .map_err(queue_err(queue))
    }
}

/// The row id in a dead letter's receipt (`dlq-<id>`, as [`Queue::dead_letters`] makes it).
fn dead_letter_id(receipt: &str) -> Option<i64> {
    receipt.strip_prefix("dlq-")?.parse().ok()
}

struct Head {
    seq: i64,
    group_id: String,
    dedup_id: String,
    body: String,
    receive_count: u32,
}

impl<C: Clock + 'static> Queue for SqliteQueue<C> {
    async fn send(
        &self,
        queue: QueueName,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), QueueError> {
        let _wake = self.waking();
        if messages.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let now_s = ts(now);
        let cutoff = ts(sub(now, self.settings.dedup_window));
        self.db
            .write(move |tx| {
                let q = queue.as_str();
                tx.execute_cached(
                    "DELETE FROM queue_dedup WHERE queue = ?1 AND sent_at <= ?2",
                    params![q, cutoff],
                )?;
                for m in &messages {
                    check_id("group id", &m.group_id)?;
                    check_id("dedup id", &m.dedup_id)?;
                    let fresh = tx.execute_cached(
                        "INSERT INTO queue_dedup (queue, dedup_id, sent_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (queue, dedup_id) DO NOTHING",
                        params![q, m.dedup_id, now_s],
                    )?;
                    if fresh == 0 {
                        // Sent within the window: accepted and dropped.
                        continue;
                    }
                    tx.execute_cached(
                        "INSERT INTO queue_messages
                             (queue, group_id, dedup_id, body, sent_at, visible_at, receive_count)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0)",
                        params![q, m.group_id, m.dedup_id, m.body, now_s],
                    )?;
                }
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn receive(&self, queue: QueueName, max: usize) -> Result<Vec<Message>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let now_s = ts(now);
        let hidden_until = ts(add(now, self.settings.visibility_timeout));
        let max_receives = self.settings.max_receives;
        self.db
            .write(move |tx| {
                let q = queue.as_str();
                let mut out: Vec<Message> = Vec::new();
                loop {
                    let remaining = (max - out.len()) as i64;
                    if remaining == 0 {
                        break;
                    }
                    // Visible group heads, oldest first. A group whose head is in flight has
                    // an invisible head and is skipped; its later messages are never heads.
                    let heads = {
                        let mut stmt = tx.prepare_cached(
                            "SELECT m.seq, m.group_id, m.dedup_id, m.body, m.receive_count
                             FROM queue_messages m
                             WHERE m.queue = ?1 AND m.visible_at <= ?2
                               AND m.seq = (SELECT MIN(x.seq) FROM queue_messages x
                                            WHERE x.queue = m.queue AND x.group_id = m.group_id)
                             ORDER BY m.seq LIMIT ?3",
                        )?;
                        stmt.query_map(params![q, now_s, remaining], |r| {
                            Ok(Head {
                                seq: r.get(0)?,
                                group_id: r.get(1)?,
                                dedup_id: r.get(2)?,
                                body: r.get(3)?,
                                receive_count: r.get(4)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?
                    };
                    if heads.is_empty() {
                        break;
                    }
                    let mut moved = false;
                    for h in heads {
                        if h.receive_count >= max_receives {
                            tx.execute_cached(
                                "INSERT INTO queue_dead_letters (queue, original_seq, group_id,
                                     dedup_id, body, sent_at, receive_count, dead_at)
                                 SELECT queue, seq, group_id, dedup_id, body, sent_at,
                                        receive_count, ?2
                                 FROM queue_messages WHERE seq = ?1",
                                params![h.seq, now_s],
                            )?;
                            tx.execute_cached(
                                "DELETE FROM queue_messages WHERE seq = ?1",
                                [h.seq],
                            )?;
                            moved = true;
                            continue;
                        }
                        let receipt = uuid::Uuid::new_v4().to_string();
                        tx.execute_cached(
                            "UPDATE queue_messages
                             SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3
                             WHERE seq = ?1",
                            params![h.seq, hidden_until, receipt],
                        )?;
                        out.push(Message {
                            receipt,
                            group_id: h.group_id,
                            dedup_id: h.dedup_id,
                            body: h.body,
                            receive_count: h.receive_count + 1,
                        });
                    }
                    // A dead-lettered head may have uncovered the next message of its group.
                    if !moved {
                        break;
                    }
                }
                Ok(out)
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn ack(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let _wake = self.waking();
        let receipt = receipt.to_string();
        self.db
            .call(move |conn| {
                let n = conn.execute_cached(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt],
                )?;
                if n == 0 {
                    return Err(Fail::UnknownReceipt(receipt));
                }
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn retry_later(
        &self,
        queue: QueueName,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let _wake = self.waking();
        let receipt = receipt.to_string();
        let visible_at = ts(add(self.clock.now(), delay));
        self.db
            .call(move |conn| {
                // The receipt is spent: the next delivery gets a new one.
                let n = conn.execute_cached(
                    "UPDATE queue_messages SET visible_at = ?3, receipt = NULL
                     WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt, visible_at],
                )?;
                if n == 0 {
                    return Err(Fail::UnknownReceipt(receipt));
                }
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn extend(
        &self,
        queue: QueueName,
        receipt: &str,
        by: Duration,
    ) -> Result<(), QueueError> {
        let receipt = receipt.to_string();
        let visible_at = ts(add(self.clock.now(), by));
        self.db
            .call(move |conn| {
                let n = conn.execute_cached(
                    "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt, visible_at],
                )?;
                if n == 0 {
                    return Err(Fail::UnknownReceipt(receipt));
                }
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn dead_letter(&self, queue: QueueName, message: &Message) -> Result<(), QueueError> {
        let _wake = self.waking();
        let receipt = message.receipt.clone();
        let now_s = ts(self.clock.now());
        self.db
            .write(move |tx| {
                let n = tx.execute_cached(
                    "INSERT INTO queue_dead_letters (queue, original_seq, group_id,
                         dedup_id, body, sent_at, receive_count, dead_at)
                     SELECT queue, seq, group_id, dedup_id, body, sent_at, receive_count, ?3
                     FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt, now_s],
                )?;
                if n == 0 {
                    return Err(Fail::UnknownReceipt(receipt));
                }
                tx.execute_cached(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt],
                )?;
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn defer(
        &self,
        queue: QueueName,
        message: &Message,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let _wake = self.waking();
        let receipt = message.receipt.clone();
        let visible_at = ts(add(self.clock.now(), delay));
        self.db
            .call(move |conn| {
                // The delivery is given back: the receive count goes down by the one this
                // delivery added, so the message keeps every delivery it had left.
                let n = conn.execute_cached(
                    "UPDATE queue_messages
                     SET visible_at = ?3, receipt = NULL, receive_count = MAX(receive_count - 1, 0)
                     WHERE queue = ?1 AND receipt = ?2",
                    params![queue.as_str(), receipt, visible_at],
                )?;
                if n == 0 {
                    return Err(Fail::UnknownReceipt(receipt));
                }
                Ok(())
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        self.db
            .call(move |conn| {
                let n: i64 = conn.query_row_cached(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                    [queue.as_str()],
                    |r| r.get(0),
                )?;
                Ok(n as u64)
            })
            .await
            .map_err(queue_err(queue))
    }

    async fn due_within(&self, queue: QueueName, horizon: Duration) -> Result<u64, QueueError> {
        let until = ts(add(self.clock.now(), horizon));
        self.db
            .call(move |conn| {
                let n: i64 = conn.query_row_cached(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2",
                    params![queue.as_str(), until],
                    |r| r.get(0),
                )?;
                Ok(n as u64)
            })
            .await
            .map_err(queue_err(queue))
    }

    /// Until a message is sent or settled through this queue, or the next one becomes
    /// receivable (a retry or a lease running out), at most `longest`: changes another process
    /// makes to the file are seen within `longest`, or within a second when `longest` is longer.
    async fn idle(&self, longest: Duration) {
        let changed = self.changed.notified();
        tokio::pin!(changed);
        // Registered before looking, so a change made meanwhile is not missed.
        changed.as_mut().enable();
        let wait = match self.next_receivable().await {
            Ok(Some(t)) => (t - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(longest),
            Ok(None) => longest,
            Err(e) => {
                tracing::warn!(error = %e, "could not tell when the next message is due");
                longest.min(Duration::from_millis(50))
            }
        };
        if wait <= OTHER_PROCESSES_EVERY {
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(wait) => {}
            }
            return;
        }
        // A long wait: another process (`mlc replay` beside `mlc run`) may queue work meanwhile,
        // which no notification tells. SQLite's data version says whether anything else
        // committed to the file: one tiny read a second instead of receiving from both queues.
        let others = async {
            // An error ends the wait too: the worker's next look reports it.
            let first = self.data_version().await.ok();
            loop {
                tokio::time::sleep(OTHER_PROCESSES_EVERY).await;
                let now = self.data_version().await.ok();
                if now.is_none() || now != first {
                    return;
                }
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(wait) => {}
            _ = others => {}
        }
    }

    async fn dead_letters(&self, queue: QueueName) -> Result<Vec<Message>, QueueError> {
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, group_id, dedup_id, body, receive_count
                     FROM queue_dead_letters WHERE queue = ?1 ORDER BY id",
                )?;
                let rows = stmt
                    .query_map([queue.as_str()], |r| {
                        Ok(Message {
                            receipt: format!("dlq-{}", r.get::<_, i64>(0)?),
                            group_id: r.get(1)?,
                            dedup_id: r.get(2)?,
                            body: r.get(3)?,
                            receive_count: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(queue_err(queue))
    }
}

#[cfg(test)]
mod tests {
    //! What only the embedded queue can show. The behaviours every queue shares are the
    //! contract's (`shared/tests/contract/queue.rs`), run on this adapter and on SQS.

    use super::*;
    use crate::adapters::embedded::ManualClock;
    use chrono::{DateTime, Utc};

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-04-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn setup() -> (tempfile::TempDir, SqliteQueue<ManualClock>, ManualClock) {
        setup_with(QueueSettings::default())
    }

    fn setup_with(
        settings: QueueSettings,
    ) -> (tempfile::TempDir, SqliteQueue<ManualClock>, ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("mlc.db")).unwrap();
        let clock = ManualClock::new(start());
        let q = SqliteQueue::new(db, clock.clone(), settings);
        (dir, q, clock)
    }

    /// An idle worker sleeps through a minute of nothing, but a message sent meanwhile wakes
    /// it at once (the bound is generous: this is about waking, not speed).
    #[tokio::test(flavor = "multi_thread")]
    async fn an_idle_wait_ends_when_a_message_is_sent() {
        let (_d, q, _) = setup();
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.idle(Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "returned with nothing to do");
        q.send(QueueName::Ingest, vec![msg("g", "d1", "b")])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the send did not wake the idle worker")
            .unwrap();
    }

    /// A message in flight (another worker holds it) is not asked about again until its lease
    /// ends or it is settled; settling it wakes the idle worker.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_idle_wait_ends_when_the_message_in_flight_is_settled() {
        let (_d, q, _) = setup();
        q.send(QueueName::Post, vec![msg("g", "d1", "b")])
            .await
            .unwrap();
        let held = q.receive(QueueName::Post, 1).await.unwrap().remove(0);
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.idle(Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "a held message is not work");
        q.ack(QueueName::Post, &held.receipt).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the ack did not wake the idle worker")
            .unwrap();
    }

    fn msg(group: &str, dedup: &str, body: &str) -> OutgoingMessage {
        OutgoingMessage {
            group_id: group.into(),
            dedup_id: dedup.into(),
            body: body.into(),
        }
    }

    const Q: QueueName = QueueName::Ingest;

    /// Real SQS remembers a dedup id for five minutes after its message is deleted too; moto
    /// forgets it at the delete, so the contract cannot hold SQS to it.
    #[tokio::test]
    async fn dedup_is_remembered_after_delete() {
        let (_d, q, clock) = setup();
        q.send(Q, vec![msg("g", "d1", "first")]).await.unwrap();
        let got = q.receive(Q, 1).await.unwrap();
        q.ack(Q, &got[0].receipt).await.unwrap();
        clock.advance(Duration::from_secs(240));
        q.send(Q, vec![msg("g", "d1", "again")]).await.unwrap();
        assert_eq!(q.depth(Q).await.unwrap(), 0);
        assert!(q.receive(Q, 1).await.unwrap().is_empty());
    }

    /// Five minutes: only a manual clock gets there in a test.
    #[tokio::test]
    async fn dedup_is_forgotten_after_the_window() {
        let (_d, q, clock) = setup();
        q.send(Q, vec![msg("g", "d1", "first")]).await.unwrap();
        let got = q.receive(Q, 1).await.unwrap();
        q.ack(Q, &got[0].receipt).await.unwrap();
        clock.advance(Duration::from_secs(301));
        q.send(Q, vec![msg("g", "d1", "again")]).await.unwrap();
        let got = q.receive(Q, 1).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, "again");
    }

    /// SQS may hand several messages of one group in one receive (in order); this queue hands
    /// one per group.
    #[tokio::test]
    async fn one_message_per_group_per_receive() {
        let (_d, q, _clock) = setup();
        q.send(
            Q,
            vec![
                msg("a", "a1", "a1"),
                msg("a", "a2", "a2"),
                msg("b", "b1", "b1"),
            ],
        )
        .await
        .unwrap();
        let got = q.receive(Q, 10).await.unwrap();
        let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a1", "b1"]);
    }

    /// To the second, on the manual clock (on SQS the contract waits a real timeout out, with a
    /// margin). A redelivery spends the earlier receipt here; SQS (and moto) may still accept
    /// an earlier receipt.
    #[tokio::test]
    async fn visibility_timeout_ends_exactly_and_spends_the_old_receipt() {
        let (_d, q, clock) = setup();
        q.send(Q, vec![msg("g", "1", "one")]).await.unwrap();
        let first = q.receive(Q, 1).await.unwrap();
        clock.advance(Duration::from_secs(29));
        assert!(q.receive(Q, 1).await.unwrap().is_empty());
        clock.advance(Duration::from_secs(1));
        let again = q.receive(Q, 1).await.unwrap();
        assert_eq!(again[0].receive_count, 2);
        assert!(matches!(
            q.ack(Q, &first[0].receipt).await,
            Err(QueueError::UnknownReceipt { .. })
        ));
        q.ack(Q, &again[0].receipt).await.unwrap();
        assert_eq!(q.depth(Q).await.unwrap(), 0);
    }

    /// As above, for the delay of `retry_later`.
    #[tokio::test]
    async fn retry_delay_ends_exactly_and_spends_the_old_receipt() {
        let (_d, q, clock) = setup();
        q.send(Q, vec![msg("g", "1", "one")]).await.unwrap();
        let got = q.receive(Q, 1).await.unwrap();
        q.retry_later(Q, &got[0].receipt, Duration::from_secs(5))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(4));
        assert!(q.receive(Q, 10).await.unwrap().is_empty());
        clock.advance(Duration::from_secs(1));
        let again = q.receive(Q, 10).await.unwrap();
        assert_eq!(again[0].receive_count, 2);
        assert!(matches!(
            q.retry_later(Q, &got[0].receipt, Duration::ZERO).await,
            Err(QueueError::UnknownReceipt { .. })
        ));
    }

    /// A dead letter keeps the receive count it died with. SQS's peek is a receive from the
    /// dead-letter queue, which counts too.
    #[tokio::test]
    async fn a_dead_letter_keeps_its_receive_count() {
        let (_d, q, _clock) = setup();
        q.send(Q, vec![msg("g", "1", "poison")]).await.unwrap();
        for _ in 0..5 {
            let got = q.receive(Q, 1).await.unwrap();
            q.retry_later(Q, &got[0].receipt, Duration::ZERO)
                .await
                .unwrap();
        }
        assert!(q.receive(Q, 1).await.unwrap().is_empty());
        let dead = q.dead_letters(Q).await.unwrap();
        assert_eq!(dead[0].receive_count, 5);
    }

    /// Redrive is the embedded queue's own (what `mlc replay` uses), not a port method.
    #[tokio::test]
    async fn redrive_moves_dead_letters_back_with_count_reset() {
        let (_d, q, _clock) = setup_with(QueueSettings {
            max_receives: 1,
            ..QueueSettings::default()
        });
        q.send(Q, vec![msg("g", "1", "poison")]).await.unwrap();
        let got = q.receive(Q, 1).await.unwrap();
        q.retry_later(Q, &got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        assert!(q.receive(Q, 1).await.unwrap().is_empty());
        assert_eq!(q.dead_letters(Q).await.unwrap().len(), 1);
        assert_eq!(q.redrive_dead_letters(Q).await.unwrap(), 1);
        assert!(q.dead_letters(Q).await.unwrap().is_empty());
        let got = q.receive(Q, 1).await.unwrap();
        assert_eq!(got[0].body, "poison");
        assert_eq!(got[0].receive_count, 1);
    }

    #[tokio::test]
    async fn redrive_one_dead_letter_by_its_receipt() {
        let (_d, q, _clock) = setup_with(QueueSettings {
            max_receives: 1,
            ..QueueSettings::default()
        });
        q.send(Q, vec![msg("a", "a", "a"), msg("b", "b", "b")])
            .await
            .unwrap();
        for m in q.receive(Q, 10).await.unwrap() {
            q.retry_later(Q, &m.receipt, Duration::ZERO).await.unwrap();
        }
        assert!(q.receive(Q, 10).await.unwrap().is_empty());
        let dead = q.dead_letters(Q).await.unwrap();
        assert_eq!(dead.len(), 2);
        assert!(q.redrive_dead_letter(Q, &dead[1].receipt).await.unwrap());
        assert!(!q.redrive_dead_letter(Q, &dead[1].receipt).await.unwrap());
        assert_eq!(q.dead_letters(Q).await.unwrap().len(), 1);
        assert_eq!(q.receive(Q, 10).await.unwrap()[0].body, "b");
    }
}
