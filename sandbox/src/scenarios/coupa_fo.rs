//! Coupa → Dynamics 365 Finance & Operations: a Coupa simulator and the F&O simulator (two legal
//! entities), the configuration and secrets that point the connector at them, and `mlc demo`'s
//! report: approved invoices written into the legal entity their account's first segment names,
//! one parked with F&O's words (its vendor is not in that legal entity), and, after F&O posts
//! and pays one, its payment returned to Coupa.

use mlc_shared::ports::{AuditItem, ParkedDoc, SecretError};

use super::{
    BoxFuture, ConfigFragment, Cycle, Expect, Landing, Listen, Sandbox, Scenario, Section,
    SetSecret, Side, Simulator, api_requests,
};
use crate::FaultRule;
use crate::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use crate::fo::{FoConfig, FoInvoiceView, FoSim, seed};

/// The integration's name in the configuration.
pub const INTEGRATION: &str = "coupa-fo";

/// Coupa suppliers and their F&O vendor accounts: US-101 is in both legal entities, DE-001 in
/// demf only.
const SUPPLIERS: [(&str, &str, &str); 2] = [
    ("Fabrikam, Inc.", "SUP-101", "US-101"),
    ("Contoso GmbH", "SUP-102", "DE-001"),
];

/// The scenario (see the module documentation).
pub struct CoupaFo;

impl Scenario for CoupaFo {
    fn name(&self) -> &'static str {
        INTEGRATION
    }

    fn simulators(&self) -> Vec<Simulator> {
        vec![
            Simulator {
                name: "coupa-fo",
                default_addr: "127.0.0.1:18082",
            },
            Simulator {
                name: "fo",
                default_addr: "127.0.0.1:18083",
            },
        ]
    }

    fn start<'a>(&'a self, listen: &'a Listen) -> BoxFuture<'a, anyhow::Result<Box<dyn Sandbox>>> {
        Box::pin(async move {
            let coupa = match listen.get("coupa-fo") {
                Some(addr) => CoupaSim::start_on(CoupaConfig::default(), *addr).await?,
                None => CoupaSim::start(CoupaConfig::default()).await?,
            };
            let fo = match listen.get("fo") {
                Some(addr) => FoSim::start_on(FoConfig::default(), *addr).await?,
                None => FoSim::start(FoConfig::default()).await?,
            };
            Ok(Box::new(CoupaFoSandbox {
                coupa,
                fo,
                demo: Vec::new(),
            }) as Box<dyn Sandbox>)
        })
    }
}

pub struct CoupaFoSandbox {
    coupa: CoupaSim,
    fo: FoSim,
    /// The demo's Coupa invoices: (number, legal entity).
    demo: Vec<(String, String)>,
}

fn systems(coupa: &CoupaSim, fo: &FoSim) -> String {
    let c = fo.config();
    format!(
        r#"[systems.coupa-fo]
type = "coupa"
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-fo-client-secret"
api_version = "R40"
webhook_secret = "coupa-fo-webhook-secret"

[systems.fo]
type = "finance_operations"
environment_url = "https://{host}"
api_url = "{fo_url}"
token_url = "{token_url}"
tenant = "{tenant}"
client_id = "{fo_client}"
client_secret = "fo-client-secret"
default_legal_entity = "{default}"
ledger_dimension_format = {format:?}
"#,
        coupa_url = coupa.base_url(),
        coupa_client = coupa.config().client_id,
        host = c.environment_host,
        fo_url = fo.base_url(),
        token_url = fo.token_url(),
        tenant = c.tenant,
        fo_client = c.client_id,
        default = c.default_company,
        format = seed::LEDGER_FORMAT,
    )
}

fn integration(sync: &str) -> String {
    let suppliers: String = SUPPLIERS
        .iter()
        .map(|(_, number, vendor)| format!("\"{number}\" = \"{vendor}\"\n"))
        .collect();
    format!(
        r#"[[integrations]]
name = "{INTEGRATION}"
source = "coupa-fo"
target = "fo"
start_from = "2000-01-01T00:00:00Z"

[integrations.sync]
{sync}
[integrations.mapping]
gl_account = {{ segment = 2 }}
dimensions = [{{ segment = 3, dimension = "BusinessUnit" }}, {{ segment = 4, dimension = "CostCenter" }}]
# The account's first segment names the legal entity.
legal_entity_segment = 1

[integrations.mapping.legal_entities]
US = "usmf"
DE = "demf"

[integrations.mapping.suppliers]
{suppliers}"#
    )
}

