//! Coupa suppliers → F&O vendors (`VendorsV2`), per legal entity (vendors are company-specific
//! in F&O, B4.4). The vendor account is the supplier mapping's value, else — with the supplier
//! key `number` — the supplier number itself. `sync.suppliers = "match"` records the mapping
//! when the vendor exists in a legal entity of the integration and parks the supplier as
//! unmatched otherwise; `"create"` also writes the vendor into every legal entity that lacks it,
//! and keeps its name in step (with the vendor's entity tag).
//!
//! One write per (supplier, legal entity, content): the ledger key names all three, so a
//! renamed supplier is written again (an update) while a repeat of the same content is not.

use crate::config::{IntegrationConfig, SupplierKey, SupplierSync, tables};
use crate::digest::short_hex;
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store, Written};
use crate::steps::claim;
use crate::steps::map::{self, MapOutcome, park};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::dynamics_fo::{FoVendor, VendorWriter};
use sha2::Digest as _;

use super::CoupaFo;

pub(super) const KIND: &str = "supplier";
/// `VendorAccountNumber`: 20 characters is F&O's usual account length [assumption; the fact
/// sheet gives none] — a longer one is refused before sending, never cut.
const MAX_ACCOUNT: usize = 20;

/// The ledger's source id of one vendor write: supplier, legal entity, and a digest of what is
/// written (a changed name is a new write).
fn ledger_source(v: &FoVendor) -> String {
    let digest = short_hex(sha2::Sha256::digest(v.name.as_bytes()).as_slice(), 12);
    format!("{}-{}-{digest}", v.supplier_source_id, v.legal_entity)
}

pub(super) async fn map_supplier<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    let integration: &IntegrationConfig = &flow.cfg;
    let supplier = match map::fetch(env, &flow.coupa, msg, None).await? {
        Ok(SourceDocument::Supplier(s)) => s,
        Ok(_) => unreachable!("Coupa's supplier fetch returns suppliers"),
        Err(outcome) => return Ok(outcome),
    };
    let shown = supplier.number.clone().or(Some(supplier.name.clone()));
    let (key_name, key) = match integration.mapping.supplier_key {
        SupplierKey::Number => ("number", supplier.number.clone()),
        SupplierKey::Id => ("id", Some(supplier.source_id.clone())),
        SupplierKey::TaxId => ("tax id", supplier.tax_id.clone()),
    };
    let Some(key) = key.filter(|k| !k.trim().is_empty()) else {
        let why = format!(
            "Coupa supplier '{}' has no {key_name}, which the supplier mapping is keyed by",
            supplier.name
        );
        return park(env, msg, shown, why).await;
    };
    let table = tables::supplier(&integration.name);
    let mapped = env
        .store
        .mapping(&table, &key)
        .await
        .map_err(|e| StepError::new("reading the supplier mapping", e))?;
    let account = match (mapped, integration.mapping.supplier_key) {
        (Some(a), _) => a,
        (None, SupplierKey::Number) if key.chars().count() <= MAX_ACCOUNT => key.clone(),
        (None, _) => {
            let why = format!(
                "no F&O vendor account for Coupa supplier '{}' ({key_name} {key}): map it with `mlc map import`",
                supplier.name
            );
            return park(env, msg, shown, why).await;
        }
    };
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for le in flow.legal_entities() {
        match flow.fo.vendor(&le, &account).await {
            Ok(Some(_)) => present.push(le),
            Ok(None) => missing.push(le),
            Err(e) => return Err(StepError::system("looking up the F&O vendor", e)),
        }
    }
    let audit = |status| {
        let mut item = audit_item(
            env.clock.now(),
            &integration.name,
            KIND,
            &msg.source_id,
            Step::Map,
            status,
        );
        item.source_document_number = shown.clone();
        item.vendor = Some(supplier.name.clone());
        item
    };
    if integration.sync.suppliers != SupplierSync::Create {
        if present.is_empty() {
            let why = format!(
                "unmatched: no F&O legal entity of this integration has vendor account '{account}', and vendor creation is off (sync.suppliers = \"match\")"
            );
            return park(env, msg, shown, why).await;
        }
        env.store
            .put_mapping(&table, &key, &account)
            .await
            .map_err(|e| StepError::new("recording the supplier mapping", e))?;
        claim::unpark(env, msg).await?;
        claim::write(
            env,
            audit(AuditStatus::Mapped).with_target(&account, Some(&account)),
        )
        .await?;
        return Ok(MapOutcome::Mapped);
    }
    // Create mode: every legal entity gets its write (a present vendor's name is kept in step).
    let mut out = Vec::new();
    for le in present.iter().chain(&missing) {
        let v = FoVendor {
            supplier_source_id: supplier.source_id.clone(),
            mapping_key: key.clone(),
            legal_entity: le.clone(),
            account: account.clone(),
            name: supplier.name.clone(),
        };
        out.push(PostEnvelope::new(
            &integration.name,
            DocumentKind::Supplier,
            &ledger_source(&v),
            None,
            false,
            &v,
        ));
    }
    let (last, rest) = out.split_last().expect("at least one legal entity");
    for post in rest {
        env.queue
            .send(crate::ports::QueueName::Post, vec![post.to_outgoing()])
            .await
            .map_err(|e| StepError::new("enqueueing a vendor", e))?;
    }
    map::hand_over(env, msg, last, audit(AuditStatus::Mapped), None).await
}

/// Writes one vendor into one legal entity exactly once; the supplier mapping is recorded
/// before the ledger says done.
pub(super) async fn post_vendor<Q: Queue, S: Store, C: Clock>(
    flow: &CoupaFo,
    env: &Env<Q, S, C>,
    owner: &str,
    v: &FoVendor,
) -> Result<PostOutcome, StepError> {
    let name = flow.name();
    let mut audit = audit_item(
        env.clock.now(),
        name,
        KIND,
        &v.supplier_source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(v.mapping_key.clone());
    audit.vendor = Some(v.name.clone());
    let subject = Subject {
        key: LedgerKey {
            integration: name.to_string(),
            kind: KIND.into(),
            source_id: ledger_source(v),
        },
        kind: DocumentKind::Supplier,
        source_id: v.supplier_source_id.clone(),
        version: None,
        number: Some(v.mapping_key.clone()),
        audit,
    };
    let table = tables::supplier(name);
    let links = |w: &Written| {
        vec![Link::Put {
            table: table.clone(),
            source: v.mapping_key.clone(),
            target: w.number.clone(),
        }]
    };
    let writer = VendorWriter::new(flow.fo.clone(), &v.legal_entity);
    write_once(env, &writer, owner, &subject, v, &links, None).await
}
