//! SAP Concur → Business Central: the Concur simulator and a BC simulator of its own, the
//! configuration and secrets that point the connector at them (the refresh token from a
//! simulated company request-token exchange), and `mlc demo`'s report: invoice payment requests
//! and expense reports acknowledged, posted in BC (an expense report split over two departments
//! with a personal company-card charge netted, its card part on the card issuer's vendor) and
//! confirmed to Concur with the BC numbers; one request coded to an account no mapping covers,
//! parked.

use mlc_shared::ports::SecretError;

use super::{
    BoxFuture, ConfigFragment, Cycle, Expect, Landing, Listen, Sandbox, Scenario, Section,
    SetSecret, Side, Simulator, api_requests, bc_records,
};
use crate::FaultRule;
use crate::bc::{BcConfig, BcSim};
use crate::concur::{
    ConcurConfig, ConcurSim, NewAllocation, NewEntry, NewExpense, NewInvoice, NewJournal,
};
use crate::demo;

/// The integration's name in the configuration.
pub const INTEGRATION: &str = "concur-bc";

/// Concur account codes → BC G/L accounts; `OTHER` is left unmapped.
const ACCOUNTS: &[(&str, &str)] = &[
    ("OFFICE", "6100"),
    ("IT", "6200"),
    ("TRAVEL", "6300"),
    ("CONSULT", "6400"),
    ("CARDCLR", "6300"),
];
const VENDORS: &[&str] = &["V10000", "V20000", "V30000", "V40000"];
/// The employee of the demo's reports (its BC vendor has the same number, §2.7.1).
const EMPLOYEE: (&str, &str) = ("E1001", "Charles Doe");
/// The company-card issuer's BC vendor.
const CARD_VENDOR: (&str, &str) = ("V-CARD", "Corporate Card Bank");

pub struct ConcurBc;

impl Scenario for ConcurBc {
    fn name(&self) -> &'static str {
        INTEGRATION
    }

    fn simulators(&self) -> Vec<Simulator> {
        vec![
            Simulator {
                name: "concur",
                default_addr: "127.0.0.1:18088",
            },
            Simulator {
                name: "bc-concur",
                default_addr: "127.0.0.1:18089",
            },
        ]
    }

    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>> {
        Box::pin(async move {
            let concur = match listen.get("concur") {
                Some(addr) => ConcurSim::start_on(ConcurConfig::default(), *addr).await?,
                None => ConcurSim::start(ConcurConfig::default()).await?,
            };
            let bc = match listen.get("bc-concur") {
                Some(addr) => BcSim::start_on(BcConfig::default(), *addr).await?,
                None => BcSim::start(BcConfig::default()).await?,
            };
            Ok(Box::new(ConcurBcSandbox {
                concur,
                bc,
                seeded: Vec::new(),
            }) as Box<dyn Sandbox>)
        })
    }
}

fn systems(concur: &ConcurSim, bc: &BcSim) -> String {
    let bcc = bc.config();
    format!(
        r#"[systems.concur]
type = "concur"
# The app's geolocation: every later call goes to the one the token response names.
base_url = "{app}"
client_id = "{client}"
client_secret = "concur-client-secret"
refresh_token_secret = "concur-refresh-token"
card_vendors = {{ CBCP = "{card}" }}
# Concur's public key (PEM, or base64 DER on one line) for `Concur-Signature` of events on
# /webhooks/concur-bc/concur.
webhook_public_key = "concur-public-key"

[systems.bc-concur]
type = "business_central"
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-concur-client-secret"
"#,
        app = concur.app_url(),
        client = concur.config().client_id,
        card = CARD_VENDOR.0,
        bc_url = bc.base_url(),
        tenant = bcc.tenant,
        env = bcc.environment,
        company = bc.company_id(),
        bc_client = bcc.client_id,
    )
}

fn integration(payments: bool) -> String {
    let mut out = format!(
        r#"[[integrations]]
name = "{INTEGRATION}"
kind = "concur_to_business_central"
source = "concur"
target = "bc-concur"

[integrations.sync]
payments = {payments}

[integrations.mapping]
gl_account = {{ segment = 1, translate = true }}
dimensions = [{{ segment = 2, dimension = "DEPARTMENT" }}, {{ segment = 3, dimension = "PROJECT" }}]

[integrations.mapping.gl_accounts]
"#
    );
    for (code, gl) in ACCOUNTS {
        out.push_str(&format!("\"{code}\" = \"{gl}\"\n"));
    }
    out
}

