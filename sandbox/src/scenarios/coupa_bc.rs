//! Coupa → Business Central: the Coupa and BC simulators, the configuration and secrets that
//! point the connector at them, and `mlc demo`'s report: approved invoices first, then the
//! `[integrations.sync]` flows (purchase orders, an invoice matched to its order, a supplier
//! created as a vendor, a line parked for a dimension value BC lacks, a payment returned to
//! Coupa).

use std::collections::{BTreeMap, BTreeSet};

use mlc_shared::ports::{AuditItem, ParkedDoc, SecretError};

use super::{
    BoxFuture, ConfigFragment, Cycle, Expect, Landing, Listen, Sandbox, Scenario, Section,
    SetSecret, Side, Simulator, api_requests, bc_records, merged_config,
};
use crate::FaultRule;
use crate::bc::{BcConfig, BcInvoiceView, BcSim};
use crate::coupa::{CoupaConfig, CoupaSim};
use crate::demo::{self, DemoSeed, SyncSeed};

/// The integration's name in the configuration.
pub const INTEGRATION: &str = "coupa-bc";

/// The scenario (see the module documentation).
pub struct CoupaBc;

impl Scenario for CoupaBc {
    fn name(&self) -> &'static str {
        INTEGRATION
    }

    fn simulators(&self) -> Vec<Simulator> {
        vec![
            Simulator {
                name: "coupa",
                default_addr: "127.0.0.1:18080",
            },
            Simulator {
                name: "bc",
                default_addr: "127.0.0.1:18081",
            },
        ]
    }

    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>> {
        Box::pin(async move {
            let coupa = match listen.get("coupa") {
                Some(addr) => CoupaSim::start_on(CoupaConfig::default(), *addr).await?,
                None => CoupaSim::start(CoupaConfig::default()).await?,
            };
            let bc = match listen.get("bc") {
                Some(addr) => BcSim::start_on(BcConfig::default(), *addr).await?,
                None => BcSim::start(BcConfig::default()).await?,
            };
            Ok(Box::new(CoupaBcSandbox {
                coupa,
                bc,
                demo: None,
                seeded: None,
            }) as Box<dyn Sandbox>)
        })
    }
}

/// The systems and the integration for the simulators (`[[integrations]]` without `sync`).
pub fn fragment(coupa: &CoupaSim, bc: &BcSim) -> ConfigFragment {
    ConfigFragment {
        systems: systems(coupa, bc),
        integrations: format!("{INTEGRATION_HEAD}{MAPPING}"),
    }
}

/// A configuration for `mlc run` against the simulators (the secrets it names hold the
/// simulators' credentials, printed by `mlc sandbox`).
pub fn config_toml(coupa: &CoupaSim, bc: &BcSim, database: &str, secrets_file: &str) -> String {
    merged_config(database, secrets_file, &[fragment(coupa, bc)])
}

/// Stores the simulators' credentials under the secret names [`config_toml`] uses.
pub fn store_secrets(
    secrets: &mlc_shared::adapters::embedded::SecretFile,
    coupa: &CoupaSim,
    bc: &BcSim,
) -> Result<(), SecretError> {
    set_secrets(&|name, value| secrets.set(name, value), coupa, bc)
}

fn set_secrets(set: SetSecret<'_>, coupa: &CoupaSim, bc: &BcSim) -> Result<(), SecretError> {
    set("coupa-client-secret", &coupa.config().client_secret)?;
    set("bc-client-secret", &bc.config().client_secret)?;
    set("coupa-webhook-secret", &coupa.config().webhook_secret)
}

fn systems(coupa: &CoupaSim, bc: &BcSim) -> String {
    let bc_cfg = bc.config();
    format!(
        r#"[systems.coupa]
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-client-secret"
api_version = "R40"
webhook_secret = "coupa-webhook-secret"

[systems.business_central]
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-client-secret"
"#,
        coupa_url = coupa.base_url(),
        coupa_client = coupa.config().client_id,
        bc_url = bc.base_url(),
        tenant = bc_cfg.tenant,
        env = bc_cfg.environment,
        company = bc.company_id(),
        bc_client = bc_cfg.client_id,
    )
}

