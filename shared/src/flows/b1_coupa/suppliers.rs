//! Supplier business partners ↔ Coupa suppliers, matched by the B1 `CardCode` stored as the
//! Coupa supplier's `number`, or in the Coupa custom field `sync.supplier_code_field` (then
//! the supplier's own `number` is Coupa's and left alone).
//!
//! `sync.suppliers = "create"`: B1 → Coupa only. A B1 supplier is created in Coupa when Coupa
//! has none, and its name and tax id follow when they differ.
//!
//! `sync.suppliers = "both_ways"`: Coupa's suppliers are polled too (windowed by `updated-at`,
//! their ids namespaced `coupa:<id>` in the pipeline, see `ports::Namespaced`), and a partner
//! is reconciled from either side's change:
//!
//! * The content both sides share (number, name, tax id) has a digest. Per partner and per
//!   side the store keeps the digest of what that side held at the last sync (tables
//!   `<integration>/supplier_digest/sap_b1` and `…/coupa`, written once a write is done, or
//!   when a poll finds both sides equal).
//! * A side whose content still has its stored digest has not changed since: a change the
//!   connector wrote (an echo) is never sent back.
//! * One side changed: its version is written into the other (created there when missing).
//! * Both changed since the last sync (or they differ and were never synced): a conflict,
//!   resolved by `sync.supplier_conflicts` ("source": B1's version is kept; "target":
//!   Coupa's) and audited with status `conflict`, naming both versions and the rule.
//! * The write carries what the side written into held when the map step decided; the writer
//!   (which reads the record anyway) refuses to overwrite anything else: a person's edit made
//!   meanwhile parks the partner, to be decided again (a conflict then) on the next cycle,
//!   never overwritten unseen.
//!
//! A Coupa supplier without a number is not synced (audited: it needs the `CardCode` it should
//! have); one whose number is a B1 customer or lead is parked, never turned into a supplier. A
//! partner synced before and gone from one side since (deleted in B1, renumbered in Coupa) is
//! not created there again (audited).
//! Every write goes through `write_once`; its ledger key names the partner, the content and
//! the change that triggered it, so a partner renamed back to an earlier name is written again.
//! The writes of one partner share a message group on the post queue, so they never race.

use serde::{Deserialize, Serialize};

use super::B1Coupa;
use crate::config::{ConflictWinner, SupplierSync};
use crate::model::{DocumentKind, Supplier};
use crate::ports::{
    AuditItem, AuditStatus, Clock, LedgerKey, Namespaced, Queue, SourceDocument, Step, Store,
};
use crate::steps::map::{self, MapCrash, MapOutcome};
use crate::steps::post::{CrashPoint, PostOutcome};
use crate::steps::write::{Link, Subject, write_once};
use crate::steps::{Env, IngestMessage, PostEnvelope, StepError, audit_item, claim, once_key};
use crate::systems::coupa::{SupplierToWrite, SupplierWriter};
use crate::systems::sap_b1::{self, PartnerToWrite, PartnerWriter};

/// Ledger kind of a write into Coupa (and the audit kind of both directions).
const KIND: &str = "supplier";
/// Ledger kind of a write into B1.
const INTO_B1_KIND: &str = "business_partner";
/// The pipeline ids of Coupa suppliers: `coupa:<id>`.
pub(crate) const COUPA_IDS: &str = "coupa:";

/// Which side a write goes into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Side {
    #[default]
    Coupa,
    SapB1,
}

impl Side {
    fn table(self, integration: &str) -> String {
        let side = match self {
            Side::Coupa => "coupa",
            Side::SapB1 => "sap_b1",
        };
        format!("{integration}/supplier_digest/{side}")
    }
}

