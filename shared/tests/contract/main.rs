//! The contract of the ports, written once and run against every adapter: the queues
//! (`queue.rs`), the store (`store.rs`) and secrets (`secrets.rs`), each behaviour a generic
//! async function over a fixture. `sqlite.rs` runs them on the embedded adapters (SQLite, the
//! encrypted secrets file); `aws.rs` on the AWS adapters (SQS FIFO, DynamoDB, Secrets Manager)
//! against one moto server per test process (`pip install 'moto[server]==5.2.5'`; the `aws`
//! feature, on in `cargo test --workspace`). Every behaviour is its own test per adapter:
//! `sqlite::queue::dedup_within_window_is_dropped`, `aws::queue::dedup_within_window_is_dropped`.
//!
//! Where an adapter behaves in a way the others cannot show (the embedded queue's manual clock,
//! the secrets file's encryption, the secrets cache of Secrets Manager), the test sits beside
//! that adapter and says why.
//!
//! Run it alone: `cargo test -p mlc-shared --features aws --test contract`.

#[path = "../common/mod.rs"]
mod common;

mod queue;
mod secrets;
mod store;

use std::future::Future;
use std::time::Duration;

use mlc_shared::ports::{Queue, Secrets, Store};

/// Fresh queues (`ingest` and `post`, each with its dead-letter queue after five receives) of
/// one adapter, and a way to let time pass for them.
pub trait QueueFixture: Sized + Send + Sync {
    type Queue: Queue;
    /// New, empty queues that hide a received message for `visibility`.
    fn new(visibility: Duration) -> impl Future<Output = Self> + Send;
    fn queue(&self) -> &Self::Queue;
    /// Lets `d` go by as the queue sees it: a manual clock moves on, or the test sleeps.
    fn pass(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

/// A fresh, empty store of one adapter.
pub trait StoreFixture: Sized + Send + Sync {
    type Store: Store + Clone + 'static;
    fn new() -> impl Future<Output = Self> + Send;
    /// A new handle on the same data, as a second worker would open it (its own connection
    /// or client).
    fn handle(&self) -> Self::Store;
}

/// Secrets of one adapter holding exactly the given name → value pairs.
pub trait SecretsFixture: Sized + Send + Sync {
    type Secrets: Secrets + std::fmt::Debug;
    fn with(secrets: &[(&str, &str)]) -> impl Future<Output = Self> + Send;
    fn secrets(&self) -> &Self::Secrets;
}

/// One `#[tokio::test]` per behaviour, in a module named for the suite: `$suite::$behaviour`
/// calls `crate::$suite::$behaviour::<$fixture>()` with the fixture of the calling module.
macro_rules! suite {
    ($suite:ident, $fixture:ident: $($behaviour:ident),+ $(,)?) => {
        pub mod $suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    crate::$suite::$behaviour::<super::$fixture>().await;
                }
            )+
        }
    };
}

/// Every behaviour of the contract, for one adapter's fixtures.
macro_rules! contract {
    (queue: $queue:ident, store: $store:ident, secrets: $secrets:ident $(,)?) => {
        suite!(queue, $queue:
            dedup_within_window_is_dropped,
            dedup_is_per_queue,
            group_order_is_held_while_a_message_is_in_flight,
            other_groups_are_delivered_while_one_is_in_flight,
            receive_honours_max,
            a_received_message_is_hidden_until_its_visibility_timeout_passes,
            retry_later_delays_redelivery_and_holds_the_group,
            dead_letter_after_max_receives_and_the_group_goes_on,
            dead_letters_are_peeked_not_taken_and_not_counted,
            depth_counts_visible_and_in_flight_and_ack_deletes,
            many_messages_keep_their_order,
            a_refused_send_is_an_error_naming_the_queue,
            a_made_up_receipt_is_an_unknown_receipt,
            dead_letter_moves_a_received_message_now_and_the_group_goes_on,
            defer_hides_a_message_and_keeps_its_place_in_its_group,
            extend_keeps_a_received_message_hidden_and_its_receipt_valid,
        );
        suite!(store, $store:
            racing_claims_from_two_handles_acquire_once,
            lease_expiry_take_over_keeps_target_id,
            an_unsettled_create_survives_a_take_over_until_its_target_is_recorded,
            same_owner_re_enters_its_claim,
            complete_then_claim_is_done,
            record_target_and_complete_after_a_take_over_are_lost_claim,
            release_lets_another_worker_take_it_at_once,
            a_done_entry_is_not_done_for_another_target,
            a_live_claim_for_another_target_is_busy,
            forget_deletes_a_done_entry_but_never_a_live_claim,
            ledger_targets_count_entries_per_target,
            watermark_compare_and_set,
            mappings_put_get_list_remove,
            parking_replaces_and_unparks_oldest_first,
            a_write_through_one_handle_is_read_through_another,
            audit_query_by_document_matches_id_or_number,
            audit_query_by_status_and_date_range,
            audit_query_by_vendor,
            audit_query_limit_keeps_the_latest_newest_last,
            audit_amount_round_trips_exactly_and_absent_fields_stay_absent,
            audit_query_returns_every_item_of_a_large_trail,
            audit_once_appends_the_first_and_counts_the_repeats,
            audit_once_appends_once_under_concurrent_calls,
        );
        suite!(secrets, $secrets:
            get_returns_the_stored_value_never_shown,
            a_missing_secret_is_not_found_by_its_name,
        );
    };
}

// After the macros, so both adapters' modules see them.
mod sqlite;

#[cfg(feature = "aws")]
mod aws;
