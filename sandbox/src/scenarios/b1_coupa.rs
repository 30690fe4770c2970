//! SAP Business One → Coupa: a B1 Service Layer simulator and a Coupa simulator of its own, the
//! configuration and secrets that point the connector at them, and `mlc demo`'s report: B1
//! business partners created as Coupa suppliers, B1 purchase orders as Coupa external purchase
//! orders, B1 A/P invoices as Coupa invoices (one copied from a purchase order, `BaseType` 22,
//! against the Coupa order), an invoice without the supplier's number (`NumAtCard`) parked
//! with its reason, and a B1 outgoing payment made between two cycles recorded on its Coupa
//! invoice.

use std::str::FromStr;

use mlc_shared::ports::{ParkedDoc, SecretError};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{
    BoxFuture, ConfigFragment, Cycle, Expect, Landing, Listen, Sandbox, Scenario, Section,
    SetSecret, Side, Simulator, api_requests,
};
use crate::FaultRule;
use crate::b1::{B1Config, B1Sim, DocKind, DocLine, NewDocument, NewPartner, Protocol};
use crate::coupa::{CoupaConfig, CoupaSim, NewSupplier};

/// The integration's name in the configuration.
pub const INTEGRATION: &str = "b1-coupa";

/// The prefix the configuration gives Coupa PO numbers (`B1-<DocNum>`).
const PO_PREFIX: &str = "B1-";

/// The webhook key the configuration's `b1-webhook-secret` holds (B1 events are signed with it).
const WEBHOOK_KEY: &str = "b1-webhook-key";

/// B1 suppliers: (CardCode, name, tax id, already a Coupa supplier).
const PARTNERS: [(&str, &str, Option<&str>, bool); 2] = [
    ("V10000", "Maxi-Teq", None, true),
    ("V20000", "Northwind GmbH", Some("DE123456789"), false),
];

/// The scenario (see the module documentation).
pub struct B1Coupa;

impl Scenario for B1Coupa {
    fn name(&self) -> &'static str {
        INTEGRATION
    }

    fn simulators(&self) -> Vec<Simulator> {
        vec![
            Simulator {
                name: "b1",
                default_addr: "127.0.0.1:18086",
            },
            Simulator {
                name: "coupa-b1",
                default_addr: "127.0.0.1:18087",
            },
        ]
    }

    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>> {
        Box::pin(async move {
            let b1 = match listen.get("b1") {
                Some(addr) => B1Sim::start_on(B1Config::default(), *addr).await?,
                None => B1Sim::start(B1Config::default()).await?,
            };
            let coupa = match listen.get("coupa-b1") {
                Some(addr) => CoupaSim::start_on(CoupaConfig::default(), *addr).await?,
                None => CoupaSim::start(CoupaConfig::default()).await?,
            };
            Ok(Box::new(B1CoupaSandbox {
                b1,
                coupa,
                orders: Vec::new(),
                invoices: Vec::new(),
                preexisting: Vec::new(),
            }) as Box<dyn Sandbox>)
        })
    }
}

fn systems(b1: &B1Sim, coupa: &CoupaSim) -> String {
    let c = b1.config();
    format!(
        r#"[systems.b1]
type = "sap_b1"
service_root = "{root}"
company_db = "{company}"
user_name = "{user}"
password = "b1-password"
po_number_prefix = "{PO_PREFIX}"
webhook_secret = "b1-webhook-secret"

[systems.coupa-b1]
type = "coupa"
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-b1-client-secret"
api_version = "R40"
"#,
        root = b1.service_root(Protocol::V2),
        company = c.company_db,
        user = c.user_name,
        coupa_url = coupa.base_url(),
        coupa_client = coupa.config().client_id,
    )
}

fn integration() -> String {
    format!(
        r#"[[integrations]]
name = "{INTEGRATION}"
source = "b1"
target = "coupa-b1"
start_from = "2000-01-01T00:00:00Z"

[integrations.sync]
suppliers = "create"
payments = true
"#
    )
}

/// The running simulators, and what was seeded.
pub struct B1CoupaSandbox {
    b1: B1Sim,
    coupa: CoupaSim,
    /// DocEntry of every seeded B1 purchase order.
    orders: Vec<i64>,
    /// DocEntry of every seeded B1 A/P invoice (the first is copied from a purchase order).
    invoices: Vec<i64>,
    /// Coupa ids of the suppliers Coupa had before the connector ran.
    preexisting: Vec<i64>,
}