/// The post payload: what one side should hold. Read as the B1 → Coupa payload of earlier
/// versions too (`into` and the digests absent: into Coupa, no digests kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SupplierWrite {
    number: String,
    name: String,
    tax_id: Option<String>,
    #[serde(default)]
    into: Side,
    /// Digest of this content (both sides hold it once written): `both_ways` only.
    #[serde(default)]
    digest: Option<String>,
    /// What the side written into held when the map step decided, (name, tax id) (`None`:
    /// it had no such supplier, or a one-way write). The writer refuses to overwrite anything
    /// else: a person's change made meanwhile is decided again, never lost unseen.
    #[serde(default)]
    base: Option<(String, Option<String>)>,
    /// The pipeline id of the change that triggered the write (a `CardCode`, or `coupa:<id>`),
    /// re-read when the write is parked. `None`: the envelope's own id.
    #[serde(default)]
    trigger: Option<String>,
}

/// The content the two sides share, normalised the same way on both.
fn shared(s: &Supplier, number: &str) -> (String, String, Option<String>) {
    (
        number.trim().to_string(),
        s.name.trim().to_string(),
        s.tax_id
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    )
}

fn digest(s: &Supplier, number: &str) -> String {
    let bytes = serde_json::to_vec(&shared(s, number)).expect("serialisable");
    crate::digest::short_hex(&bytes, 32)
}

fn describe(s: &Supplier) -> String {
    match s.tax_id.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => format!("'{}' (tax id {t})", s.name),
        None => format!("'{}' (no tax id)", s.name),
    }
}

fn store_err(context: &str) -> impl Fn(crate::ports::StoreError) -> StepError + '_ {
    move |e| StepError::new(context, e)
}

pub async fn map_supplier<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    if Namespaced::<()>::strip(COUPA_IDS, &msg.source_id).is_some() {
        return map_coupa_supplier(flow, env, msg, crash).await;
    }
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
    let code = s.source_id.clone();
    let audit = supplier_audit(flow, env, msg, &code, &s.name);
    if flow.cfg.sync.suppliers != SupplierSync::BothWays {
        let doc = SupplierWrite {
            number: code.clone(),
            name: s.name.clone(),
            tax_id: s.tax_id.clone(),
            into: Side::Coupa,
            digest: None,
            base: None,
            trigger: None,
        };
        return hand_over(flow, env, msg, doc, audit, crash).await;
    }
    let coupa = flow
        .coupa
        .supplier_by_code(flow.cfg.sync.supplier_code_field.as_deref(), &code)
        .await
        .map_err(|e| StepError::system(&format!("looking up Coupa supplier {code}"), e))?;
    reconcile(flow, env, msg, &code, Some(s), coupa, audit, crash).await
}

