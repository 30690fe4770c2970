//! The end-to-end harness: both simulators over real HTTP, a real SQLite file, a real encrypted
//! secrets file, and the same pipeline wiring `mlc` uses.
#![allow(dead_code)]

use std::sync::Arc;

use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_sandbox::bc::{BcConfig, BcInvoiceView, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditItem, AuditStatus, ParkedDoc, Parking};
use mlc_shared::runtime::DrainStats;

pub struct Harness {
    pub coupa: CoupaSim,
    pub bc: BcSim,
    pub dir: tempfile::TempDir,
    pub cfg: Config,
    pub secrets: SecretFile,
    pub pipeline: Arc<EmbeddedPipeline>,
}

/// Suppliers the harness creates, with their BC vendors (SUP-009 has none).
pub const SUPPLIERS: [(&str, &str, Option<&str>); 5] = [
    ("Fabrikam, Inc.", "SUP-001", Some("V10000")),
    ("First Up Consultants", "SUP-002", Some("V20000")),
    ("Litware Ltd.", "SUP-003", Some("V30000")),
    ("Contoso Supplies", "SUP-004", Some("V40000")),
    ("Northwind Traders", "SUP-009", None),
];

impl Harness {
    pub async fn new() -> Self {
        // No limits on either side: the tests of pacing and throttling set their own.
        let coupa = CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        };
        let bc = BcConfig {
            rate_limit: None,
            ..BcConfig::default()
        };
        Self::with(coupa, bc, "").await
    }

    /// Unlimited simulators, and `sync` as the integration's `[integrations.sync]` table.
    pub async fn with_sync(sync: &str) -> Self {
        Self::with_sync_and_mapping(sync, "").await
    }

    /// As [`Harness::with_sync`], with `mapping` lines added to `[integrations.mapping]`.
    pub async fn with_sync_and_mapping(sync: &str, mapping: &str) -> Self {
        let coupa = CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        };
        let bc = BcConfig {
            rate_limit: None,
            notification_delay: std::time::Duration::from_millis(50),
            ..BcConfig::default()
        };
        Self::build(coupa, bc, "", sync, mapping).await
    }

    /// `extra_runtime` lines are added to `[runtime]` of the configuration.
    pub async fn with(coupa_cfg: CoupaConfig, bc_cfg: BcConfig, extra_runtime: &str) -> Self {
        Self::build(coupa_cfg, bc_cfg, extra_runtime, "", "").await
    }

    async fn build(
        coupa_cfg: CoupaConfig,
        bc_cfg: BcConfig,
        extra_runtime: &str,
        sync: &str,
        mapping: &str,
    ) -> Self {
        // The client paces to the simulators' limits; where a simulator has none, neither does it.
        let coupa_rate = if coupa_cfg.rate_per_sec.is_none() {
            "requests_per_second = 1000\n"
        } else {
            ""
        };
        let bc_rate = if bc_cfg.rate_limit.is_none() {
            "rate = { requests = 1000000, window_secs = 1, concurrent = 5 }\n"
        } else {
            ""
        };
        let coupa = CoupaSim::start(coupa_cfg).await.unwrap();
        let bc = BcSim::start(bc_cfg).await.unwrap();
        for (name, number, vendor) in SUPPLIERS {
            coupa.add_supplier(NewSupplier::new(name, number));
            if let Some(v) = vendor {
                bc.add_vendor(v, name);
            }
        }
        for (gl, name) in [
            ("6100", "Office Supplies"),
            ("6200", "IT Services"),
            ("6300", "Travel"),
        ] {
            bc.add_account(gl, name);
        }
        bc.add_dimension("DEPARTMENT", &["ADM", "SALES", "PROD"]);
        bc.add_dimension("PROJECT", &["P-100", "P-200"]);

        let dir = tempfile::tempdir().unwrap();
        let text = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets")
            .replace("retry_base_delay_ms = 500", "")
            .replace(
                "[runtime]\n",
                &format!("[runtime]\nretry_base_delay_ms = 20\n{extra_runtime}\n"),
            )
            .replace(
                "api_version = \"R40\"\n",
                &format!("api_version = \"R40\"\n{coupa_rate}"),
            )
            .replace(
                "client_secret = \"bc-client-secret\"\n",
                &format!("client_secret = \"bc-client-secret\"\n{bc_rate}"),
            )
            .replace(
                "[integrations.mapping]\n",
                &format!("[integrations.sync]\n{sync}\n\n[integrations.mapping]\n{mapping}\n"),
            );
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        mlc_cli::cmd::sandbox::store_secrets(&secrets, &coupa, &bc).unwrap();
        let pipeline = embedded::pipeline(&cfg, &secrets).await.unwrap();
        Self {
            coupa,
            bc,
            dir,
            cfg,
            secrets,
            pipeline,
        }
    }

    /// A second pipeline on the same database file (another worker, or the same one restarted).
    pub async fn restart(&self) -> Arc<EmbeddedPipeline> {
        embedded::pipeline(&self.cfg, &self.secrets).await.unwrap()
    }

    pub fn supplier_id(&self, number: &str) -> i64 {
        self.coupa.supplier_id_by_number(number).unwrap()
    }

    /// An approved invoice with one line per (quantity, price, segments).
    pub fn invoice(&self, supplier: &str, number: &str, lines: &[(&str, &str, [&str; 3])]) -> i64 {
        let mut inv = NewInvoice::approved(self.supplier_id(supplier), number);
        for (i, (q, p, seg)) in lines.iter().enumerate() {
            inv = inv.line(NewInvoiceLine::qty(&format!("line {}", i + 1), q, p, seg));
        }
        self.coupa.add_invoice(inv)
    }

    pub fn coupa_id_of(&self, number: &str) -> i64 {
        (1..100_000)
            .find(|id| {
                self.coupa
                    .invoice_json(*id)
                    .is_some_and(|v| v["invoice-number"] == number)
            })
            .expect("invoice exists")
    }

    pub fn simple_invoice(&self, supplier: &str, number: &str) -> i64 {
        self.invoice(
            supplier,
            number,
            &[("2", "12.3456", ["6100", "ADM", "P-100"])],
        )
    }

    /// Poll once and drain the queues.
    pub async fn run_once(&self) -> DrainStats {
        run_once(&self.pipeline).await
    }

    pub fn bc_invoices(&self) -> Vec<BcInvoiceView> {
        self.bc.purchase_invoices()
    }

    pub fn bc_invoices_for(&self, vendor_invoice_number: &str) -> Vec<BcInvoiceView> {
        // BC upper-cases Code fields such as the vendor invoice number.
        self.bc_invoices()
            .into_iter()
            .filter(|i| {
                i.vendor_invoice_number
                    .eq_ignore_ascii_case(vendor_invoice_number)
            })
            .collect()
    }

    pub async fn audit(&self, status: AuditStatus) -> Vec<AuditItem> {
        let f = AuditFilter {
            status: Some(status),
            ..Default::default()
        };
        self.pipeline.env.store.query_audit(&f).await.unwrap()
    }

    pub async fn parked(&self) -> Vec<ParkedDoc> {
        self.pipeline.env.store.parked().await.unwrap()
    }
}

pub async fn run_once(p: &Arc<EmbeddedPipeline>) -> DrainStats {
    p.poll_all().await.unwrap();
    p.drain(4, Arc::new(|_| {})).await.unwrap()
}