/// What was seeded: (FIS id, number, kind).
pub struct ConcurBcSandbox {
    concur: ConcurSim,
    bc: BcSim,
    seeded: Vec<(String, String, &'static str)>,
}

impl ConcurBcSandbox {
    fn seed_documents(&mut self, invoices: usize) {
        demo::seed_bc(&self.bc);
        self.bc.add_vendor(EMPLOYEE.0, EMPLOYEE.1);
        self.bc.add_vendor(CARD_VENDOR.0, CARD_VENDOR.1);
        for i in 0..invoices {
            let number = format!("CI-{}", 7001 + i);
            let account = ACCOUNTS[i % 4].0;
            let inv = NewInvoice::new(&number, VENDORS[i % VENDORS.len()])
                .line(
                    "Merchandise",
                    &format!("{}.40", 120 + i * 13),
                    account,
                    Some("ADM"),
                )
                .line("Freight", "15.00", account, Some("SALES"));
            self.seeded
                .push((self.concur.add_invoice(inv), number, "invoice"));
        }
        let report = NewExpense::new("RPT-2026-0042", EMPLOYEE.0)
            .entry(
                NewEntry::new("LODNG", "Hotel", "CASH", "300.00")
                    .allocation(
                        NewAllocation::new("60")
                            .custom(1, "ADM")
                            .custom(2, "P-100")
                            .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "180.00")),
                    )
                    .allocation(
                        NewAllocation::new("40")
                            .custom(1, "SALES")
                            .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "120.00")),
                    ),
            )
            .entry(
                NewEntry::new("TAXI", "Taxi", "CBCP", "49.00")
                    .personal()
                    .allocation(
                        NewAllocation::new("100")
                            .journal(NewJournal::new("COMP", "CBCP", "CARDCLR", "49"))
                            .journal(NewJournal::new("EMPL", "COMP", "CARDCLR", "-49")),
                    ),
            )
            .entry(
                NewEntry::new("AIRFR", "Airfare", "CBCP", "410.00").allocation(
                    NewAllocation::new("100")
                        .custom(1, "SALES")
                        .journal(NewJournal::new("COMP", "CBCP", "TRAVEL", "410")),
                ),
            );
        self.seeded.push((
            self.concur.add_expense(report),
            "RPT-2026-0042".into(),
            "expense",
        ));
        let unmapped = NewInvoice::new("CI-9002", "V20000").line("Misc", "15.00", "OTHER", None);
        self.seeded.push((
            self.concur.add_invoice(unmapped),
            "CI-9002".into(),
            "invoice",
        ));
    }

    /// Payment confirmations Concur accepted, after the second cycle.
    fn payments_report(&self) -> Vec<Section> {
        let mut rows = Vec::new();
        for (id, number, _) in &self.seeded {
            let Some(doc) = self.concur.document(id) else {
                continue;
            };
            for p in &doc.payment_confirmations {
                let d = &p["clearingDetails"][0];
                rows.push(vec![
                    number.clone(),
                    p["processingStatusCode"].as_str().unwrap_or("").to_string(),
                    d["clearingAmount"].to_string(),
                    d["clearingCurrency"].as_str().unwrap_or("").to_string(),
                    d["clearingReference"]["paymentRef"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    doc.status.clone(),
                ]);
            }
        }
        vec![Section::table(
            format!(
                "Payment confirmations sent to Concur after the employee's BC invoice was marked paid ({}; FIS takes them for expense reports only):",
                rows.len()
            ),
            &[
                "Concur report",
                "code",
                "amount",
                "currency",
                "paymentRef",
                "Concur status",
            ],
            rows,
        )]
    }

    fn report(&self) -> Vec<Section> {
        let invoices = self.bc.purchase_invoices();
        let mut rows = Vec::new();
        let mut waiting = Vec::new();
        for (id, number, kind) in &self.seeded {
            let Some(doc) = self.concur.document(id) else {
                continue;
            };
            let confirmed = doc.posting_confirmations.last();
            let mine: Vec<_> = invoices
                .iter()
                .filter(|i| {
                    i.vendor_invoice_number.eq_ignore_ascii_case(number)
                        || i.vendor_invoice_number
                            .to_ascii_uppercase()
                            .starts_with(&format!("{}-", number.to_ascii_uppercase()))
                })
                .collect();
            if mine.is_empty() {
                waiting.push(vec![
                    number.clone(),
                    (*kind).to_string(),
                    doc.status.clone(),
                ]);
                continue;
            }
            for i in mine {
                rows.push(vec![
                    number.clone(),
                    (*kind).to_string(),
                    i.vendor_number.clone(),
                    i.lines.len().to_string(),
                    i.total.to_string(),
                    "→".into(),
                    i.number.clone(),
                    doc.status.clone(),
                    confirmed
                        .map(|c| {
                            c["overallPostingStatusCode"]
                                .as_str()
                                .unwrap_or("")
                                .to_string()
                        })
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
        }
        vec![
            Section::line(format!(
                "\n== SAP Concur → Business Central ({INTEGRATION}): {} documents ready for integration ==\n",
                self.seeded.len()
            )),
            Section::table(
                format!(
                    "Posted in Business Central and confirmed to Concur ({} BC invoices; the expense report is one for the employee and one for the card issuer, the personal taxi netted):",
                    rows.len()
                ),
                &[
                    "Concur document",
                    "type",
                    "BC vendor",
                    "BC lines",
                    "BC total",
                    "",
                    "BC invoice",
                    "Concur status",
                    "confirmation",
                ],
                rows,
            ),
            Section::table(
                format!(
                    "Acknowledged, parked here (no mapping), no confirmation sent ({}):",
                    waiting.len()
                ),
                &["Concur document", "type", "Concur status"],
                waiting,
            ),
        ]
    }
}

impl Sandbox for ConcurBcSandbox {
    fn config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.concur, &self.bc),
            integrations: integration(false),
        }
    }

    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError> {
        set("concur-client-secret", &self.concur.config().client_secret)?;
        set("bc-concur-client-secret", &self.bc.config().client_secret)?;
        set("concur-public-key", &self.concur.event_public_key_base64())?;
        // What the one-time company request-token exchange leaves (§2.2): a refresh token.
        set("concur-refresh-token", &self.concur.issue_refresh_token())
    }

    fn seed(&mut self, invoices: usize) {
        self.seed_documents(invoices);
    }

    fn describe(&self) -> Vec<String> {
        let (c, bc) = (&self.concur, &self.bc);
        let bcc = bc.config();
        vec![
            format!("SAP Concur simulator (app geolocation): {}", c.app_url()),
            format!(
                "  API geolocation (from the token):      {}",
                c.geolocation()
            ),
            format!(
                "  client id / secret:       {} / {}",
                c.config().client_id,
                c.config().client_secret
            ),
            format!("Business Central simulator for Concur: {}", bc.base_url()),
            format!(
                "  client id / secret:       {} / {}",
                bcc.client_id, bcc.client_secret
            ),
            format!("  company id:               {}", bc.company_id()),
            format!(
                "Inspection: GET {}/_sandbox/concur/documents, GET {}/_sandbox/invoices",
                c.app_url().trim_end_matches("/app"),
                bc.base_url()
            ),
        ]
    }

    fn seed_demo(&mut self, invoices: usize) {
        self.seed_documents(invoices.min(6));
    }

    fn demo_config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.concur, &self.bc),
            integrations: integration(true),
        }
    }

    /// The first cycle posts and confirms; between the two the employee's invoice is marked
    /// paid in BC; the second confirms the payment to Concur.
    fn demo_cycles(&self) -> usize {
        2
    }

    /// A request is one BC invoice; a report two (the employee's and the card issuer's, each
    /// once): `copies` is 1 when every one of them is there once, 0 when one is missing, 2 when
    /// one is there twice. Answers are the posting confirmations Concur received.
    fn landings(&self) -> Vec<Landing> {
        let invoices = self.bc.purchase_invoices();
        self.seeded
            .iter()
            .map(|(id, number, kind)| {
                let expected: Vec<String> = if *kind == "expense" {
                    vec![number.clone(), format!("{number}-CBCP")]
                } else {
                    vec![number.clone()]
                };
                let per: Vec<Vec<bool>> = expected
                    .iter()
                    .map(|n| bc_records(&invoices, &[], n))
                    .collect();
                // Part of a report posted is not "once": 0, like none of it.
                let copies = if per.iter().any(|p| p.len() > 1) {
                    per.iter().map(Vec::len).max().unwrap_or(0)
                } else if per.iter().all(|p| p.len() == 1) {
                    1
                } else {
                    0
                };
                Landing {
                    document: number.clone(),
                    expect: if number == "CI-9002" {
                        Expect::Never
                    } else {
                        Expect::Once
                    },
                    copies,
                    finished: per.iter().flatten().all(|f| *f),
                    answers: self
                        .concur
                        .document(id)
                        .map(|d| d.posting_confirmations.len()),
                }
            })
            .collect()
    }

    fn fail_next(&self, side: Side, rule: FaultRule) {
        match side {
            Side::Source => self.concur.fail_next(rule),
            Side::Target => self.bc.fail_next(rule),
        }
    }

    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)> {
        match side {
            Side::Source => vec![
                ("GET", "/transactions"),
                ("POST", "/acknowledgements"),
                ("POST", "/postingconfirmations"),
            ],
            Side::Target => vec![
                ("GET", "/purchaseInvoices"),
                ("POST", "/purchaseInvoices"),
                ("POST", "Microsoft.NAV.post"),
                ("POST", "/dimensionSetLines"),
            ],
        }
    }

    fn expire_credentials(&self) {
        self.concur.expire_tokens();
        self.bc.expire_tokens();
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.concur.base_url(), self.bc.base_url()]
    }

    fn requests_served(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("Concur", api_requests(&self.concur.requests())),
            ("BC", api_requests(&self.bc.requests())),
        ]
    }

    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>> {
        Ok(match cycle.number {
            1 => {
                let sections = self.report();
                let employee = self
                    .bc
                    .purchase_invoices()
                    .into_iter()
                    .find(|i| i.vendor_number == EMPLOYEE.0 && i.status == "Open");
                if let Some(inv) = employee {
                    self.bc.mark_paid(inv.id);
                }
                sections
            }
            2 => self.payments_report(),
            _ => Vec::new(),
        })
    }
}
