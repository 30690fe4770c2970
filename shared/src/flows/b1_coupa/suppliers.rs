//! B1 supplier business partners → Coupa suppliers (with `sync.suppliers = "create"`), matched
//! by the B1 `CardCode` stored as the Coupa supplier's `number`: created when Coupa has none,
//! name and tax id updated when they differ. One ledger entry per (partner, content): the
//! overlapping polls re-list every partner of the day, and only a real change is written.
//! (Coupa → B1, the other direction with echo suppression and conflicts, is not built yet.)

use super::B1Coupa;
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, LedgerKey, Queue, SourceDocument, Step, Store};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item};
use crate::systems::coupa::{SupplierToWrite, SupplierWriter};

const KIND: &str = "supplier";

pub async fn map_supplier<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let s = match map::fetch(env, &flow.b1, msg, crash).await? {
        Ok(SourceDocument::Supplier(s)) => s,
        Ok(other) => {
            return Err(StepError::Poison(format!(
                "B1 business partner {} read as {other:?}",
                msg.source_id
            )));
        }
        Err(outcome) => return Ok(outcome),
    };
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    audit.source_document_number = Some(s.source_id.clone());
    audit.vendor = Some(s.name.clone());
    let doc = SupplierToWrite {
        number: s.source_id.clone(),
        name: s.name.clone(),
        tax_id: s.tax_id.clone(),
    };
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::Supplier,
        &s.source_id,
        msg.version.clone(),
        true,
        &doc,
    );
    map::hand_over(env, msg, &post, audit, crash).await
}

pub async fn post_supplier<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    owner: &str,
    msg: &PostEnvelope,
    crash: Option<CrashPoint>,
) -> Result<PostOutcome, StepError> {
    let doc: SupplierToWrite = msg.payload().map_err(StepError::Poison)?;
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Post,
        AuditStatus::Posted,
    );
    audit.source_document_number = Some(doc.number.clone());
    audit.vendor = Some(doc.name.clone());
    let digest = crate::digest::short_hex(&serde_json::to_vec(&doc).expect("serialisable"), 16);
    let subject = Subject {
        key: LedgerKey {
            integration: flow.name().to_string(),
            kind: KIND.into(),
            source_id: format!("{}-{digest}", msg.source_id),
        },
        kind: DocumentKind::Supplier,
        source_id: msg.source_id.clone(),
        version: msg.version.clone(),
        number: Some(doc.number.clone()),
        audit,
    };
    let writer = SupplierWriter {
        coupa: flow.coupa.clone(),
    };
    write_once(env, &writer, owner, &subject, &doc, &|_| Vec::new(), crash).await
}
