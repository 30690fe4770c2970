//! Basware → Business Central: the Basware simulator and a BC simulator of its own, the
//! configuration and secrets that point the connector at them, and `mlc demo`'s report:
//! accounting documents posted (a line split across cost centres, a credit note), their
//! transfer responses, a document that cannot be mapped answered with a failure, BC master data
//! imported into Basware, and a payment response for an invoice marked paid in BC.

use mlc_shared::ports::SecretError;

use super::{
    BoxFuture, ConfigFragment, Cycle, Expect, Landing, Listen, Sandbox, Scenario, Section,
    SetSecret, Side, Simulator, api_requests, bc_records,
};
use crate::FaultRule;
use crate::basware::{BASWARE_SCOPE, BaswareConfig, BaswareSim, NewCodingRow, NewDocument};
use crate::bc::{BcConfig, BcSim};
use crate::demo;

/// The integration's name in the configuration.
pub const INTEGRATION: &str = "basware-bc";

/// Basware account codes → BC G/L accounts (`demo::GL_ACCOUNTS`); `4999` is left unmapped.
const ACCOUNTS: &[(&str, &str)] = &[
    ("4000", "6100"),
    ("4100", "6200"),
    ("4200", "6300"),
    ("4300", "6400"),
];
/// The account code no mapping covers: its document is answered with a failure.
const UNMAPPED_ACCOUNT: &str = "4999";
const VENDORS: &[&str] = &["V10000", "V20000", "V30000", "V40000"];

/// The scenario (see the module documentation).
pub struct BaswareBc;

impl Scenario for BaswareBc {
    fn name(&self) -> &'static str {
        INTEGRATION
    }

    fn simulators(&self) -> Vec<Simulator> {
        vec![
            Simulator {
                name: "basware",
                default_addr: "127.0.0.1:18084",
            },
            Simulator {
                name: "bc-basware",
                default_addr: "127.0.0.1:18085",
            },
        ]
    }

    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>> {
        Box::pin(async move {
            let basware = match listen.get("basware") {
                Some(addr) => BaswareSim::start_on(BaswareConfig::default(), *addr).await?,
                None => BaswareSim::start(BaswareConfig::default()).await?,
            };
            let bc = match listen.get("bc-basware") {
                Some(addr) => BcSim::start_on(BcConfig::default(), *addr).await?,
                None => BcSim::start(BcConfig::default()).await?,
            };
            Ok(Box::new(BaswareBcSandbox {
                basware,
                bc,
                seeded: Vec::new(),
                paid: None,
            }) as Box<dyn Sandbox>)
        })
    }
}

fn systems(basware: &BaswareSim, bc: &BcSim) -> String {
    let bcc = bc.config();
    let scopes: Vec<String> = BASWARE_SCOPE
        .split_whitespace()
        .map(|s| format!("\"{s}\""))
        .collect();
    format!(
        r#"[systems.basware]
type = "basware"
base_url = "{bw_url}"
token_url = "{bw_token}"
client_id = "{bw_client}"
client_secret = "basware-client-secret"
scopes = [{scopes}]
webhook_secret = "basware-webhook-secret"

[systems.basware.master_data]
company_code = "BW00"
vendors = true
accounts = true
dimensions = {{ DEPARTMENT = "cost_centers", PROJECT = "ACC_LIST_1" }}

[systems.bc-basware]
type = "business_central"
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-basware-client-secret"
"#,
        bw_url = basware.base_url(),
        bw_token = basware.token_url(),
        bw_client = basware.config().client_id,
        scopes = scopes.join(", "),
        bc_url = bc.base_url(),
        tenant = bcc.tenant,
        env = bcc.environment,
        company = bc.company_id(),
        bc_client = bcc.client_id,
    )
}