const INTEGRATION_HEAD: &str = r#"[[integrations]]
name = "coupa-bc"
kind = "coupa_to_business_central"
# Named: other scenarios bring Coupa and Business Central systems of their own.
source = "coupa"
target = "business_central"
start_from = "2000-01-01T00:00:00Z"

"#;

const MAPPING: &str = r#"[integrations.mapping]
gl_account = { segment = 1 }
dimensions = [{ segment = 2, dimension = "DEPARTMENT" }, { segment = 3, dimension = "PROJECT" }]

[integrations.mapping.suppliers]
"SUP-001" = "V10000"
"SUP-002" = "V20000"
"SUP-003" = "V30000"
"SUP-004" = "V40000"
"#;

/// What the demo turns on beside approved invoices (every sync write is opt-in).
const SYNC: &str = r#"[integrations.sync]
purchase_orders = true
suppliers = "create"
payments = true

"#;

/// The running simulators, and the demo's state between cycles.
pub struct CoupaBcSandbox {
    coupa: CoupaSim,
    bc: BcSim,
    demo: Option<DemoState>,
    /// What [`Sandbox::seed`] seeded, for [`Sandbox::landings`].
    seeded: Option<DemoSeed>,
}

struct DemoState {
    seed: DemoSeed,
    sync_seed: SyncSeed,
    vendors_before: BTreeSet<String>,
    /// Parked after the first cycle (retried by the second).
    parked_first: Vec<ParkedDoc>,
    /// The BC invoice of the invoice matched to its order, marked paid after the second cycle.
    bc_po_invoice: Option<BcInvoiceView>,
}

