use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use mlc_shared::config::Config;
use mlc_shared::flows::SecretLookup;
use mlc_shared::ports::{Parking, Queue, QueueName};
use mlc_shared::runtime::DrainStats;
use mlc_shared::steps::StepError;
use mlc_shared::steps::poll::PollReport;

use crate::embedded::{self, EmbeddedPipeline};
use crate::output::{for_terminal, spinner};
use crate::webhook_server::{self, Limits, Listener};

pub async fn run(config: &Path, once: bool) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let secrets = Arc::new(embedded::open_secrets(&cfg)?);
    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let workers = cfg.runtime.workers;

    if once {
        let pb = spinner("polling");
        let reports = pipeline.poll_all().await?;
        for (name, r) in &reports {
            // A spinner that is not drawn (output is not a terminal: cron, a pipe) drops what
            // it is asked to print; the poll line belongs in a cron mail too.
            if pb.is_hidden() {
                println!("{}", poll_line(name, r));
            } else {
                pb.println(poll_line(name, r));
            }
        }
        let pb2 = pb.clone();
        let stats = pipeline
            .drain(
                workers,
                Arc::new(move |s| {
                    pb2.set_message(format!(
                        "posted {}, parked {}, retries {}",
                        s.posted, s.parked, s.failed_attempts
                    ))
                }),
            )
            .await?;
        pb.finish_and_clear();
        println!(
            "mapped {}, posted {}, already posted {}, parked {}, skipped {}, failed attempts {}, dead-lettered {}",
            stats.mapped,
            stats.posted,
            stats.already_posted,
            stats.parked,
            stats.skipped,
            stats.failed_attempts,
            stats.dead_lettered
        );
        if stats.lost_receipts > 0 {
            println!(
                "{} delivery(ies) finished after their message had been delivered again (the other delivery found the work done)",
                stats.lost_receipts
            );
        }
        let waiting = pipeline.env.queue.depth(QueueName::Ingest).await?
            + pipeline.env.queue.depth(QueueName::Post).await?;
        if waiting > 0 && pipeline.backoffs.active().is_empty() {
            println!(
                "{waiting} message(s) wait for a later retry (why: `mlc audit --history --status failed`); \
                 the next run picks them up"
            );
        }
        let backed_off = pipeline.backoffs.active();
        for (name, left, why) in &backed_off {
            println!(
                "integration '{name}' is backed off for {} s more, its documents left queued for the next run: {}",
                left.as_secs(),
                for_terminal(why)
            );
        }
        // Sessions (B1) freed now, not at their timeout: they hold licences.
        pipeline.systems.logout_all().await;
        // Everything in a dead-letter queue needs a person, whenever it got there.
        let waiting = pipeline.audit_dead_letters().await?;
        if waiting > 0 {
            println!(
                "{waiting} message(s) in the dead-letter queues: see `mlc audit --status dead_lettered`, then `mlc replay --dead-lettered`"
            );
        }
        return Ok(if stats.dead_lettered > 0 || waiting > 0 {
            ExitCode::from(2)
        } else if !backed_off.is_empty() {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        });
    }

    // Webhook subscriptions are renewed only with a listener to answer their handshake.
    let mut upkeep = false;
    if let Some(addr) = &cfg.runtime.webhook_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        // Built before anything is served: a bad certificate stops `mlc run` here.
        let tls = match &cfg.runtime.webhook_tls {
            Some(t) => Some(webhook_server::tls_config(t)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        for f in &pipeline.flows {
            for channel in f.webhook_channels() {
                eprintln!(
                    "webhooks: {scheme}://{local}/webhooks/{}/{channel}",
                    f.name()
                );
            }
        }
        upkeep = true;
        let limits = Limits::for_this_process();
        if limits.max_connections < webhook_server::MAX_CONNECTIONS {
            eprintln!(
                "warning: the open-file limit ({}) leaves room for {} webhook connection(s) at once (raise it with ulimit -n)",
                webhook_server::open_file_limit().unwrap_or_default(),
                limits.max_connections
            );
        }
        let webhooks = Listener::new(pipeline.clone(), secrets.clone(), limits);
        match tls {
            Some(tls) => tokio::spawn(webhooks.serve_tls(listener, tls)),
            None => tokio::spawn(webhooks.serve(listener)),
        };
    } else {
        for i in cfg
            .integrations
            .iter()
            .filter(|i| i.sync.notifications.is_some())
        {
            eprintln!(
                "warning: integration '{}' has sync.notifications but runtime.webhook_listen is not set: its subscriptions are not renewed (the poll still runs)",
                i.name
            );
        }
    }

    let poller = {
        let p = pipeline.clone();
        let secrets_for_cycle = secrets.clone();
        let every = Duration::from_secs(cfg.runtime.poll_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                cycle(&p, upkeep, &*secrets_for_cycle).await;
            }
        })
    };
    // What the workers did since the last summary line.
    let done = Arc::new(Mutex::new(DrainStats::default()));
    let worker = {
        let p = pipeline.clone();
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                match p.drain(workers, Arc::new(|_| {})).await {
                    Ok(stats) => {
                        done.lock().unwrap_or_else(|e| e.into_inner()).add(&stats);
                        // Until a poll or a webhook queues something, a retry falls due, or
                        // another process changes the file: an idle `mlc run` does not ask the
                        // queues every half second (issue #16 item 4).
                        p.env.queue.idle(Duration::from_secs(60)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "worker failed; restarting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    };
    let summary = (cfg.runtime.summary_interval_secs > 0).then(|| {
        let p = pipeline.clone();
        let every = Duration::from_secs(cfg.runtime.summary_interval_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let stats = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
                match waiting(&p).await {
                    Ok(w) => eprintln!("{}", summary_line(every, &stats, &w)),
                    Err(e) => tracing::error!(error = %e, "could not read what waits"),
                }
            }
        })
    });
    eprintln!("running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    poller.abort();
    worker.abort();
    if let Some(s) = summary {
        s.abort();
    }
    pipeline.systems.logout_all().await;
    Ok(ExitCode::SUCCESS)
}

/// What waits, for the summary line.
#[derive(Debug, Default)]
struct Waiting {
    queued: u64,
    parked: usize,
    dead_lettered: usize,
    backed_off: Vec<String>,
}

async fn waiting(p: &EmbeddedPipeline) -> anyhow::Result<Waiting> {
    let q = &p.env.queue;
    Ok(Waiting {
        queued: q.depth(QueueName::Ingest).await? + q.depth(QueueName::Post).await?,
        parked: p.env.store.parked().await?.len(),
        dead_lettered: p.audit_dead_letters().await?,
        backed_off: p
            .backoffs
            .active()
            .into_iter()
            .map(|(name, left, _)| format!("{name} ({} s)", left.as_secs()))
            .collect(),
    })
}

/// The long-running loop's periodic line: "last 15 min: posted 12, …; now: 3 queued, …".
fn summary_line(every: Duration, d: &DrainStats, w: &Waiting) -> String {
    let secs = every.as_secs();
    let span = if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    };
    let mut line = format!(
        "last {span}: posted {}, already posted {}, parked {}, skipped {}, failed attempts {}, \
         dead-lettered {}; now: {} queued, {} parked, {} dead-lettered",
        d.posted,
        d.already_posted,
        d.parked,
        d.skipped,
        d.failed_attempts,
        d.dead_lettered,
        w.queued,
        w.parked,
        w.dead_lettered
    );
    if !w.backed_off.is_empty() {
        line.push_str(&format!("; backed off: {}", w.backed_off.join(", ")));
    }
    line
}

/// The `--once` summary of one integration's poll, with its other feeds:
/// "coupa-bc: polled 1 page(s), queued 3 invoice(s), 2 purchase orders, 1 suppliers, 0 payments".
fn poll_line(name: &str, r: &PollReport) -> String {
    let mut line = format!(
        "{name}: polled {} page(s), queued {} invoice(s)",
        r.pages, r.enqueued
    );
    for (feed, n) in &r.others {
        line.push_str(&format!(", {n} {feed}"));
    }
    line
}

/// What one cycle of the long-running loop did (the loop has logged it; the tests read it).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Cycle {
    pub upkeep: Vec<(String, Result<Vec<String>, StepError>)>,
    pub polled: Result<Vec<(String, PollReport)>, StepError>,
}

