//! The registry of sandbox scenarios: one per integration, each with its simulators, the
//! configuration that points the connector at them, their secrets, their seeded data and the
//! report of `mlc demo`. `mlc demo` and `mlc sandbox` run every scenario of [`all`] and name
//! no system themselves.
//!
//! A new integration adds a module here (its simulators, seeding and report) and one entry
//! in [`all`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use mlc_shared::ports::{AuditItem, ParkedDoc, SecretError};
use mlc_shared::runtime::DrainStats;
use mlc_shared::steps::poll::PollReport;

use crate::FaultRule;

pub mod b1_coupa;
pub mod basware_bc;
pub mod concur_bc;
pub mod coupa_bc;
pub mod coupa_fo;

/// The Coupa → Business Central scenario's configuration and secrets, for the tests and
/// benchmarks that start its simulators themselves (re-exported by `mlc_cli::cmd::sandbox`).
pub use coupa_bc::{config_toml, store_secrets};

/// Every registered scenario, in the order `mlc demo` reports them.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(coupa_bc::CoupaBc),
        Box::new(coupa_fo::CoupaFo),
        Box::new(basware_bc::BaswareBc),
        Box::new(b1_coupa::B1Coupa),
        Box::new(concur_bc::ConcurBc),
    ]
}

/// Every simulator of every registered scenario (`mlc sandbox` has a `--<name>` flag for each).
pub fn simulators() -> Vec<Simulator> {
    all().iter().flat_map(|s| s.simulators()).collect()
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One simulator a scenario starts.
#[derive(Clone, Copy, Debug)]
pub struct Simulator {
    /// Unique across the registry; also `mlc sandbox`'s flag (`--<name>`).
    pub name: &'static str,
    /// Where `mlc sandbox` listens by default.
    pub default_addr: &'static str,
}

/// Listen addresses by simulator name; a simulator without one takes any free port.
pub type Listen = BTreeMap<&'static str, SocketAddr>;

/// An integration's sandbox, not yet started.
pub trait Scenario: Send + Sync {
    /// The scenario's name (its integration's).
    fn name(&self) -> &'static str;
    fn simulators(&self) -> Vec<Simulator>;
    /// Starts the simulators (empty, not seeded).
    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>>;
}

/// A part of the configuration: `[systems.*]` tables and `[[integrations]]` entries, each text
/// ending with a newline. [`merged_config`] puts every scenario's together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFragment {
    pub systems: String,
    pub integrations: String,
}

/// One configuration for every fragment: `[runtime]` (the database and secrets file named),
/// then every fragment's systems, then every fragment's integrations.
pub fn merged_config(database: &str, secrets_file: &str, fragments: &[ConfigFragment]) -> String {
    let mut out = format!(
        r#"[runtime]
database = "{database}"
secrets_file = "{secrets_file}"
workers = 4
max_receives = 5
# A worker renews the lease of the message it holds every third of this while its step runs.
visibility_timeout_secs = 120
# Where `mlc run` listens for webhooks (Coupa call-outs, BC notifications); uncomment to use.
# webhook_listen = "127.0.0.1:8080"
"#
    );
    for f in fragments {
        out.push('\n');
        out.push_str(&f.systems);
    }
    for f in fragments {
        out.push('\n');
        out.push_str(&f.integrations);
    }
    out
}

/// Stores a secret (name, value); the CLI passes its secrets file's `set`.
pub type SetSecret<'a> = &'a dyn Fn(&str, &str) -> Result<(), SecretError>;

/// What one poll-and-drain cycle of `mlc demo` left, handed to every scenario after it.
pub struct Cycle<'a> {
    /// 1-based.
    pub number: usize,
    /// This cycle's poll reports, by integration.
    pub polls: &'a [(String, PollReport)],
    /// This cycle's drain.
    pub stats: &'a DrainStats,
    /// The audit trail's posted items (all integrations, oldest first).
    pub posted: &'a [AuditItem],
    /// Documents parked now (all integrations).
    pub parked: &'a [ParkedDoc],
}

/// Part of a scenario's demo report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// Printed as is (it may hold line breaks).
    Line(String),
    /// A title line, the table, then a blank line.
    Table {
        title: String,
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

impl Section {
    pub fn line(text: impl Into<String>) -> Self {
        Section::Line(text.into())
    }

    pub fn table(title: impl Into<String>, headers: &[&str], rows: Vec<Vec<String>>) -> Self {
        Section::Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        }
    }
}

/// A scenario's running simulators.
pub trait Sandbox: Send {
    /// The systems and integration for `mlc run` against the simulators.
    fn config(&self) -> ConfigFragment;
    /// Stores the simulators' credentials under the secret names the configuration uses.
    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError>;
    /// Seeds `mlc sandbox`'s data: master data and `invoices` approved source documents.
    fn seed(&mut self, invoices: usize);
    /// What `mlc sandbox` prints about the simulators: URLs, credentials, inspection routes.
    fn describe(&self) -> Vec<String>;

    /// Seeds the demo's data (master data, `invoices` approved source documents and whatever
    /// the demo's other flows need).
    fn seed_demo(&mut self, invoices: usize);
    /// [`Sandbox::config`] with the flows the demo turns on.
    fn demo_config(&self) -> ConfigFragment;
    /// Poll-and-drain cycles the demo needs.
    fn demo_cycles(&self) -> usize;
    /// Called after every cycle: may act on the simulators (as a person would between two
    /// cycles) and returns what to print now.
    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>>;

    // What the fault suite that runs against every registered integration
    // (`tests/tests/fault_suite_every.rs`) needs of a scenario: its verdict is read from the
    // simulators, never from the connector's own opinion of what it did.