impl B1CoupaSandbox {
    /// Both B1 suppliers (one already in Coupa), two purchase orders, `invoices` A/P invoices
    /// (the first copied from the first order's line) and, with `unmappable`, an invoice
    /// without the supplier's invoice number.
    fn seed_data(&mut self, invoices: usize, unmappable: bool) {
        for (code, name, tax_id, in_coupa) in PARTNERS {
            if self.b1.partner(code).is_none() {
                self.b1.add_partner(NewPartner {
                    federal_tax_id: tax_id.map(str::to_string),
                    ..NewPartner::supplier(code, name)
                });
            }
            if in_coupa && self.coupa.supplier_id_by_number(code).is_none() {
                let id = self.coupa.add_supplier(NewSupplier::new(name, code));
                self.preexisting.push(id);
            }
        }
        let add = |kind: DocKind, doc: NewDocument| {
            self.b1
                .add_document(kind, doc)
                .expect("the seeded partners exist")
        };
        let paper = add(
            DocKind::PurchaseOrders,
            NewDocument::for_supplier("V10000")
                .line(DocLine::item("A100", "Copy paper", "40", "4.25", "0").costing(&["SALES"]))
                .line(
                    DocLine::item("A200", "Toner cartridge", "2", "89.90", "0")
                        .costing(&["SALES", "EAST"]),
                ),
        );
        let bolts = add(
            DocKind::PurchaseOrders,
            NewDocument::for_supplier("V20000").line(
                DocLine::item("B100", "Steel bolts M8", "500", "0.12", "0").costing(&["PROD"]),
            ),
        );
        self.orders.extend([paper, bolts]);
        for i in 0..invoices {
            let doc = if i == 0 {
                // Copied from the paper order's first line: against the Coupa order.
                NewDocument::for_supplier("V10000")
                    .num_at_card("MT-7001")
                    .line(
                        DocLine::item("A100", "Copy paper", "40", "4.25", "17.00")
                            .costing(&["SALES"])
                            .from_po(paper, 0),
                    )
            } else {
                let (code, prefix) = if i % 2 == 1 {
                    ("V20000", "NW")
                } else {
                    ("V10000", "MT")
                };
                let price = Decimal::new(12_550 + 1_025 * i as i64, 2).to_string();
                NewDocument::for_supplier(code)
                    .num_at_card(&format!("{prefix}-{}", 7001 + i))
                    .line(
                        DocLine::item("S100", "Maintenance service", "1", &price, "0")
                            .costing(&["ADMIN"]),
                    )
            };
            self.invoices.push(add(DocKind::PurchaseInvoices, doc));
        }
        if unmappable {
            // No NumAtCard: the supplier's invoice number is the Coupa key, so it is parked.
            self.invoices.push(add(
                DocKind::PurchaseInvoices,
                NewDocument::for_supplier("V10000").line(DocLine::item(
                    "A300",
                    "Desk lamp",
                    "3",
                    "24.00",
                    "0",
                )),
            ));
        }
    }

    /// B1 pays the first invoice in full, as AP would between two cycles; the B1 payment's
    /// DocEntry, if the invoice is in Coupa already.
    fn pay_first_invoice(&self) -> anyhow::Result<Option<i64>> {
        let Some(doc) = self
            .invoices
            .first()
            .and_then(|e| self.b1.document(DocKind::PurchaseInvoices, *e))
        else {
            return Ok(None);
        };
        let Some(number) = doc.num_at_card.as_deref() else {
            return Ok(None);
        };
        if self.coupa_invoice(&doc.card_code, number).is_none() {
            return Ok(None);
        }
        let total = doc.total().to_string();
        let entry = self
            .b1
            .add_payment(&doc.card_code, "WIRE-0001", &[(doc.doc_entry, &total)])
            .map_err(anyhow::Error::msg)?;
        Ok(Some(entry))
    }

    fn coupa_invoice(&self, supplier: &str, number: &str) -> Option<Value> {
        self.coupa
            .invoices_json()
            .into_iter()
            .find(|i| i["invoice-number"] == number && i["supplier"]["number"] == supplier)
    }
}