/// A Coupa supplier's change (`both_ways` only: the Coupa feed is not polled otherwise).
async fn map_coupa_supplier<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    if flow.cfg.sync.suppliers != SupplierSync::BothWays {
        // Queued while the integration synced both ways, read after it stopped: not written.
        let audit = supplier_audit(flow, env, msg, "", "");
        let why = "Coupa suppliers are not written to SAP B1: sync.suppliers is not \"both_ways\""
            .to_string();
        return skip(env, msg, audit, why).await;
    }
    let coupa = Namespaced {
        prefix: COUPA_IDS,
        inner: &flow.coupa,
    };
    let c = match &flow.cfg.sync.supplier_code_field {
        // The code in a custom field: read with it (the canonical fetch knows `number` only).
        Some(field) => {
            let id = Namespaced::<()>::strip(COUPA_IDS, &msg.source_id).unwrap_or_default();
            match flow.coupa.supplier_by_id_with_code(id, field).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    let why = "the source does not have it: no such Coupa supplier".to_string();
                    return map::park(env, msg, None, why).await;
                }
                Err(crate::ports::SystemError::Malformed(why)) => {
                    return map::park(env, msg, None, why).await;
                }
                Err(e) => {
                    let what = format!("fetching Coupa supplier {id}");
                    return Err(StepError::system(&what, e));
                }
            }
        }
        None => match map::fetch(env, &coupa, msg, crash).await? {
            Ok(SourceDocument::Supplier(s)) => s,
            Ok(other) => {
                return Err(StepError::Poison(format!(
                    "Coupa supplier {} read as {other:?}",
                    msg.source_id
                )));
            }
            Err(outcome) => return Ok(outcome),
        },
    };
    let mut audit = supplier_audit(flow, env, msg, "", &c.name);
    let Some(code) = c.number.clone() else {
        audit.source_document_number = None;
        let holder = match &flow.cfg.sync.supplier_code_field {
            Some(f) => format!("custom field '{f}'"),
            None => "number".to_string(),
        };
        let why = format!(
            "Coupa supplier '{}' (id {}) has no {holder}: not synced to SAP B1 until its \
             {holder} is set to the B1 CardCode it should have",
            c.name, c.source_id
        );
        return skip(env, msg, audit, why).await;
    };
    audit.source_document_number = Some(code.clone());
    let raw = flow
        .b1
        .partner(&code)
        .await
        .map_err(|e| StepError::system(&format!("looking up B1 business partner {code}"), e))?;
    let b1 = match raw {
        None => None,
        Some(raw) => {
            let card_type = raw["CardType"].as_str().unwrap_or_default().to_string();
            if card_type != "cSupplier" && card_type != "S" {
                let why = format!(
                    "Coupa supplier '{}' has number {code}, which in SAP B1 is a business \
                     partner of type {card_type}, not a supplier: give the Coupa supplier \
                     another number, or make the partner a supplier in B1",
                    c.name
                );
                return map::park(env, msg, Some(code), why).await;
            }
            match sap_b1::supplier_from_wire(&raw) {
                Ok(s) => Some(s),
                Err(e) => return map::park(env, msg, Some(code), e.to_string()).await,
            }
        }
    };
    reconcile(flow, env, msg, &code, b1, Some(c), audit, crash).await
}

/// Leaves a supplier alone, audited once per (document, version, reason): the overlapping
/// polls read the same version again, and a repeat is counted, not logged.
async fn skip<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    audit: AuditItem,
    why: String,
) -> Result<MapOutcome, StepError> {
    claim::unpark(env, msg).await?;
    let mut item = audit.with_error(why.clone());
    item.status = AuditStatus::Rejected;
    let once = once_key(&[
        "skipped",
        &msg.integration,
        &msg.source_id,
        // A "hot" version (seen in the poll's last second) carries a unique `~` suffix for
        // the queue; it is the same version here.
        msg.version
            .as_deref()
            .unwrap_or_default()
            .split('~')
            .next()
            .unwrap_or_default(),
        &why,
    ]);
    claim::write_once(env, item, &once).await?;
    Ok(MapOutcome::Skipped(why))
}

fn supplier_audit<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    code: &str,
    name: &str,
) -> AuditItem {
    let mut audit = audit_item(
        env.clock.now(),
        flow.name(),
        KIND,
        &msg.source_id,
        Step::Map,
        AuditStatus::Mapped,
    );
    audit.source_document_number = Some(code.to_string()).filter(|c| !c.is_empty());
    audit.vendor = Some(name.to_string());
    audit
}