/// One cycle of `mlc run`: each integration's upkeep (renewing webhook subscriptions) when
/// `upkeep`, then poll every integration. Every failure is logged and the next cycle tries
/// again; a failed renewal never stops the poll (the poll is the backstop of notifications).
pub(crate) async fn cycle(p: &EmbeddedPipeline, upkeep: bool, secrets: &dyn SecretLookup) -> Cycle {
    let mut done = Vec::new();
    if upkeep {
        for name in p.integration_names() {
            let r = p
                .upkeep(name, secrets)
                .await
                .map(|done| done.iter().map(ToString::to_string).collect::<Vec<_>>());
            match &r {
                Ok(lines) => {
                    for l in lines {
                        tracing::info!(integration = %name, "{l}");
                    }
                }
                Err(e) => {
                    tracing::error!(integration = %name, error = %e, "upkeep failed")
                }
            }
            done.push((name.to_string(), r));
        }
    }
    let polled = p.poll_all().await;
    match &polled {
        Ok(reports) => {
            for (name, r) in reports {
                let others = r
                    .others
                    .iter()
                    .map(|(feed, n)| format!("{feed}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::info!(integration = %name, pages = r.pages, queued = r.enqueued, others = %others, "polled");
            }
        }
        // The next tick tries again from the same watermark: nothing is lost.
        Err(e) => tracing::error!(error = %e, "poll failed"),
    }
    Cycle {
        upkeep: done,
        polled,
    }
}

#[cfg(test)]
mod tests {
    use mlc_shared::ports::{Queue, QueueName, Window};

    use super::*;
    use crate::embedded::testkit::{CLIENT_STATE, Kit};

    #[test]
    fn the_periodic_summary_says_what_moved_and_what_waits() {
        let d = DrainStats {
            posted: 12,
            parked: 1,
            failed_attempts: 2,
            ..Default::default()
        };
        let w = Waiting {
            queued: 3,
            parked: 4,
            dead_lettered: 0,
            backed_off: vec!["coupa-bc (540 s)".into()],
        };
        assert_eq!(
            summary_line(Duration::from_secs(900), &d, &w),
            "last 15 min: posted 12, already posted 0, parked 1, skipped 0, failed attempts 2, \
             dead-lettered 0; now: 3 queued, 4 parked, 0 dead-lettered; backed off: coupa-bc (540 s)"
        );
    }

    #[test]
    fn the_once_summary_names_every_feed() {
        let now = chrono::Utc::now();
        let r = PollReport {
            window: Some(Window {
                lower: now,
                upper: now,
            }),
            pages: 1,
            enqueued: 3,
            unreadable: 0,
            watermark_advanced: true,
            others: vec![
                ("purchase orders".into(), 2),
                ("suppliers".into(), 1),
                ("payments".into(), 0),
            ],
        };
        assert_eq!(
            poll_line("coupa-bc", &r),
            "coupa-bc: polled 1 page(s), queued 3 invoice(s), 2 purchase orders, 1 suppliers, 0 payments"
        );
        let plain = PollReport {
            others: vec![],
            ..r
        };
        assert_eq!(
            poll_line("coupa-bc", &plain),
            "coupa-bc: polled 1 page(s), queued 3 invoice(s)"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_cycle_renews_then_polls_and_a_failed_renewal_does_not_stop_the_poll() {
        let k = Kit::start(true).await;
        k.simple_invoice("SUP-001", "CYCLE-1");
        // BC refuses this client state (over 50 characters): the renewal fails.
        k.secrets.set("bc-client-state", &"x".repeat(60)).unwrap();
        let c = cycle(&k.pipeline, true, &*k.secrets).await;
        assert!(c.upkeep[0].1.is_err(), "{c:?}");
        assert_eq!(c.polled.unwrap()[0].1.enqueued, 1, "the poll ran anyway");
        assert!(k.bc.subscriptions().is_empty());
        let depth = k.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap();
        assert_eq!(depth, 1);

        k.secrets.set("bc-client-state", CLIENT_STATE).unwrap();
        let c = cycle(&k.pipeline, true, &*k.secrets).await;
        let report = c.upkeep[0].1.as_ref().unwrap();
        assert_eq!(
            report,
            &["BC subscriptions: 1 created, 0 renewed, 0 current"]
        );
        assert!(c.polled.is_ok());
        assert_eq!(k.bc.subscriptions().len(), 1);
        assert!(k.bc.handshakes().iter().all(|h| h.accepted));
    }
}