    /// Every source document [`Sandbox::seed`] seeded, as the target holds it now.
    fn landings(&self) -> Vec<Landing>;
    /// Queues a fault on the source's or the target's simulator.
    fn fail_next(&self, side: Side, rule: FaultRule);
    /// The (method, path fragment) pairs of a side's API worth failing: the target's writes
    /// and the reads that find them again, the source's reads.
    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)>;
    /// Ends every token and session the simulators issued: the next call must authenticate
    /// again.
    fn expire_credentials(&self);
    /// Every simulator's base URL ("http://127.0.0.1:port"): the configuration reaches each
    /// simulator only through URLs that start with one of these.
    fn base_urls(&self) -> Vec<String>;
    /// Requests each simulator served so far (its API and token endpoint, not the `/_sandbox`
    /// controls), by system name, and any other count worth a figure (B1 logins): for the
    /// benchmark of every integration (`cargo bench -p mlc-e2e --bench every`).
    fn requests_served(&self) -> Vec<(&'static str, usize)>;
}

/// What BC holds of one vendor document number (BC upper-cases it): one entry per purchase
/// invoice or credit memo carrying it, true when that record is posted once and has lines.
pub(crate) fn bc_records(
    invoices: &[crate::bc::BcInvoiceView],
    memos: &[crate::bc::BcCreditMemoView],
    number: &str,
) -> Vec<bool> {
    let finished =
        |status: &str, posts: u32, lines: usize| status != "Draft" && posts == 1 && lines > 0;
    invoices
        .iter()
        .filter(|i| i.vendor_invoice_number.eq_ignore_ascii_case(number))
        .map(|i| finished(&i.status, i.post_count, i.lines.len()))
        .chain(
            memos
                .iter()
                .filter(|m| m.vendor_credit_memo_number.eq_ignore_ascii_case(number))
                .map(|m| finished(&m.status, m.post_count, m.lines.len())),
        )
        .collect()
}

/// Requests in a simulator's log that reached its API (not the `/_sandbox` controls).
pub fn api_requests(log: &[crate::RequestLog]) -> usize {
    log.iter()
        .filter(|r| !r.path.starts_with("/_sandbox"))
        .count()
}

/// Which simulator of a scenario a fault goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

/// What must become of a seeded document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// In the target exactly once, finished (posted, every line there).
    Once,
    /// Never in the target: parked (unmappable, refused) or not approved.
    Never,
}

/// One seeded source document and what the target holds of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Landing {
    /// The source document as people know it ("INV-0007-00003", "PO 12").
    pub document: String,
    pub expect: Expect,
    /// Records of it in the target: 0 = not there, 2 = a duplicate.
    pub copies: usize,
    /// Its record reached its final state there (posted; every line present).
    pub finished: bool,
    /// Answers about it the source received (transfer or posting responses), where the
    /// integration sends one; more than one is a duplicate.
    pub answers: Option<usize>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use mlc_shared::config::Config;

    use super::*;

    #[test]
    fn simulator_names_are_unique_across_the_registry() {
        let sims = simulators();
        let names: BTreeSet<_> = sims.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), sims.len(), "{sims:?}");
        // `mlc sandbox` without flags binds every default address at once.
        let addrs: BTreeSet<_> = sims.iter().map(|s| s.default_addr).collect();
        assert_eq!(addrs.len(), sims.len(), "{sims:?}");
        for s in &sims {
            s.default_addr
                .parse::<SocketAddr>()
                .expect("default address");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_scenario_merges_into_one_configuration_with_its_secrets() {
        let mut sandboxes = Vec::new();
        for s in all() {
            sandboxes.push(s.start(&Listen::new()).await.unwrap());
        }
        let plain: Vec<_> = sandboxes.iter().map(|s| s.config()).collect();
        let demo: Vec<_> = sandboxes.iter().map(|s| s.demo_config()).collect();
        let text = merged_config("db", "secrets", &plain);
        let plain = Config::parse(&text).unwrap();
        let demo = Config::parse(&merged_config("db", "secrets", &demo)).unwrap();
        assert_eq!(plain.integrations.len(), all().len());
        assert_eq!(demo.integrations.len(), all().len());
        let coupa = |c: &Config| {
            c.integrations
                .iter()
                .filter(|i| i.name == coupa_bc::INTEGRATION)
                .map(|i| i.sync.purchase_orders)
                .collect::<Vec<_>>()
        };
        assert_eq!(coupa(&demo), vec![true]);
        assert_eq!(coupa(&plain), vec![false]);
        // SAP B1 → Coupa: its own Coupa target (the merged configuration holds three), B1
        // partners created as Coupa suppliers, B1 payments recorded.
        let b1 = demo
            .integrations
            .iter()
            .find(|i| i.name == b1_coupa::INTEGRATION)
            .expect("b1-coupa registered");
        assert!(b1.sync.payments);
        assert_eq!(demo.resolved(&b1.name).unwrap().target.name, "coupa-b1");
        for c in [&plain, &demo] {
            for i in &c.integrations {
                c.resolved(&i.name).unwrap();
            }
        }

        let stored = Mutex::new(Vec::new());
        for s in &sandboxes {
            s.store_secrets(&|name, value| {
                stored
                    .lock()
                    .unwrap()
                    .push((name.to_string(), value.to_string()));
                Ok(())
            })
            .unwrap();
        }
        for (name, value) in stored.into_inner().unwrap() {
            assert!(text.contains(&format!("\"{name}\"")), "{name} unused");
            assert!(!value.is_empty(), "{name}");
        }
    }
}