/// Decides, from both sides' current content and what each held at the last sync, what to
/// write where (see the module's documentation).
#[allow(clippy::too_many_arguments)]
async fn reconcile<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    code: &str,
    b1: Option<Supplier>,
    coupa: Option<Supplier>,
    audit: AuditItem,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    let name = flow.name();
    let stored = |side: Side| async move {
        env.store
            .mapping(&side.table(name), code)
            .await
            .map_err(store_err("reading a supplier's last synced digest"))
    };
    let (last_b1, last_coupa) = (stored(Side::SapB1).await?, stored(Side::Coupa).await?);
    let db = b1.as_ref().map(|s| digest(s, code));
    let dc = coupa.as_ref().map(|s| digest(s, code));
    let content = |s: &Supplier| {
        let (_, name, tax) = shared(s, code);
        (name, tax)
    };
    let write = |from: &Supplier, into: Side, d: String, base: Option<(String, Option<String>)>| {
        let (number, name, tax_id) = shared(from, code);
        SupplierWrite {
            number,
            name,
            tax_id,
            into,
            digest: Some(d),
            base,
            trigger: Some(msg.source_id.clone()),
        }
    };
    let doc = match (&b1, &coupa) {
        (None, None) => {
            return skip(env, msg, audit, "in neither system any more".into()).await;
        }
        // Synced before and gone from one side since: removed there on purpose (B1 deletes
        // partners; a Coupa supplier loses its number), never created again behind a person's
        // back.
        (None, Some(_)) if last_b1.is_some() => {
            let why = format!(
                "business partner {code} was synced before and is no longer in SAP B1: not                  created again (create it in B1, or remove the number from the Coupa supplier)"
            );
            return skip(env, msg, audit, why).await;
        }
        (Some(_), None) if last_coupa.is_some() => {
            let why = format!(
                "supplier {code} was synced before and Coupa no longer has a supplier with that                  number: not created again (give the Coupa supplier its number back, or create                  it in Coupa)"
            );
            return skip(env, msg, audit, why).await;
        }
        (Some(b), None) => write(b, Side::Coupa, db.clone().expect("some"), None),
        (None, Some(c)) => write(c, Side::SapB1, dc.clone().expect("some"), None),
        (Some(b), Some(c)) => {
            let (db, dc) = (db.clone().expect("some"), dc.clone().expect("some"));
            if db == dc {
                return in_step(flow, env, msg, code, &db, audit, &last_b1, &last_coupa).await;
            }
            let b1_changed = last_b1.as_deref() != Some(db.as_str());
            let coupa_changed = last_coupa.as_deref() != Some(dc.as_str());
            match (b1_changed, coupa_changed) {
                (true, false) => write(b, Side::Coupa, db, Some(content(c))),
                (false, true) => write(c, Side::SapB1, dc, Some(content(b))),
                // Both changed (or neither did and still they differ: nothing says which is
                // newer): the configured rule decides, in the audit trail.
                _ => {
                    let rule = flow.cfg.sync.supplier_conflicts;
                    let (doc, kept) = match rule {
                        ConflictWinner::Source => (
                            write(b, Side::Coupa, db.clone(), Some(content(c))),
                            "SAP B1's",
                        ),
                        ConflictWinner::Target => (
                            write(c, Side::SapB1, dc.clone(), Some(content(b))),
                            "Coupa's",
                        ),
                    };
                    let rule_name = match rule {
                        ConflictWinner::Source => "source",
                        ConflictWinner::Target => "target",
                    };
                    let since = if last_b1.is_none() && last_coupa.is_none() {
                        "the two differ and were never synced"
                    } else {
                        "changed on both sides since the last sync"
                    };
                    let mut item = audit.clone().with_error(format!(
                        "conflict: {since}: SAP B1 has {}, Coupa has {}; kept {kept} \
                         (sync.supplier_conflicts = \"{rule_name}\")",
                        describe(b),
                        describe(c)
                    ));
                    item.status = AuditStatus::Conflict;
                    let once = once_key(&["conflict", name, code, &db, &dc]);
                    claim::write_once(env, item, &once).await?;
                    doc
                }
            }
        }
    };
    hand_over(flow, env, msg, doc, audit, crash).await
}

/// Both sides hold the same content: nothing to write. Their digests are recorded (the first
/// sync of partners that already matched), and an echo of the connector's own write ends here.
#[allow(clippy::too_many_arguments)]
async fn in_step<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    code: &str,
    d: &str,
    audit: AuditItem,
    last_b1: &Option<String>,
    last_coupa: &Option<String>,
) -> Result<MapOutcome, StepError> {
    for (side, last) in [(Side::SapB1, last_b1), (Side::Coupa, last_coupa)] {
        if last.as_deref() != Some(d) {
            env.store
                .put_mapping(&side.table(flow.name()), code, d)
                .await
                .map_err(store_err("recording a supplier's synced digest"))?;
        }
    }
    let from = if msg.source_id.starts_with(COUPA_IDS) {
        "Coupa"
    } else {
        "SAP B1"
    };
    let why = format!(
        "in step: SAP B1 and Coupa hold the same supplier; nothing sent back to the other side \
         (this {from} version is the last sync, or the connector's own write)"
    );
    claim::unpark(env, msg).await?;
    let mut item = audit.with_error(why.clone());
    item.status = AuditStatus::AlreadyPosted;
    let once = once_key(&["in_step", flow.name(), &msg.source_id, d]);
    claim::write_once(env, item, &once).await?;
    Ok(MapOutcome::Skipped(why))
}