fn integration() -> String {
    let mut out = format!(
        r#"[[integrations]]
name = "{INTEGRATION}"
kind = "basware_to_business_central"
source = "basware"
target = "bc-basware"
start_from = "2000-01-01T00:00:00Z"

[integrations.sync]
payments = true

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

/// The webhook token the demo's subscription would use (`mlc` does not subscribe yet).
const WEBHOOK_TOKEN: &str = "basware-webhook-token";

/// The running simulators, and what was seeded.
pub struct BaswareBcSandbox {
    basware: BaswareSim,
    bc: BcSim,
    /// (invoiceId, invoice number) of every seeded document.
    seeded: Vec<(String, String)>,
    /// The document whose BC invoice the demo marks paid after the first cycle.
    paid: Option<(String, String)>,
}

impl BaswareBcSandbox {
    /// `documents` invoices (every third split across two cost centres), one credit note and
    /// one document coded to an account no mapping covers.
    fn seed_documents(&mut self, documents: usize) {
        demo::seed_bc(&self.bc);
        for i in 0..documents {
            let number = format!("BW-{}", 5001 + i);
            let account = ACCOUNTS[i % ACCOUNTS.len()].0;
            let mut doc = NewDocument::invoice(&number, VENDORS[i % VENDORS.len()]);
            doc = if i % 3 == 0 {
                doc.coding_row(
                    NewCodingRow::new(account, &format!("{}.25", 100 + i * 7))
                        .cost_center("ADM")
                        .project("P-100")
                        .tax("T24", "24"),
                )
                .coding_row(
                    NewCodingRow::new(account, &format!("{}.75", 40 + i))
                        .cost_center("SALES")
                        .tax("T24", "24"),
                )
            } else {
                doc.coding_row(
                    NewCodingRow::new(account, &format!("{}.50", 250 + i * 11))
                        .cost_center("PROD")
                        .tax("T24", "24"),
                )
            };
            let id = self.basware.add_document(doc);
            self.seeded.push((id, number));
        }
        let credit = NewDocument::credit_note("BW-CN-9001", "V10000").coding_row(
            NewCodingRow::new("4000", "80.00")
                .cost_center("ADM")
                .tax("T24", "24"),
        );
        self.seeded
            .push((self.basware.add_document(credit), "BW-CN-9001".into()));
        let unmapped = NewDocument::invoice("BW-9002", "V20000")
            .coding_row(NewCodingRow::new(UNMAPPED_ACCOUNT, "15.00").cost_center("ADM"));
        self.seeded
            .push((self.basware.add_document(unmapped), "BW-9002".into()));
    }
}

impl Sandbox for BaswareBcSandbox {
    fn config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.basware, &self.bc),
            integrations: integration(),
        }
    }

    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError> {
        set(
            "basware-client-secret",
            &self.basware.config().client_secret,
        )?;
        set("bc-basware-client-secret", &self.bc.config().client_secret)?;
        set("basware-webhook-secret", WEBHOOK_TOKEN)
    }

    fn seed(&mut self, invoices: usize) {
        self.seed_documents(invoices);
    }

    fn describe(&self) -> Vec<String> {
        let (bw, bc) = (&self.basware, &self.bc);
        let bwc = bw.config();
        let bcc = bc.config();
        vec![
            format!("Basware simulator:          {}", bw.base_url()),
            format!("  token URL:                {}", bw.token_url()),
            format!(
                "  client id / secret:       {} / {} (HTTP Basic)",
                bwc.client_id, bwc.client_secret
            ),
            format!("Business Central simulator for Basware: {}", bc.base_url()),
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
                "Inspection: GET {}/_sandbox/basware/documents, GET {}/_sandbox/invoices",
                bw.base_url(),
                bc.base_url()
            ),
        ]
    }

    fn seed_demo(&mut self, invoices: usize) {
        self.seed_documents(invoices.min(12));
    }

    fn demo_config(&self) -> ConfigFragment {
        self.config()
    }

    /// The first cycle posts and answers the documents and sends the master data; the
    /// second sees the master data in progress and sends the payment response of the invoice
    /// marked paid in between; the third finds the master data processed.
    fn demo_cycles(&self) -> usize {
        3
    }

    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>> {
        match cycle.number {
            1 => {
                let sections = self.documents_report();
                // Mark the first posted invoice paid in BC: the next cycle answers it.
                let invoices = self.bc.purchase_invoices();
                self.paid = self.seeded.iter().find_map(|(id, number)| {
                    let inv = invoices.iter().find(|i| {
                        i.vendor_invoice_number.eq_ignore_ascii_case(number) && i.status == "Open"
                    })?;
                    self.bc.mark_paid(inv.id);
                    Some((id.clone(), number.clone()))
                });
                Ok(sections)
            }
            3 => Ok(self.sync_report()),
            _ => Ok(Vec::new()),
        }
    }

    /// Every seeded document once in BC (an invoice or a credit memo), posted, with lines, and
    /// answered once; the one coded to an unmapped account never in BC.
    fn landings(&self) -> Vec<Landing> {
        let invoices = self.bc.purchase_invoices();
        let memos = self.bc.purchase_credit_memos();
        self.seeded
            .iter()
            .map(|(id, number)| {
                let found = bc_records(&invoices, &memos, number);
                Landing {
                    document: number.clone(),
                    expect: if number == "BW-9002" {
                        Expect::Never
                    } else {
                        Expect::Once
                    },
                    copies: found.len(),
                    finished: found.iter().all(|f| *f),
                    answers: self
                        .basware
                        .document(id)
                        .map(|d| d.transfer_responses.len()),
                }
            })
            .collect()
    }

    fn fail_next(&self, side: Side, rule: FaultRule) {
        match side {
            Side::Source => self.basware.fail_next(rule),
            Side::Target => self.bc.fail_next(rule),
        }
    }

    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)> {
        match side {
            Side::Source => vec![
                ("GET", "/v1/accountingDocuments"),
                ("POST", "/acknowledge"),
                ("POST", "/transferResponses"),
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
        self.basware.expire_tokens();
        self.bc.expire_tokens();
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.basware.base_url(), self.bc.base_url()]
    }

    fn requests_served(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("Basware", api_requests(&self.basware.requests())),
            ("BC", api_requests(&self.bc.requests())),
        ]
    }
}

