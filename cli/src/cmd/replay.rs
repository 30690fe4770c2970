//! `mlc replay`: re-runs documents from the audit trail, the dead-letter queues or the parked
//! list, then drains the queues and reports each document's outcome.
//!
//! Replaying is always safe: the map step re-reads the source, and the post step's ledger claim
//! plus natural-key lookup keep every document exactly once in the target (a replay of a posted
//! document ends as `already_posted`).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use mlc_shared::adapters::embedded::{Db, SqliteQueue, SqliteStore};
use mlc_shared::config::Config;
use mlc_shared::model::DocumentKind;
use mlc_shared::ports::{
    Audit, AuditFilter, AuditItem, AuditStatus, Clock, Ledger, LedgerEntry, LedgerState, Message,
    Parking, Queue, QueueName, Step, StoreError, SystemClock,
};
use mlc_shared::runtime::GiveUp;
use mlc_shared::steps::post::PostOutcome;
use mlc_shared::steps::{IngestMessage, PostEnvelope, audit_item};

use crate::embedded;
use crate::output::table;

#[derive(clap::Args)]
pub struct Args {
    /// The deployment's configuration.
    #[arg(long, short)]
    config: PathBuf,
    /// A document (source id or source document number) from the audit trail. Alone: re-run
    /// it from the start (re-read from the source). With --dead-lettered or --parked: only
    /// that document's dead letters or parked entry.
    #[arg(long)]
    document: Option<String>,
    /// Only documents of this kind (invoice, credit_note, purchase_order, supplier, payment):
    /// needed when --document names documents of several kinds (an invoice and a purchase
    /// order with the same id).
    #[arg(long)]
    kind: Option<String>,
    /// Move dead-lettered messages (both queues) back to their queue.
    #[arg(long)]
    dead_lettered: bool,
    /// Re-enqueue parked documents (after a missing mapping was added).
    #[arg(long)]
    parked: bool,
    /// Only documents of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// Only documents seen (with --document), dead-lettered (with --dead-lettered) or parked
    /// (with --parked) from this date or instant, inclusive: 2026-11-01 or 2026-11-01T08:00:00Z.
    #[arg(long)]
    from: Option<String>,
    /// Up to this date or instant (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// With --document: write the document into the target again even though the ledger
    /// records it as written (the target lost it: a reset or restored company). The ledger's
    /// record is forgotten first (audited); the writer still looks the document up in the
    /// target before it creates, so a document that is there is not duplicated.
    #[arg(long, requires = "document")]
    repost: bool,
    /// Close the dead letters of this document (source id or number) without writing it: it
    /// can never succeed (the source does not have it, it was entered by hand meanwhile).
    /// Needs --reason; audited as `discarded`.
    #[arg(long, value_name = "DOCUMENT", conflicts_with_all = ["document", "parked", "repost", "give_up"], requires = "reason")]
    discard: Option<String>,
    /// Give up on this parked document (source id or number): the source is answered, exactly
    /// once, that it will not be transferred, with --reason (Basware: a transfer-failure
    /// response, so the document returns to Basware's workflow), and the document is closed:
    /// no longer parked, never retried; audited as `discarded`. An integration whose source
    /// takes no such answer says so and leaves the document parked.
    #[arg(long, value_name = "DOCUMENT", conflicts_with_all = ["document", "parked", "repost", "dead_lettered"], requires = "reason")]
    give_up: Option<String>,
    /// Why (with --discard or --give-up), for the audit trail; a give-up also sends it to the
    /// source.
    #[arg(long)]
    reason: Option<String>,
    /// List what would be replayed; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What brings a document back.
#[derive(Clone, Debug)]
enum Action {
    /// A new ingest message (`via: "replay"`): the map step re-reads the source.
    Ingest(IngestMessage),
    /// A dead letter moved back to the end of its queue.
    Redrive { queue: QueueName, receipt: String },
    /// A parked document's ingest message, re-sent (`via: "replay"`).
    Unpark(IngestMessage),
}

#[derive(Clone, Debug)]
struct Target {
    integration: String,
    kind: String,
    source_id: String,
    number: Option<String>,
    action: Action,
    /// Why it is where it is (the park reason, the last error), for the listing.
    detail: String,
}

impl Target {
    fn doc(&self) -> (String, String, String) {
        (
            self.integration.clone(),
            self.kind.clone(),
            self.source_id.clone(),
        )
    }