fn is_invoice(kind: &str) -> bool {
    kind == "invoice" || kind == "credit_note"
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

impl Sandbox for CoupaBcSandbox {
    fn config(&self) -> ConfigFragment {
        fragment(&self.coupa, &self.bc)
    }

    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError> {
        set_secrets(set, &self.coupa, &self.bc)
    }

    fn seed(&mut self, invoices: usize) {
        demo::seed_bc(&self.bc);
        self.seeded = Some(demo::seed_coupa(&self.coupa, invoices, 7));
    }

    fn describe(&self) -> Vec<String> {
        let (coupa, bc) = (&self.coupa, &self.bc);
        let cc = coupa.config();
        let bcc = bc.config();
        vec![
            format!("Coupa simulator:            {}", coupa.base_url()),
            format!(
                "  token URL:                {}/oauth2/token",
                coupa.base_url()
            ),
            format!(
                "  client id / secret:       {} / {}",
                cc.client_id, cc.client_secret
            ),
            format!("  webhook HMAC secret:      {}", cc.webhook_secret),
            format!("Business Central simulator: {}", bc.base_url()),
            format!(
                "  API root:                 {}/v2.0/{}/{}/api/v2.0",
                bc.base_url(),
                bcc.tenant,
                bcc.environment
            ),
            format!(
                "  token URL:                {}/{}/oauth2/v2.0/token",
                bc.base_url(),
                bcc.tenant
            ),
            format!(
                "  client id / secret:       {} / {}",
                bcc.client_id, bcc.client_secret
            ),
            format!("  company id:               {}", bc.company_id()),
            format!(
                "Inspection: GET {}/_sandbox/invoices, GET {}/_sandbox/requests",
                bc.base_url(),
                coupa.base_url()
            ),
        ]
    }

    fn seed_demo(&mut self, invoices: usize) {
        demo::seed_bc(&self.bc);
        let seed = demo::seed_coupa(&self.coupa, invoices, 7);
        let sync_seed = demo::seed_sync(&self.coupa);
        let vendors_before = self.bc.vendors().into_iter().map(|v| v.number).collect();
        self.demo = Some(DemoState {
            seed,
            sync_seed,
            vendors_before,
            parked_first: Vec::new(),
            bc_po_invoice: None,
        });
    }

    fn demo_config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.coupa, &self.bc),
            integrations: format!("{INTEGRATION_HEAD}{SYNC}{MAPPING}"),
        }
    }

    /// One cycle posts what can post and parks invoices waiting for a vendor or an order; the
    /// second retries them once suppliers and orders synced; the third returns the payment
    /// of the invoice marked paid in BC in between.
    fn demo_cycles(&self) -> usize {
        3
    }

    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>> {
        let state = self
            .demo
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("the demo's data was not seeded"))?;
        let posted: Vec<&AuditItem> = cycle
            .posted
            .iter()
            .filter(|i| i.integration == INTEGRATION)
            .collect();
        let parked: Vec<&ParkedDoc> = cycle
            .parked
            .iter()
            .filter(|p| p.integration == INTEGRATION)
            .collect();
        Ok(match cycle.number {
            1 => {
                state.parked_first = parked.iter().map(|p| (*p).clone()).collect();
                first_cycle(&self.bc, state, cycle, &posted, &parked)
            }
            2 => {
                // Mark the invoice matched to its order paid in BC; the third cycle returns
                // the payment.
                let po_invoice_no = &state.sync_seed.po_invoice.0;
                state.bc_po_invoice = self.bc.purchase_invoices().into_iter().find(|i| {
                    i.vendor_invoice_number.eq_ignore_ascii_case(po_invoice_no)
                        && i.status == "Open"
                });
                if let Some(inv) = &state.bc_po_invoice {
                    self.bc.mark_paid(inv.id);
                }
                Vec::new()
            }
            3 => sync_flows(&self.coupa, &self.bc, state, &posted, &parked),
            _ => Vec::new(),
        })
    }

    /// Approved invoices of known suppliers and the credit note: once in BC, posted once, with
    /// lines; SUP-009's (no BC vendor) and the unapproved ones: never.
    fn landings(&self) -> Vec<Landing> {
        let Some(seed) = &self.seeded else {
            return Vec::new();
        };
        let invoices = self.bc.purchase_invoices();
        let memos = self.bc.purchase_credit_memos();
        seed.coupa_invoices
            .iter()
            .map(|id| {
                let number = self
                    .coupa
                    .invoice_json(*id)
                    .and_then(|j| j["invoice-number"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let expect = if seed.approved.contains(id) && !seed.unknown_supplier.contains(id)
                    || *id == seed.credit_note
                {
                    Expect::Once
                } else {
                    Expect::Never
                };
                let found = bc_records(&invoices, &memos, &number);
                Landing {
                    document: number,
                    expect,
                    copies: found.len(),
                    finished: found.iter().all(|f| *f),
                    answers: None,
                }
            })
            .collect()
    }

    fn fail_next(&self, side: Side, rule: FaultRule) {
        match side {
            Side::Source => self.coupa.fail_next(rule),
            Side::Target => self.bc.fail_next(rule),
        }
    }

    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)> {
        match side {
            Side::Source => vec![("GET", "/api/invoices"), ("GET", "/api/suppliers")],
            Side::Target => vec![
                ("GET", "/purchaseInvoices"),
                ("POST", "/purchaseInvoices"),
                ("POST", "Microsoft.NAV.post"),
                ("POST", "/dimensionSetLines"),
            ],
        }
    }

    fn expire_credentials(&self) {
        self.coupa.expire_tokens();
        self.bc.expire_tokens();
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.coupa.base_url(), self.bc.base_url()]
    }

    fn requests_served(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("Coupa", api_requests(&self.coupa.requests())),
            ("BC", api_requests(&self.bc.requests())),
        ]
    }
}