impl BaswareBcSandbox {
    /// Master data imported and the payment response, after the last cycle.
    fn sync_report(&self) -> Vec<Section> {
        let imports: Vec<Vec<String>> = self
            .basware
            .imports()
            .into_iter()
            .map(|i| {
                let confirmed = i
                    .items
                    .iter()
                    .filter(|x| x.status == "Success" || x.status == "NotProcessed")
                    .count();
                vec![
                    i.entity_type.clone(),
                    i.generic_list_key.clone().unwrap_or_default(),
                    i.records.to_string(),
                    confirmed.to_string(),
                    i.request_status.clone(),
                ]
            })
            .collect();
        let payments: Vec<Vec<String>> = self
            .paid
            .iter()
            .filter_map(|(id, number)| {
                let doc = self.basware.document(id)?;
                Some(
                    doc.payment_responses
                        .iter()
                        .map(|p| {
                            vec![
                                number.clone(),
                                p["paidTotal"].to_string(),
                                p["paymentDate"].as_str().unwrap_or_default().to_string(),
                                p["paymentNumber"].as_str().unwrap_or_default().to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .flatten()
            .collect();
        vec![
            Section::table(
                format!(
                    "BC master data imported into Basware ({} requests, each followed through requestStatus):",
                    imports.len()
                ),
                &["entity", "list", "records", "confirmed", "request status"],
                imports,
            ),
            Section::table(
                format!(
                    "Payment responses sent to Basware for invoices paid in Business Central ({}):",
                    payments.len()
                ),
                &[
                    "Basware invoice",
                    "paidTotal",
                    "paymentDate",
                    "paymentNumber",
                ],
                payments,
            ),
        ]
    }

    /// Documents posted and answered, after the first cycle.
    fn documents_report(&self) -> Vec<Section> {
        let invoices = self.bc.purchase_invoices();
        let memos = self.bc.purchase_credit_memos();
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        for (id, number) in &self.seeded {
            let Some(doc) = self.basware.document(id) else {
                continue;
            };
            let last = doc.transfer_responses.last();
            let success = last.is_some_and(|r| r["success"] == true);
            if last.is_some() && !success {
                let why = last
                    .and_then(|r| r["responseMessage"].as_str())
                    .unwrap_or_default()
                    .to_string();
                failures.push(vec![number.clone(), doc.processing_status.clone(), why]);
                continue;
            }
            let (vendor, lines, total, bc_no) = match invoices
                .iter()
                .find(|i| i.vendor_invoice_number.eq_ignore_ascii_case(number))
            {
                Some(i) => (
                    i.vendor_number.clone(),
                    i.lines.len(),
                    i.total,
                    i.number.clone(),
                ),
                None => match memos
                    .iter()
                    .find(|m| m.vendor_credit_memo_number.eq_ignore_ascii_case(number))
                {
                    Some(m) => (
                        m.vendor_number.clone(),
                        m.lines.len(),
                        m.total,
                        format!("{} (credit memo)", m.number),
                    ),
                    None => (String::new(), 0, Default::default(), "-".into()),
                },
            };
            rows.push(vec![
                number.clone(),
                vendor,
                lines.to_string(),
                total.to_string(),
                "→".into(),
                bc_no,
                doc.processing_status.clone(),
                last.and_then(|r| r["voucherNumber1"].as_str())
                    .unwrap_or("-")
                    .to_string(),
            ]);
        }
        vec![
            Section::line(format!(
                "\n== Basware → Business Central ({INTEGRATION}): {} accounting documents waiting for transfer ==\n",
                self.seeded.len()
            )),
            Section::table(
                format!(
                    "Posted in Business Central and answered to Basware ({}):",
                    rows.len()
                ),
                &[
                    "Basware invoice",
                    "vendor",
                    "BC lines",
                    "BC total",
                    "",
                    "BC document",
                    "Basware status",
                    "voucherNumber1",
                ],
                rows,
            ),
            Section::table(
                format!("Answered to Basware with a failure ({}):", failures.len()),
                &["Basware invoice", "Basware status", "responseMessage"],
                failures,
            ),
        ]
    }
}