    /// What the replay does to it; `dry`: what it would do (a dry run changes nothing).
    fn how(&self, dry: bool) -> String {
        match (&self.action, dry) {
            (Action::Ingest(_), false) => "re-read from the source".into(),
            (Action::Ingest(_), true) => "would be re-read from the source".into(),
            (Action::Redrive { queue, .. }, false) => {
                format!("dead letter moved back to the {} queue", queue.as_str())
            }
            (Action::Redrive { queue, .. }, true) => format!(
                "dead letter would move back to the {} queue",
                queue.as_str()
            ),
            (Action::Unpark(_), false) => "parked: re-enqueued".into(),
            (Action::Unpark(_), true) => "parked: would be re-enqueued".into(),
        }
    }
}

struct Window {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Window {
    fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
    fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

pub async fn run(mut a: Args) -> anyhow::Result<ExitCode> {
    if a.reason.is_some() && a.discard.is_none() && a.give_up.is_none() {
        bail!("--reason goes with --discard or --give-up");
    }
    if let Some(doc) = a.give_up.clone() {
        return give_up(&a, &doc).await;
    }
    if let Some(doc) = &a.discard {
        // The document's dead letters, selected as `--dead-lettered --document` would.
        a.document = Some(doc.clone());
        a.dead_lettered = true;
    }
    if a.document.is_none() && !a.dead_lettered && !a.parked {
        bail!("say what to replay: --document ID_OR_NUMBER, --dead-lettered or --parked");
    }
    let cfg = Config::load(&a.config)?;
    if let Some(name) = &a.integration
        && !cfg.integrations.iter().any(|i| &i.name == name)
    {
        let known: Vec<&str> = cfg.integrations.iter().map(|i| i.name.as_str()).collect();
        bail!(
            "integration '{name}' is not configured in {} (configured: {})",
            a.config.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let path = &cfg.runtime.database;
    if !path.exists() {
        bail!(
            "no database at {}: nothing has run with this configuration yet",
            path.display()
        );
    }
    let window = Window {
        from: a.from.as_deref().map(instant).transpose()?,
        to: a.to.as_deref().map(instant).transpose()?,
    };
    let db = Db::open(path).with_context(|| format!("opening {}", path.display()))?;
    let store = SqliteStore::new(db.clone());
    let queue = embedded::queue(&cfg, db);

    let targets = select(&a, &cfg, &store, &queue, &window).await?;
    if targets.is_empty() {
        eprintln!("nothing to replay: {}", describe(&a));
        // A named document that is not there is a mistake to report; an empty dead-letter
        // queue or parked list is good news.
        return Ok(if a.document.is_some() && a.discard.is_none() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(reason) = &a.reason {
        return discard(&store, &queue, &targets, reason, a.dry_run).await;
    }

    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            vec![
                t.integration.clone(),
                t.source_id.clone(),
                t.number.clone().unwrap_or_default(),
                t.how(a.dry_run),
                t.detail.clone(),
            ]
        })
        .collect();
    const HEADERS: [&str; 5] = ["integration", "document", "number", "replay", "was"];
    if a.dry_run {
        println!(
            "would replay {} document(s){} (dry run: nothing changed)",
            docs(&targets),
            if a.repost {
                ", forgetting the ledger's record of each first"
            } else {
                ""
            }
        );
        println!("{}", table(&HEADERS, &rows));
        return Ok(ExitCode::SUCCESS);
    }

    let secrets = embedded::open_secrets(&cfg)?;
    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    if a.repost {
        forget_ledger_entries(&pipeline, &store, &targets).await?;
    }

    let started = SystemClock.now();
    let mut replayed = Vec::new();
    let mut audited = HashSet::new();
    for t in &targets {
        let moved =
            match &t.action {
                Action::Ingest(m) | Action::Unpark(m) => {
                    queue
                        .send(QueueName::Ingest, vec![m.to_outgoing()])
                        .await
                        .with_context(|| format!("re-enqueueing {}", t.source_id))?;
                    true
                }
                Action::Redrive { queue: q, receipt } => queue
                    .redrive_dead_letter(*q, receipt)
                    .await
                    .with_context(|| format!("moving back the dead letter of {}", t.source_id))?,
            };
        if !moved {
            // Someone else (another replay) moved it meanwhile.
            continue;
        }
        replayed.push(t.clone());
        if audited.insert(t.doc()) {
            let mut item = audit_item(
                SystemClock.now(),
                &t.integration,
                &t.kind,
                &t.source_id,
                Step::Replay,
                AuditStatus::Received,
            );
            item.source_document_number = t.number.clone();
            store.append_audit(&item).await?;
        }
    }
    println!("replaying {} document(s)", docs(&replayed));
    println!("{}", table(&HEADERS, &rows));

    let stats = pipeline
        .drain(cfg.runtime.workers, Arc::new(|_| {}))
        .await?;
    tracing::info!(?stats, "replay drained");

    let parked = store.parked().await?;
    let mut outcome_rows = Vec::new();
    let mut dead = false;
    let mut seen = HashSet::new();
    for t in &replayed {
        if !seen.insert(t.doc()) {
            continue;
        }
        let items = store
            .query_audit(&AuditFilter {
                integration: Some(t.integration.clone()),
                document: Some(t.source_id.clone()),
                from: Some(started),
                ..AuditFilter::default()
            })
            .await?;
        let last = items
            .iter()
            .rev()
            .find(|i| i.source_id == t.source_id && i.step != Step::Replay);
        let still_parked = parked.iter().find(|p| {
            p.integration == t.integration && p.kind == t.kind && p.source_id == t.source_id
        });
        // A repeat of a written document is counted on its row, not logged: the ledger says
        // it was written before.
        let done_before = match pipeline
            .flow(&t.integration)
            .and_then(|f| f.ledger_key(&t.kind, &t.source_id))
        {
            Some(key) => store
                .ledger_entry(&key)
                .await?
                .filter(|e| e.state == LedgerState::Done),
            None => None,
        };
        let (status, detail) = outcome(
            last,
            still_parked.map(|p| p.reason.as_str()),
            done_before.as_ref(),
        );
        dead |= status == "dead_lettered";
        let number = last
            .and_then(|i| i.source_document_number.clone())
            .or_else(|| t.number.clone())
            .unwrap_or_default();
        outcome_rows.push(vec![
            t.integration.clone(),
            t.source_id.clone(),
            number,
            status.to_string(),
            detail,
        ]);
    }
    println!("\noutcome:");
    println!(
        "{}",
        table(
            &["integration", "document", "number", "status", "detail"],
            &outcome_rows
        )
    );
    Ok(if dead {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--give-up`: the parked entries of one document (by source id or number) are answered in
/// the source by their integration's give-up writer and closed (`Pipeline::give_up`).
async fn give_up(a: &Args, doc: &str) -> anyhow::Result<ExitCode> {
    let reason = a.reason.as_deref().unwrap_or_default().trim().to_string();
    if reason.is_empty() {
        bail!("--reason is empty: say why (it is sent to the source and audited)");
    }
    let cfg = Config::load(&a.config)?;
    let path = &cfg.runtime.database;
    if !path.exists() {
        bail!(
            "no database at {}: nothing has run with this configuration yet",
            path.display()
        );
    }
    let db = Db::open(path).with_context(|| format!("opening {}", path.display()))?;
    let store = SqliteStore::new(db);
    let parked: Vec<_> = store
        .parked()
        .await?
        .into_iter()
        .filter(|p| p.source_id == doc || p.source_document_number.as_deref() == Some(doc))
        .filter(|p| a.integration.as_deref().is_none_or(|i| i == p.integration))
        .filter(|p| {
            a.kind
                .as_deref()
                .is_none_or(|k| k.eq_ignore_ascii_case(&p.kind))
        })
        .collect();
    if parked.is_empty() {
        eprintln!(
            "nothing to give up: no parked document '{doc}'{} (a document given up before is \
             closed; `mlc audit --document {doc}` shows its history)",
            a.integration
                .as_deref()
                .map(|i| format!(" in integration '{i}'"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    const HEADERS: [&str; 5] = ["integration", "document", "number", "give-up", "was parked"];
    let row = |p: &mlc_shared::ports::ParkedDoc, what: String| {
        vec![
            p.integration.clone(),
            p.source_id.clone(),
            p.source_document_number.clone().unwrap_or_default(),
            what,
            p.reason.clone(),
        ]
    };
    if a.dry_run {
        let rows: Vec<_> = parked
            .iter()
            .map(|p| row(p, "would answer the source and close it".into()))
            .collect();
        println!(
            "would give up {} document(s) (dry run: nothing changed)",
            rows.len()
        );
        println!("{}", table(&HEADERS, &rows));
        return Ok(ExitCode::SUCCESS);
    }
    let secrets = embedded::open_secrets(&cfg)?;
    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let mut rows = Vec::new();
    let mut all = true;
    for p in &parked {
        let what = match pipeline.give_up(p, &reason).await {
            Ok(GiveUp::Answered(PostOutcome::Posted { number, .. })) => {
                format!("source answered ({number}); closed")
            }
            Ok(GiveUp::Answered(_)) => "source answered before; closed".to_string(),
            Ok(GiveUp::NotOffered) => {
                all = false;
                format!(
                    "not offered: integration '{}' has no give-up for {} documents; still parked",
                    p.integration, p.kind
                )
            }
            Ok(GiveUp::NotYet(PostOutcome::Parked(why))) => {
                all = false;
                format!("not given up: {why}; still parked")
            }
            Ok(GiveUp::NotYet(other)) => {
                all = false;
                format!("not answered yet ({other:?}); still parked, try again")
            }
            Err(e) => {
                all = false;
                format!("failed: {e}; still parked")
            }
        };
        rows.push(row(p, what));
    }
    println!("give-up of {} parked document(s)", rows.len());
    println!("{}", table(&HEADERS, &rows));
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--discard`: deletes the selected dead letters, each audited as `discarded` with the reason.
async fn discard(
    store: &SqliteStore,
    queue: &SqliteQueue,
    targets: &[Target],
    reason: &str,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("--reason is empty: say why the dead letters are closed");
    }
    let mut rows = Vec::new();
    for t in targets {
        let Action::Redrive { queue: q, receipt } = &t.action else {
            continue;
        };
        if !dry_run && !queue.discard_dead_letter(*q, receipt).await? {
            continue; // closed or moved back meanwhile
        }
        if !dry_run {
            let mut item = audit_item(
                SystemClock.now(),
                &t.integration,
                &t.kind,
                &t.source_id,
                Step::Replay,
                AuditStatus::Discarded,
            )
            .with_error(format!("dead letter closed by hand: {reason}"));
            item.source_document_number = t.number.clone();
            store.append_audit(&item).await?;
        }
        rows.push(vec![
            t.integration.clone(),
            t.source_id.clone(),
            t.number.clone().unwrap_or_default(),
            format!("{} queue", q.as_str()),
            t.detail.clone(),
        ]);
    }
    println!(
        "{} {} dead letter(s){}",
        if dry_run {
            "would discard"
        } else {
            "discarded"
        },
        rows.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    println!(
        "{}",
        table(&["integration", "document", "number", "from", "was"], &rows)
    );
    Ok(ExitCode::SUCCESS)
}

/// `--repost`: forgets what the ledger records of each document, audited, so the post step
/// writes it again (after looking for it in the target).
async fn forget_ledger_entries(
    pipeline: &embedded::EmbeddedPipeline,
    store: &SqliteStore,
    targets: &[Target],
) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for t in targets {
        if !seen.insert(t.doc()) {
            continue;
        }
        let flow = pipeline
            .flow(&t.integration)
            .with_context(|| format!("integration '{}' is not configured", t.integration))?;
        let Some(key) = flow.ledger_key(&t.kind, &t.source_id) else {
            bail!(
                "{} {} cannot be re-posted: documents of kind '{}' have no single ledger entry \
                 (replay it without --repost)",
                t.kind,
                t.source_id,
                t.kind
            );
        };
        let forgotten = match store.forget(&key, SystemClock.now()).await {
            Ok(f) => f,
            Err(StoreError::LostClaim(_)) => bail!(
                "{} {} is being written right now by a running mlc; try again when it is done",
                t.kind,
                t.source_id
            ),
            Err(e) => return Err(e).context("forgetting the ledger entry"),
        };
        let mut item = audit_item(
            SystemClock.now(),
            &t.integration,
            &t.kind,
            &t.source_id,
            Step::Replay,
            AuditStatus::Received,
        )
        .with_error(match &forgotten {
            Some(e) => format!(
                "re-post requested: the ledger's record ({} {} in {}) was forgotten",
                e.state_name(),
                e.target_number.as_deref().unwrap_or("-"),
                e.target.as_deref().unwrap_or("an unrecorded target")
            ),
            None => "re-post requested: the ledger had no record of it".into(),
        });
        item.source_document_number = t.number.clone();
        store.append_audit(&item).await?;
    }
    Ok(())
}

fn outcome(
    last: Option<&AuditItem>,
    parked: Option<&str>,
    done_before: Option<&LedgerEntry>,
) -> (&'static str, String) {
    if let Some(reason) = parked {
        return ("parked", reason.to_string());
    }
    let last = last.filter(|i| {
        !matches!(
            i.status,
            AuditStatus::Received | AuditStatus::Mapped | AuditStatus::Failed
        ) || done_before.is_none()
    });
    let Some(i) = last else {
        return match done_before {
            Some(e) => (
                "already_posted",
                e.target_number
                    .as_deref()
                    .map(|n| format!("target document {n}"))
                    .unwrap_or_default(),
            ),
            None => ("no outcome", "nothing was recorded for it".into()),
        };
    };
    let target = || {
        i.target_document_number
            .as_deref()
            .map(|n| format!("target document {n}"))
            .unwrap_or_default()
    };
    match i.status {
        AuditStatus::Posted => ("posted", target()),
        AuditStatus::AlreadyPosted => ("already_posted", target()),
        other => (
            other.as_str(),
            i.error
                .clone()
                .unwrap_or_else(|| format!("at step {}", i.step.as_str())),
        ),
    }
}

fn docs(targets: &[Target]) -> usize {
    targets
        .iter()
        .map(Target::doc)
        .collect::<HashSet<_>>()
        .len()
}

fn describe(a: &Args) -> String {
    let mut what = Vec::new();
    if a.dead_lettered {
        what.push("no dead-lettered message");
    }
    if a.parked {
        what.push("no parked document");
    }
    let mut s = if what.is_empty() {
        format!(
            "no document '{}' in the audit trail",
            a.document.as_deref().unwrap_or_default()
        )
    } else {
        what.join(" and ")
    };
    if !what.is_empty()
        && let Some(d) = &a.document
    {
        s += &format!(" for document '{d}'");
    }
    if let Some(i) = &a.integration {
        s += &format!(" in integration '{i}'");
    }
    match (&a.from, &a.to) {
        (Some(f), Some(t)) => s += &format!(" from {f} to {t}"),
        (Some(f), None) => s += &format!(" from {f}"),
        (None, Some(t)) => s += &format!(" before {t}"),
        (None, None) => {}
    }
    s
}

/// The documents `--document` names: (integration, kind, source id) → source document number.
type Named = BTreeMap<(String, String, String), Option<String>>;

async fn select(
    a: &Args,
    cfg: &Config,
    store: &SqliteStore,
    queue: &SqliteQueue,
    window: &Window,
) -> anyhow::Result<Vec<Target>> {
    let configured = |name: &str| cfg.integrations.iter().any(|i| i.name == name);
    let kind_wanted = |kind: &str| {
        a.kind
            .as_deref()
            .is_none_or(|k| k.eq_ignore_ascii_case(kind))
    };
    let wanted = |name: &str| a.integration.as_deref().is_none_or(|w| w == name);
    let named: Option<Named> = match &a.document {
        None => None,
        Some(d) => {
            let items = store
                .query_audit(&AuditFilter {
                    integration: a.integration.clone(),
                    document: Some(d.clone()),
                    ..AuditFilter::default()
                })
                .await?;
            let mut out: Named = BTreeMap::new();
            for i in items
                .iter()
                .filter(|i| i.step != Step::Replay && kind_wanted(&i.document_kind))
            {
                let e = out
                    .entry((
                        i.integration.clone(),
                        i.document_kind.clone(),
                        i.source_id.clone(),
                    ))
                    .or_default();
                if i.source_document_number.is_some() {
                    e.clone_from(&i.source_document_number);
                }
            }
            // Ids are per kind in the source (invoice 1 and purchase order 1): one of them is
            // never picked silently.
            let kinds: HashSet<&str> = out.keys().map(|(_, k, _)| k.as_str()).collect();
            if kinds.len() > 1 {
                let listed: Vec<String> = out
                    .iter()
                    .map(|((integration, kind, id), number)| match number {
                        Some(n) => format!("{kind} {id} ({n}) in {integration}"),
                        None => format!("{kind} {id} in {integration}"),
                    })
                    .collect();
                bail!(
                    "'{d}' names documents of several kinds: {}; say which with --kind",
                    listed.join(", ")
                );
            }
            Some(out)
        }
    };
    let doc_matches = |integration: &str, kind: &str, source_id: &str, number: Option<&str>| {
        kind_wanted(kind)
            && match (&a.document, &named) {
                (Some(d), Some(named)) => {
                    source_id == d
                        || number == Some(d.as_str())
                        || named
                            .keys()
                            .any(|(i, _, s)| i == integration && s == source_id)
                }
                _ => true,
            }
    };

    let mut out = Vec::new();
    if !a.dead_lettered && !a.parked {
        // A document from the audit trail, re-read from the source.
        for ((integration, kind, source_id), number) in named.iter().flatten() {
            if !configured(integration) {
                eprintln!(
                    "skipping {integration}/{source_id}: integration '{integration}' is no longer configured"
                );
                continue;
            }
            let Some(kind) = parse_kind(kind) else {
                continue;
            };
            if !window.is_open() {
                let seen = store
                    .query_audit(&AuditFilter {
                        integration: Some(integration.clone()),
                        document: Some(source_id.clone()),
                        from: window.from,
                        to: window.to,
                        ..AuditFilter::default()
                    })
                    .await?;
                if !seen.iter().any(|i| &i.source_id == source_id) {
                    continue;
                }
            }
            let last = store
                .query_audit(&AuditFilter {
                    integration: Some(integration.clone()),
                    document: Some(source_id.clone()),
                    ..AuditFilter::default()
                })
                .await?
                .into_iter()
                .rev()
                .find(|i| &i.source_id == source_id && i.step != Step::Replay);
            out.push(Target {
                integration: integration.clone(),
                kind: kind.as_str().to_string(),
                source_id: source_id.clone(),
                number: number.clone(),
                action: Action::Ingest(IngestMessage {
                    integration: integration.clone(),
                    kind,
                    source_id: source_id.clone(),
                    version: None,
                    via: "replay".into(),
                }),
                detail: last
                    .map(|i| i.status.as_str().to_string())
                    .unwrap_or_default(),
            });
        }
        return Ok(out);
    }

    if a.dead_lettered {
        for q in [QueueName::Ingest, QueueName::Post] {
            for m in queue.dead_letters(q).await? {
                let Some(id) = identity(q, &m) else {
                    eprintln!(
                        "skipping an undecodable dead letter in the {} queue ({})",
                        q.as_str(),
                        m.receipt
                    );
                    continue;
                };
                if !wanted(&id.integration)
                    || !doc_matches(
                        &id.integration,
                        &id.kind,
                        &id.source_id,
                        id.number.as_deref(),
                    )
                {
                    continue;
                }
                let dead_items = store
                    .query_audit(&AuditFilter {
                        integration: Some(id.integration.clone()),
                        document: Some(id.source_id.clone()),
                        status: Some(AuditStatus::DeadLettered),
                        ..AuditFilter::default()
                    })
                    .await?;
                let dead_items: Vec<&AuditItem> = dead_items
                    .iter()
                    .filter(|i| i.source_id == id.source_id)
                    .collect();
                if !window.is_open() && !dead_items.iter().any(|i| window.contains(i.at)) {
                    continue;
                }
                out.push(Target {
                    integration: id.integration,
                    kind: id.kind,
                    source_id: id.source_id,
                    number: id.number,
                    action: Action::Redrive {
                        queue: q,
                        receipt: m.receipt.clone(),
                    },
                    detail: dead_items
                        .last()
                        .and_then(|i| i.error.clone())
                        .unwrap_or_else(|| format!("{} deliveries", m.receive_count)),
                });
            }
        }
    }

    if a.parked {
        for p in store.parked().await? {
            if !wanted(&p.integration)
                || !doc_matches(
                    &p.integration,
                    &p.kind,
                    &p.source_id,
                    p.source_document_number.as_deref(),
                )
                || !window.contains(p.at)
            {
                continue;
            }
            let Ok(mut msg) = serde_json::from_str::<IngestMessage>(&p.message) else {
                eprintln!(
                    "skipping parked {}/{}: its stored message is unreadable",
                    p.integration, p.source_id
                );
                continue;
            };
            msg.via = "replay".into();
            out.push(Target {
                integration: p.integration.clone(),
                kind: p.kind.clone(),
                source_id: p.source_id.clone(),
                number: p.source_document_number.clone(),
                action: Action::Unpark(msg),
                detail: p.reason.clone(),
            });
        }
    }
    Ok(out)
}

struct Identity {
    integration: String,
    kind: String,
    source_id: String,
    number: Option<String>,
}

/// Whose message a dead letter is.
fn identity(queue: QueueName, m: &Message) -> Option<Identity> {
    match queue {
        QueueName::Ingest => {
            let msg: IngestMessage = serde_json::from_str(&m.body).ok()?;
            Some(Identity {
                integration: msg.integration,
                kind: msg.kind.as_str().to_string(),
                source_id: msg.source_id,
                number: None,
            })
        }
        QueueName::Post => {
            let msg = PostEnvelope::decode(&m.body).ok()?;
            // The number a person knows it by, where the payload carries one.
            let number = ["vendor_invoice_number", "number", "mapping_key"]
                .iter()
                .find_map(|k| msg.payload.get(*k).and_then(|v| v.as_str()))
                .map(str::to_string);
            Some(Identity {
                integration: msg.integration,
                kind: msg.kind.as_str().to_string(),
                source_id: msg.source_id,
                number,
            })
        }
    }
}

/// A document kind as the audit trail and the parked list spell it ("invoice").
fn parse_kind(s: &str) -> Option<DocumentKind> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("'{s}' is neither a date (2026-11-01) nor an RFC 3339 instant"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}