/// A Coupa money field (a decimal string) as rust_decimal text; "" when absent.
fn money(v: &Value) -> String {
    v.as_str()
        .and_then(|s| Decimal::from_str(s).ok())
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Sandbox for B1CoupaSandbox {
    fn config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.b1, &self.coupa),
            integrations: integration(),
        }
    }

    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError> {
        set("b1-password", &self.b1.config().password)?;
        set("coupa-b1-client-secret", &self.coupa.config().client_secret)?;
        set("b1-webhook-secret", WEBHOOK_KEY)
    }

    fn seed(&mut self, invoices: usize) {
        self.seed_data(invoices, false);
    }

    fn describe(&self) -> Vec<String> {
        let (b1, coupa) = (&self.b1, &self.coupa);
        let bc = b1.config();
        let cc = coupa.config();
        vec![
            format!(
                "SAP Business One simulator: {}",
                b1.service_root(Protocol::V2)
            ),
            format!(
                "  company / user / password: {} / {} / {}",
                bc.company_db, bc.user_name, bc.password
            ),
            format!("Coupa simulator (B1):       {}", coupa.base_url()),
            format!(
                "  client id / secret:       {} / {}",
                cc.client_id, cc.client_secret
            ),
            format!(
                "Inspection: GET {}/_sandbox/requests, GET {}/_sandbox/requests",
                b1.base_url(),
                coupa.base_url()
            ),
        ]
    }

    fn seed_demo(&mut self, invoices: usize) {
        self.seed_data(invoices.clamp(2, 10), true);
    }

    fn demo_config(&self) -> ConfigFragment {
        self.config()
    }

    /// The first cycle creates the supplier, the orders and the invoices (an invoice that
    /// meets its order or supplier not yet in Coupa is parked and retried by the next poll);
    /// the second finishes those; B1 then pays the first invoice, and the third records the
    /// payment in Coupa.
    fn demo_cycles(&self) -> usize {
        3
    }

    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>> {
        match cycle.number {
            2 => {
                self.pay_first_invoice()?;
                Ok(Vec::new())
            }
            3 => Ok(self.report(cycle)),
            _ => Ok(Vec::new()),
        }
    }

    /// Every seeded purchase order once in Coupa as an external order, with its lines; every
    /// A/P invoice with a supplier invoice number once as a Coupa invoice of that supplier.
    fn landings(&self) -> Vec<Landing> {
        let coupa_orders = self.coupa.purchase_orders_json();
        let coupa_invoices = self.coupa.invoices_json();
        let orders = self
            .orders
            .iter()
            .filter_map(|e| self.b1.document(DocKind::PurchaseOrders, *e))
            .map(|d| {
                let number = format!("{PO_PREFIX}{}", d.doc_num);
                let found: Vec<&Value> = coupa_orders
                    .iter()
                    .filter(|po| po["po-number"] == number.as_str())
                    .collect();
                Landing {
                    document: format!("PO {}", d.doc_num),
                    expect: Expect::Once,
                    copies: found.len(),
                    finished: found.iter().all(|po| {
                        po["order-lines"].as_array().map_or(0, Vec::len) == d.lines.len()
                    }),
                    answers: None,
                }
            });
        let invoices = self
            .invoices
            .iter()
            .filter_map(|e| self.b1.document(DocKind::PurchaseInvoices, *e))
            .map(|d| {
                let number = d.num_at_card.clone().unwrap_or_default();
                let found: Vec<&Value> = coupa_invoices
                    .iter()
                    .filter(|i| {
                        !number.is_empty()
                            && i["invoice-number"] == number.as_str()
                            && i["supplier"]["number"] == d.card_code.as_str()
                    })
                    .collect();
                Landing {
                    document: format!("A/P invoice {} ({number})", d.doc_num),
                    expect: if number.is_empty() {
                        Expect::Never
                    } else {
                        Expect::Once
                    },
                    copies: found.len(),
                    finished: found.iter().all(|i| {
                        i["invoice-lines"].as_array().map_or(0, Vec::len) == d.lines.len()
                    }),
                    answers: None,
                }
            });
        orders.chain(invoices).collect()
    }

    fn fail_next(&self, side: Side, rule: FaultRule) {
        match side {
            Side::Source => self.b1.fail_next(rule),
            Side::Target => self.coupa.fail_next(rule),
        }
    }

    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)> {
        match side {
            Side::Source => vec![
                ("GET", "/PurchaseOrders"),
                ("GET", "/PurchaseInvoices"),
                ("GET", "/BusinessPartners"),
            ],
            Side::Target => vec![
                ("GET", "/api/purchase_orders"),
                ("POST", "/api/purchase_orders"),
                ("GET", "/api/invoices"),
                ("POST", "/api/invoices"),
            ],
        }
    }

    fn expire_credentials(&self) {
        self.b1.expire_sessions();
        self.coupa.expire_tokens();
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.b1.base_url(), self.coupa.base_url()]
    }

    fn requests_served(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("B1", api_requests(&self.b1.requests())),
            ("Coupa", api_requests(&self.coupa.requests())),
            ("B1 logins", self.b1.logins() as usize),
        ]
    }
}