/// Approved invoices: what moved and what was parked in the first cycle.
fn first_cycle(
    bc: &BcSim,
    state: &DemoState,
    cycle: &Cycle<'_>,
    posted: &[&AuditItem],
    parked: &[&ParkedDoc],
) -> Vec<Section> {
    let (seed, sync_seed) = (&state.seed, &state.sync_seed);
    let polls = cycle.polls.iter().filter(|(name, _)| name == INTEGRATION);
    let polled: u32 = polls.clone().map(|(_, r)| r.enqueued).sum();
    let others = polls
        .flat_map(|(_, r)| r.others.iter().map(|(feed, n)| format!("{n} {feed}")))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| is_invoice(&i.document_kind))
        .map(|i| {
            vec![
                opt(&i.source_document_number),
                opt(&i.vendor),
                i.amount.map(|a| a.to_string()).unwrap_or_default(),
                opt(&i.currency),
                "→".into(),
                opt(&i.target_document_number),
                "posted".into(),
            ]
        })
        .collect();
    let prows: Vec<Vec<String>> = parked
        .iter()
        .filter(|p| is_invoice(&p.kind))
        .map(|p| {
            vec![
                opt(&p.source_document_number),
                p.source_id.clone(),
                p.reason.clone(),
            ]
        })
        .collect();
    let in_bc = bc.purchase_invoices();
    let posted_in_bc = in_bc.iter().filter(|i| i.status != "Draft").count();
    vec![
        Section::line(format!(
            "Coupa: {} approved invoices seeded ({} not approved, which the poll does not read); {polled} queued by the poll.",
            seed.approved.len(),
            seed.not_approved.len()
        )),
        Section::line(format!(
            "Also seeded for the sync flows: {} purchase orders, invoice {} against {}, invoice {} coded to department {}; the poll also queued {others}.\n",
            sync_seed.purchase_orders.len(),
            sync_seed.po_invoice.0,
            sync_seed.billed_po,
            sync_seed.unknown_dimension_invoice.0,
            demo::UNKNOWN_DEPARTMENT,
        )),
        Section::table(
            format!("Moved to Business Central ({}):", rows.len()),
            &[
                "Coupa invoice",
                "vendor",
                "amount",
                "currency",
                "",
                "BC document",
                "status",
            ],
            rows,
        ),
        Section::table(
            format!("Parked ({}), waiting for someone to act:", prows.len()),
            &["Coupa invoice", "Coupa id", "reason"],
            prows,
        ),
        Section::line(format!(
            "Business Central now holds {} purchase invoice(s), {} posted, {} draft(s), and {} purchase credit memo(s). Retries: {}. Dead-lettered: {}.",
            in_bc.len(),
            posted_in_bc,
            in_bc.len() - posted_in_bc,
            bc.purchase_credit_memos().len(),
            cycle.stats.failed_attempts,
            cycle.stats.dead_lettered
        )),
    ]
}

