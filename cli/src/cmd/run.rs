use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mlc_shared::config::Config;
use mlc_shared::ports::Secrets;

use crate::embedded;
use crate::output::spinner;

pub async fn run(config: &Path, once: bool) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let secrets = embedded::open_secrets(&cfg)?;
    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let workers = cfg.runtime.workers;

    if once {
        let pb = spinner("polling");
        let reports = pipeline.poll_all().await?;
        for (name, r) in &reports {
            pb.println(format!(
                "{name}: polled {} page(s), queued {} invoice(s)",
                r.pages, r.enqueued
            ));
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
        // Everything in a dead-letter queue needs a person, whenever it got there.
        let waiting = pipeline.audit_dead_letters().await?;
        if waiting > 0 {
            println!(
                "{waiting} message(s) in the dead-letter queues: see `mlc audit --status dead_lettered`, then `mlc replay --dead-lettered`"
            );
        }
        return Ok(if stats.dead_lettered > 0 || waiting > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }

    if let Some(addr) = &cfg.runtime.webhook_listen {
        let coupa_secret = match cfg
            .systems
            .coupa
            .as_ref()
            .and_then(|c| c.webhook_secret.as_ref())
        {
            Some(name) => Some(
                secrets
                    .get(name)
                    .await
                    .with_context(|| format!("webhook secret '{name}'"))?,
            ),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        eprintln!(
            "webhooks: POST http://{}/webhooks/coupa/<integration>",
            listener.local_addr()?
        );
        let app = crate::webhook_server::router(pipeline.clone(), coupa_secret);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    let poller = {
        let p = pipeline.clone();
        let every = Duration::from_secs(cfg.runtime.poll_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match p.poll_all().await {
                    Ok(reports) => {
                        for (name, r) in reports {
                            tracing::info!(integration = %name, pages = r.pages, queued = r.enqueued, "polled");
                        }
                    }
                    // The next tick tries again from the same watermark: nothing is lost.
                    Err(e) => tracing::error!(error = %e, "poll failed"),
                }
            }
        })
    };
    let worker = {
        let p = pipeline.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = p.drain(workers, Arc::new(|_| {})).await {
                    tracing::error!(error = %e, "worker failed; restarting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    eprintln!("running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    poller.abort();
    worker.abort();
    Ok(ExitCode::SUCCESS)
}