impl B1CoupaSandbox {
    /// Everything that reached Coupa, and what is parked, after the last cycle.
    fn report(&self, cycle: &Cycle<'_>) -> Vec<Section> {
        let suppliers: Vec<Vec<String>> = self
            .coupa
            .suppliers_json()
            .into_iter()
            .filter(|s| {
                s["id"]
                    .as_i64()
                    .is_some_and(|id| !self.preexisting.contains(&id))
            })
            .map(|s| {
                vec![
                    text(&s["number"]),
                    text(&s["name"]),
                    text(&s["tax-id"]),
                    text(&s["id"]),
                ]
            })
            .collect();

        let coupa_orders = self.coupa.purchase_orders_json();
        let orders: Vec<Vec<String>> = self
            .orders
            .iter()
            .filter_map(|e| self.b1.document(DocKind::PurchaseOrders, *e))
            .filter_map(|d| {
                let number = format!("{PO_PREFIX}{}", d.doc_num);
                let po = coupa_orders
                    .iter()
                    .find(|po| po["po-number"] == number.as_str())?;
                Some(vec![
                    d.doc_num.to_string(),
                    d.card_code.clone(),
                    "→".into(),
                    number,
                    text(&po["type"]),
                    po["order-lines"].as_array().map_or(0, Vec::len).to_string(),
                    money(&po["total"]),
                    text(&po["currency"]["code"]),
                    text(&po["status"]),
                ])
            })
            .collect();

        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        for d in self
            .invoices
            .iter()
            .filter_map(|e| self.b1.document(DocKind::PurchaseInvoices, *e))
        {
            let Some(number) = d.num_at_card.as_deref() else {
                continue;
            };
            let Some(inv) = self.coupa_invoice(&d.card_code, number) else {
                continue;
            };
            let against: Vec<String> = inv["invoice-lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["po-number"].as_str().map(str::to_string))
                .collect();
            invoices.push(vec![
                d.doc_num.to_string(),
                number.to_string(),
                d.card_code.clone(),
                d.total().to_string(),
                "→".into(),
                text(&inv["id"]),
                money(&inv["total-with-taxes"]),
                money(&inv["tax-amount"]),
                if against.is_empty() {
                    "-".into()
                } else {
                    against.join(", ")
                },
            ]);
            for p in inv["payments"].as_array().into_iter().flatten() {
                payments.push(vec![
                    number.to_string(),
                    text(&inv["id"]),
                    money(&p["amount-paid"]),
                    text(&p["payment-date"]),
                    text(&p["notes"]),
                ]);
            }
        }

        let parked: Vec<Vec<String>> = cycle
            .parked
            .iter()
            .filter(|p: &&ParkedDoc| p.integration == INTEGRATION)
            .map(|p| {
                vec![
                    p.kind.replace('_', " "),
                    p.source_id.clone(),
                    p.source_document_number.clone().unwrap_or_default(),
                    p.reason.clone(),
                ]
            })
            .collect();

        vec![
            Section::line(format!(
                "\n== SAP Business One → Coupa ({INTEGRATION}): {} purchase orders, {} A/P invoices, \
                 {} suppliers in B1 ==\n",
                self.orders.len(),
                self.invoices.len(),
                PARTNERS.len()
            )),
            Section::table(
                format!(
                    "Suppliers created in Coupa from B1 business partners ({}):",
                    suppliers.len()
                ),
                &["B1 CardCode", "name", "tax id", "Coupa supplier id"],
                suppliers,
            ),
            Section::table(
                format!(
                    "B1 purchase orders in Coupa as external orders ({}):",
                    orders.len()
                ),
                &[
                    "B1 DocNum",
                    "supplier",
                    "",
                    "Coupa PO",
                    "type",
                    "lines",
                    "total",
                    "currency",
                    "status",
                ],
                orders,
            ),
            Section::table(
                format!("B1 A/P invoices in Coupa ({}):", invoices.len()),
                &[
                    "B1 DocNum",
                    "NumAtCard",
                    "supplier",
                    "B1 total",
                    "",
                    "Coupa invoice",
                    "Coupa total",
                    "tax",
                    "against PO",
                ],
                invoices,
            ),
            Section::table(
                format!(
                    "B1 payments recorded on Coupa invoices ({}):",
                    payments.len()
                ),
                &[
                    "invoice",
                    "Coupa invoice",
                    "amount paid",
                    "payment date",
                    "reference",
                ],
                payments,
            ),
            Section::table(
                format!("Parked, with the reason ({}):", parked.len()),
                &["kind", "B1 DocEntry", "B1 number", "reason"],
                parked,
            ),
        ]
    }
}