/// The `[integrations.sync]` flows, after the last cycle.
fn sync_flows(
    coupa: &CoupaSim,
    bc: &BcSim,
    state: &DemoState,
    posted: &[&AuditItem],
    parked: &[&ParkedDoc],
) -> Vec<Section> {
    let (po_invoice_no, po_invoice_id) = &state.sync_seed.po_invoice;
    let mut out = vec![Section::line(
        "\n== Purchase orders, suppliers, master data and payments ([integrations.sync]: purchase_orders, suppliers = \"create\", payments) ==\n",
    )];

    let vendor_names: BTreeMap<String, String> = bc
        .vendors()
        .into_iter()
        .map(|v| (v.number, v.display_name))
        .collect();
    let vendor_label = |no: &str| match vendor_names.get(no) {
        Some(name) => format!("{name} ({no})"),
        None => no.to_string(),
    };

    // Purchase orders.
    let orders = bc.purchase_orders();
    let mut po_rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| i.document_kind == "purchase_order")
        .filter_map(|i| {
            let number = opt(&i.target_document_number);
            let o = orders.iter().find(|o| o.number == number)?;
            let lines = o
                .lines
                .iter()
                .map(|l| {
                    format!(
                        "{} {} × {:.2}",
                        l.line_object_number,
                        l.quantity.normalize(),
                        l.direct_unit_cost
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            Some(vec![
                opt(&i.source_document_number),
                "→".into(),
                number,
                vendor_label(&o.vendor_number),
                format!("{:.2}", o.total),
                lines,
            ])
        })
        .collect();
    po_rows.sort();
    out.push(Section::table(
        format!(
            "Purchase orders created in Business Central ({}):",
            po_rows.len()
        ),
        &[
            "Coupa PO",
            "",
            "BC order",
            "vendor",
            "amount",
            "lines (G/L qty × cost)",
        ],
        po_rows,
    ));

    // The invoice matched to its order.
    let coupa_po_invoice = coupa.invoice_json(*po_invoice_id).unwrap_or_default();
    let coupa_lines = coupa_po_invoice["invoice-lines"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bc_po_invoice = state
        .bc_po_invoice
        .as_ref()
        .and_then(|i| bc.purchase_invoice(i.id));
    let mut match_rows = Vec::new();
    if let Some(inv) = &bc_po_invoice {
        for (n, l) in inv.lines.iter().enumerate() {
            let c = coupa_lines.get(n);
            let field = |k: &str| {
                c.and_then(|c| c.get(k))
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default()
            };
            let coded = c
                .and_then(|c| c["account"]["code"].as_str())
                .unwrap_or_default()
                .to_string();
            match_rows.push(vec![
                po_invoice_no.clone(),
                format!("{} line {}", field("po-number"), field("order-line-num")),
                coded,
                "→".into(),
                inv.number.clone(),
                vendor_label(&inv.vendor_number),
                l.line_object_number.clone(),
                l.dimensions
                    .iter()
                    .map(|(d, v)| format!("{d}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
    }
    out.push(Section::table(
        "Invoice matched to its purchase order (vendor and G/L account taken from the order's lines):",
        &[
            "Coupa invoice",
            "bills",
            "coded in Coupa",
            "",
            "BC invoice",
            "vendor (from the order)",
            "G/L (from the order)",
            "dimensions",
        ],
        match_rows,
    ));

    // Vendors created from Coupa suppliers, and the invoices that then posted.
    let retried: BTreeSet<(String, String)> = state
        .parked_first
        .iter()
        .map(|p| (p.kind.clone(), p.source_id.clone()))
        .collect();
    let mut vendor_rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| i.document_kind == "supplier")
        .map(|i| {
            let number = opt(&i.target_document_number);
            let mut invoices = posted
                .iter()
                .filter(|p| is_invoice(&p.document_kind))
                .filter(|p| retried.contains(&(p.document_kind.clone(), p.source_id.clone())))
                .filter(|p| {
                    p.vendor
                        .as_deref()
                        .is_some_and(|v| v.contains(&format!("({number})")))
                })
                .map(|p| {
                    format!(
                        "{} → {}",
                        opt(&p.source_document_number),
                        opt(&p.target_document_number)
                    )
                })
                .collect::<Vec<_>>();
            invoices.sort();
            vec![
                opt(&i.source_document_number),
                opt(&i.vendor),
                "→".into(),
                number,
                if invoices.is_empty() {
                    "-".into()
                } else {
                    invoices.join(", ")
                },
            ]
        })
        .collect();
    vendor_rows.sort();
    let created_in_bc = bc
        .vendors()
        .into_iter()
        .filter(|v| !state.vendors_before.contains(&v.number))
        .count();
    out.push(Section::table(
        format!(
            "Vendors created in Business Central for Coupa suppliers without one ({created_in_bc}):"
        ),
        &[
            "Coupa supplier",
            "name",
            "",
            "BC vendor",
            "its parked invoices, posted on the next cycle",
        ],
        vendor_rows,
    ));

    // Still parked.
    let mut parked_rows: Vec<Vec<String>> = parked
        .iter()
        .map(|p| {
            vec![
                opt(&p.source_document_number),
                p.kind.replace('_', " "),
                p.reason.clone(),
            ]
        })
        .collect();
    parked_rows.sort();
    out.push(Section::table(
        format!(
            "Parked after the retries ({}): each reason names the value Business Central lacks",
            parked_rows.len()
        ),
        &["Coupa document", "kind", "reason"],
        parked_rows,
    ));

    // Payments back to Coupa.
    let payments = coupa
        .invoice_json(*po_invoice_id)
        .and_then(|v| v["payments"].as_array().cloned())
        .unwrap_or_default();
    let pay_rows: Vec<Vec<String>> = payments
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().map(str::to_string).unwrap_or_default();
            vec![
                po_invoice_no.clone(),
                po_invoice_id.to_string(),
                s("amount-paid"),
                s("payment-date"),
                s("notes"),
            ]
        })
        .collect();
    out.push(Section::table(
        format!(
            "Payments returned to Coupa after BC invoice {} was marked paid in the simulator ({}):",
            bc_po_invoice
                .as_ref()
                .map(|i| i.number.as_str())
                .unwrap_or("-"),
            pay_rows.len()
        ),
        &[
            "Coupa invoice",
            "Coupa id",
            "amount paid",
            "date",
            "reference",
        ],
        pay_rows,
    ));
    out
}