impl CoupaFoSandbox {
    /// Master data in both systems and `invoices` approved Coupa invoices, alternately coded to
    /// the US and the DE legal entity; with `parked`, one more whose vendor F&O does not have in
    /// its legal entity.
    fn seed_data(&mut self, invoices: usize, parked: bool) {
        seed::seed(&self.fo);
        for (name, number, _) in SUPPLIERS {
            if self.coupa.supplier_id_by_number(number).is_none() {
                self.coupa.add_supplier(NewSupplier::new(name, number));
            }
        }
        let fabrikam = self.coupa.supplier_id_by_number("SUP-101").expect("seeded");
        let contoso = self.coupa.supplier_id_by_number("SUP-102").expect("seeded");
        let mut add = |supplier: i64, number: String, entity: &str, price: &str| {
            let mut inv = NewInvoice::approved(supplier, &number);
            inv.lines.push(NewInvoiceLine::qty(
                "Office supplies",
                "2",
                price,
                &[entity, "600100", "001", "OU_1"],
            ));
            inv.lines.push(NewInvoiceLine::amount(
                "Travel",
                "45.10",
                &[entity, "600200", "002", ""],
            ));
            self.coupa.add_invoice(inv);
            let le = if entity == "US" { "usmf" } else { "demf" };
            self.demo.push((number, le.to_string()));
        };
        for i in 0..invoices {
            let entity = if i % 2 == 0 { "US" } else { "DE" };
            add(fabrikam, format!("FO-{:05}", i + 1), entity, "12.50");
        }
        if parked {
            // DE-001 exists in demf only: F&O refuses it in usmf.
            add(contoso, "FO-CONTOSO-1".into(), "US", "99.00");
        }
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

impl Sandbox for CoupaFoSandbox {
    fn config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.coupa, &self.fo),
            integrations: integration(""),
        }
    }

    fn store_secrets(&self, set: SetSecret<'_>) -> Result<(), SecretError> {
        set("coupa-fo-client-secret", &self.coupa.config().client_secret)?;
        set(
            "coupa-fo-webhook-secret",
            &self.coupa.config().webhook_secret,
        )?;
        set("fo-client-secret", &self.fo.config().client_secret)
    }

    fn seed(&mut self, invoices: usize) {
        self.seed_data(invoices, false);
    }

    fn describe(&self) -> Vec<String> {
        let (coupa, fo) = (&self.coupa, &self.fo);
        let cc = coupa.config();
        let fc = fo.config();
        vec![
            format!("Coupa simulator (F&O):      {}", coupa.base_url()),
            format!(
                "  client id / secret:       {} / {}",
                cc.client_id, cc.client_secret
            ),
            format!("F&O simulator:              {}", fo.base_url()),
            format!("  OData root:               {}/data", fo.base_url()),
            format!("  token URL:                {}", fo.token_url()),
            format!("  scope:                    {}", fo.scope()),
            format!(
                "  client id / secret:       {} / {}",
                fc.client_id, fc.client_secret
            ),
            "  legal entities:           usmf (default company), demf".to_string(),
            format!(
                "Inspection: GET {0}/_sandbox/invoices, GET {0}/_sandbox/posted, GET {0}/_sandbox/requests",
                fo.base_url()
            ),
        ]
    }

    fn seed_demo(&mut self, invoices: usize) {
        self.seed_data(invoices.clamp(2, 10), true);
    }

    fn demo_config(&self) -> ConfigFragment {
        ConfigFragment {
            systems: systems(&self.coupa, &self.fo),
            integrations: integration("payments = true\n"),
        }
    }

    /// The first cycle writes the invoices; F&O then posts and pays the first one; the second
    /// returns its payment to Coupa.
    fn demo_cycles(&self) -> usize {
        2
    }

    fn after_cycle(&mut self, cycle: &Cycle<'_>) -> anyhow::Result<Vec<Section>> {
        let mine = |i: &&AuditItem| i.integration == INTEGRATION;
        match cycle.number {
            1 => {
                let pending = self.fo.pending_invoices();
                let rows: Vec<Vec<String>> = cycle
                    .posted
                    .iter()
                    .filter(mine)
                    .filter(|i| i.document_kind == "invoice" || i.document_kind == "credit_note")
                    .map(|i| {
                        let number = opt(&i.source_document_number);
                        let inv = pending.iter().find(|p| p.invoice_number == number);
                        vec![
                            number,
                            opt(&i.vendor),
                            i.amount.map(|a| a.to_string()).unwrap_or_default(),
                            "→".into(),
                            inv.map(|p| p.company.to_uppercase()).unwrap_or_default(),
                            opt(&i.target_id),
                            inv.map(|p| p.lines.len().to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                let parked: Vec<Vec<String>> = cycle
                    .parked
                    .iter()
                    .filter(|p: &&ParkedDoc| p.integration == INTEGRATION)
                    .map(|p| vec![opt(&p.source_document_number), p.reason.clone()])
                    .collect();
                // F&O posts and pays the first invoice, as AP would between two cycles.
                if let Some((number, le)) = self.demo.first()
                    && let Some(p) = pending.iter().find(|p| &p.invoice_number == number)
                {
                    self.fo
                        .post_invoice(le, &p.header_reference)
                        .map_err(anyhow::Error::msg)?;
                    self.fo
                        .pay_invoice(le, &p.vendor_account, number, None)
                        .map_err(anyhow::Error::msg)?;
                }
                Ok(vec![
                    Section::line("\n== Coupa → Dynamics 365 Finance & Operations ==\n"),
                    Section::table(
                        format!("Moved to F&O as pending vendor invoices ({}):", rows.len()),
                        &[
                            "Coupa invoice",
                            "vendor",
                            "amount",
                            "",
                            "legal entity",
                            "header reference",
                            "lines",
                        ],
                        rows,
                    ),
                    Section::table(
                        format!("Parked in F&O's words ({}):", parked.len()),
                        &["Coupa invoice", "reason"],
                        parked,
                    ),
                ])
            }
            2 => {
                let rows: Vec<Vec<String>> = cycle
                    .posted
                    .iter()
                    .filter(mine)
                    .filter(|i| i.document_kind == "payment")
                    .map(|i| {
                        vec![
                            opt(&i.source_document_number),
                            i.amount.map(|a| a.to_string()).unwrap_or_default(),
                            opt(&i.currency),
                            opt(&i.target_document_number),
                        ]
                    })
                    .collect();
                Ok(vec![Section::table(
                    format!("Payments F&O made, returned to Coupa ({}):", rows.len()),
                    &[
                        "Coupa invoice",
                        "amount",
                        "currency",
                        "payment reference in Coupa",
                    ],
                    rows,
                )])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Every seeded invoice: one F&O pending vendor invoice in its legal entity, with both lines.
    fn landings(&self) -> Vec<Landing> {
        let pending = self.fo.pending_invoices();
        self.demo
            .iter()
            .map(|(number, entity)| {
                let found: Vec<&FoInvoiceView> = pending
                    .iter()
                    .filter(|i| &i.invoice_number == number && &i.company == entity)
                    .collect();
                Landing {
                    document: format!("{number} ({entity})"),
                    expect: if number == "FO-CONTOSO-1" {
                        Expect::Never
                    } else {
                        Expect::Once
                    },
                    copies: found.len(),
                    finished: found.iter().all(|i| i.lines.len() == 2),
                    answers: None,
                }
            })
            .collect()
    }

    fn fail_next(&self, side: Side, rule: FaultRule) {
        match side {
            Side::Source => self.coupa.fail_next(rule),
            Side::Target => self.fo.fail_next(rule),
        }
    }

    fn fault_targets(&self, side: Side) -> Vec<(&'static str, &'static str)> {
        match side {
            Side::Source => vec![("GET", "/api/invoices"), ("GET", "/api/suppliers")],
            Side::Target => vec![
                ("GET", "/VendorInvoiceHeaders"),
                ("POST", "/VendorInvoiceHeaders"),
                ("GET", "/VendorInvoiceLines"),
                ("POST", "/VendorInvoiceLines"),
            ],
        }
    }

    fn expire_credentials(&self) {
        self.coupa.expire_tokens();
        self.fo.expire_tokens();
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.coupa.base_url(), self.fo.base_url()]
    }

    fn requests_served(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("Coupa", api_requests(&self.coupa.requests())),
            ("F&O", api_requests(&self.fo.requests())),
        ]
    }
}
