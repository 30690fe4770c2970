//! Suppliers ↔ vendors. A Coupa supplier is matched to the BC vendor with the same supplier key
//! (vendor number = supplier number, or tax registration number = tax id) and the match is
//! recorded in the supplier mapping table, which invoices and orders resolve their vendor by.
//! A supplier with no vendor is created as one when the integration says so (`sync.suppliers =
//! "create"`), otherwise parked as unmatched, visible in the audit trail until it is mapped.

use super::Clients;
use super::resolve::{self, ResolveError};
use crate::config::{IntegrationConfig, SupplierKey, SupplierSync, tables};
use crate::model::{DocumentKind, VendorToCreate};
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store, Written};
use crate::steps::claim;
use crate::steps::map::{self, MapOutcome, park};
use crate::steps::post::PostOutcome;
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::business_central::{BcClient, VendorWriter};

pub(super) const KIND: &str = "supplier";
/// BC vendor `number` is Code[20] (A6.1).
const MAX_VENDOR_NUMBER: usize = 20;

pub async fn map_coupa_supplier<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    clients: &Clients<'_>,
    integration: &IntegrationConfig,
    msg: &IngestMessage,
) -> Result<MapOutcome, StepError> {
    let Some(lookups) = clients.lookups.as_ref() else {
        return Err(StepError::retry("Business Central is not configured"));
    };
    let supplier = match map::fetch(env, clients.coupa, msg, None).await? {
        Ok(SourceDocument::Supplier(s)) => s,
        Ok(_) => unreachable!("Coupa's supplier fetch returns suppliers"),
        Err(outcome) => return Ok(outcome),
    };
    let shown = supplier.number.clone().or(Some(supplier.name.clone()));
    let (key_name, key) = match resolve::supplier_key(&supplier, integration) {
        Ok(k) => k,
        Err(ResolveError::Unresolved(why)) => return park(env, msg, shown, why).await,
        Err(e) => return Err(e.into_step("resolving")),
    };
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
    let table = tables::supplier(&integration.name);
    let mapped = env
        .store
        .mapping(&table, &key)
        .await
        .map_err(|e| StepError::new("reading the supplier mapping", e))?;
    let found = match mapped {
        Some(v) => Some(v),
        None => match resolve::find_vendor(lookups.bc, integration, &supplier, &key).await {
            Ok(v) => v,
            Err(ResolveError::Unresolved(why)) => return park(env, msg, shown, why).await,
            Err(e) => return Err(e.into_step("looking up the vendor")),
        },
    };
    if let Some(vendor) = found {
        env.store
            .put_mapping(&table, &key, &vendor)
            .await
            .map_err(|e| StepError::new("recording the supplier mapping", e))?;
        claim::unpark(env, msg).await?;
        claim::write(
            env,
            audit(AuditStatus::Mapped).with_target(&vendor, Some(&vendor)),
        )
        .await?;
        return Ok(MapOutcome::Mapped);
    }
    if integration.sync.suppliers != SupplierSync::Create {
        let why = format!(
            "unmatched: no Business Central vendor has this supplier's {key_name} '{key}', and vendor creation is off (sync.suppliers = \"match\"); map it with `mlc map import` or create the vendor in BC"
        );
        return park(env, msg, shown, why).await;
    }
    let number = match integration.mapping.supplier_key {
        SupplierKey::Number if key.chars().count() <= MAX_VENDOR_NUMBER => Some(key.clone()),
        SupplierKey::Number => {
            let why = format!(
                "supplier number '{key}' is longer than {MAX_VENDOR_NUMBER} characters, the limit of a Business Central vendor number"
            );
            return park(env, msg, shown, why).await;
        }
        _ => None,
    };
    let tax_id = supplier.tax_id.clone().filter(|t| !t.trim().is_empty());
    if number.is_none() && tax_id.is_none() {
        // Without a number or tax id a create whose answer was lost could not be found again.
        let why = "no vendor number or tax id to create a Business Central vendor by: map this supplier by hand".to_string();
        return park(env, msg, shown, why).await;
    }
    let vendor = VendorToCreate {
        supplier_source_id: supplier.source_id.clone(),
        supplier_name: supplier.name.clone(),
        mapping_key: key,
        number,
        tax_id,
    };
    // Per document: a repeat within five minutes is dropped by the queue before it costs a
    // ledger read.
    let post = PostEnvelope::new(
        &integration.name,
        DocumentKind::Supplier,
        &vendor.supplier_source_id,
        None,
        false,
        &vendor,
    );
    map::hand_over(env, msg, &post, audit(AuditStatus::Mapped), None).await
}

/// Creates the vendor exactly once through the one writer: a look for it first (by number or
/// tax id), never a second create while an earlier one's answer may still land; the mapping
/// is recorded before the ledger says done.
pub async fn post_bc_vendor<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    bc: &BcClient,
    owner: &str,
    integration: &str,
    v: &VendorToCreate,
) -> Result<PostOutcome, StepError> {
    let mut audit = audit_item(
        env.clock.now(),
        integration,
        KIND,
        &v.supplier_source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(v.mapping_key.clone());
    audit.vendor = Some(v.supplier_name.clone());
    let subject = Subject {
        key: LedgerKey {
            integration: integration.to_string(),
            kind: KIND.into(),
            source_id: v.supplier_source_id.clone(),
        },
        kind: crate::model::DocumentKind::Supplier,
        source_id: v.supplier_source_id.clone(),
        version: None,
        number: Some(v.mapping_key.clone()),
        audit,
    };
    let table = tables::supplier(integration);
    let links = |w: &Written| {
        if w.number.is_empty() {
            Vec::new()
        } else {
            vec![Link::Put {
                table: table.clone(),
                source: v.mapping_key.clone(),
                target: w.number.clone(),
            }]
        }
    };
    let writer = VendorWriter { bc: bc.clone() };
    write_once(env, &writer, owner, &subject, v, &links, None).await
}