async fn hand_over<Q: Queue, S: Store, C: Clock>(
    flow: &B1Coupa,
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
    doc: SupplierWrite,
    audit: AuditItem,
    crash: Option<MapCrash>,
) -> Result<MapOutcome, StepError> {
    // One message group per partner, whichever side's change decided the write: the writes
    // of one partner run one after the other, so two decisions to write the same content (B1's
    // change seen from both feeds) end in one write and one look that finds it done.
    let post = PostEnvelope::new(
        flow.name(),
        DocumentKind::Supplier,
        &doc.number,
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
    let doc: SupplierWrite = msg.payload().map_err(StepError::Poison)?;
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
    let trigger = doc.trigger.clone().unwrap_or_else(|| msg.source_id.clone());
    let content = SupplierToWrite {
        number: doc.number.clone(),
        name: doc.name.clone(),
        tax_id: doc.tax_id.clone(),
        unless_changed_from: doc.base.clone(),
        code_field: flow.cfg.sync.supplier_code_field.clone(),
    };
    let content_digest =
        crate::digest::short_hex(&serde_json::to_vec(&content).expect("serialisable"), 16);
    // One entry per (partner, content, triggering change): a redelivery is stopped by the
    // ledger; the same content decided by another change is looked up and found unchanged; a
    // name changed back to an earlier one is written again. (Entries of messages without a
    // version, queued before, keep their old key: partner and content.)
    let source_id = match &msg.version {
        None => format!("{}-{content_digest}", doc.number),
        Some(version) => format!(
            "{}-{content_digest}-{}",
            doc.number,
            crate::digest::short_hex(format!("{trigger}\n{version}").as_bytes(), 8)
        ),
    };
    let kind = match doc.into {
        Side::Coupa => KIND,
        Side::SapB1 => INTO_B1_KIND,
    };
    let subject = Subject {
        key: LedgerKey {
            integration: flow.name().to_string(),
            kind: kind.into(),
            source_id,
        },
        kind: DocumentKind::Supplier,
        source_id: trigger,
        version: msg.version.clone(),
        number: Some(doc.number.clone()),
        audit,
    };
    let links = |_: &crate::ports::Written| Vec::<Link>::new();
    let outcome = match doc.into {
        Side::Coupa => {
            let writer = SupplierWriter {
                coupa: flow.coupa.clone(),
            };
            write_once(env, &writer, owner, &subject, &content, &links, crash).await
        }
        Side::SapB1 => {
            let writer = PartnerWriter {
                b1: flow.b1.clone(),
                target: flow.b1_identity.clone(),
            };
            let partner = PartnerToWrite {
                card_code: doc.number.clone(),
                card_name: doc.name.clone(),
                federal_tax_id: doc.tax_id.clone(),
                unless_changed_from: doc.base.clone(),
            };
            write_once(env, &writer, owner, &subject, &partner, &links, crash).await
        }
    }?;
    // Both sides hold this content now: it is the last sync. Recorded after the write, not as
    // a link re-applied on a repeat (a late repeat would put back an older digest); a crash
    // before this line is healed by the next poll, which finds the sides equal (`in_step`).
    if let (Some(d), PostOutcome::Posted { .. }) = (&doc.digest, &outcome) {
        for side in [Side::SapB1, Side::Coupa] {
            env.store
                .put_mapping(&side.table(flow.name()), &doc.number, d)
                .await
                .map_err(store_err("recording a supplier's synced digest"))?;
        }
    }
    Ok(outcome)
}
