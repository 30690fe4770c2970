//! The webhook listener of `mlc run`: `GET|POST /webhooks/<integration>/<channel>`, answered
//! by the integration's flow (signature or client state checked over the raw body before
//! anything is read; 202 when queued, 401 on a bad signature, 400/413 on a bad body). The
//! routes of earlier versions, `/webhooks/<channel>/<integration>` (`/webhooks/coupa/coupa-bc`,
//! `/webhooks/bc/coupa-bc`), keep working: a path whose first segment is not an integration is
//! read that way.
//!
//! The listener faces the internet unauthenticated, so nobody can starve it ([`Limits`]):
//! a connection must send its request head within [`HEADER_READ_TIMEOUT`], which is also how
//! long a connection may sit idle (new, or kept alive between requests); its body within
//! [`BODY_READ_TIMEOUT`] (else 408, connection closed, buffer freed). At most
//! [`MAX_CONNECTIONS`] connections are open (fewer when the open-file limit is low); one more
//! is closed at once with a 503, never queued. Bodies are buffered as they arrive (nothing is
//! allocated ahead for a declared length), at most [`MAX_BODY_BYTES`] each (413) and, beyond
//! the first [`BODY_BYTES_OF_ITS_OWN`] of each, [`MAX_BUFFERED_BYTES`] across all connections
//! (503 beyond, `Retry-After`); a request head is at most [`MAX_HEAD_BYTES`]. Every answer says `X-Content-Type-Options: nosniff` (the
//! BC handshake echoes the caller's token as `text/plain`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mlc_shared::flows::{SecretLookup, WebhookRequest};
pub use mlc_shared::steps::webhook::MAX_BODY_BYTES;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::embedded::EmbeddedPipeline;

/// The subject DN of the client certificate a TLS connection presented and the listener
/// verified; set on every request of that connection (never from a header).
#[derive(Clone, Debug, Default)]
struct ClientCertSubject(Option<String>);

/// How long a connection has to send its request line and headers, from when it is accepted or
/// from the end of its previous answer: slow headers and idle sockets (new or kept alive) are
/// closed after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request has to send its whole body once its headers are in (408 after).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 256;
/// Request-body bytes held across all connections at once beyond each body's first
/// [`BODY_BYTES_OF_ITS_OWN`] (503 beyond).
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
/// The first bytes of every body, buffered whatever the others hold: bodies stalled to fill
/// [`MAX_BUFFERED_BYTES`] cannot keep a small webhook out (a BC notification or a Coupa
/// call-out is a few KiB). At most [`MAX_CONNECTIONS`] times this more.
pub const BODY_BYTES_OF_ITS_OWN: usize = 64 * 1024;
/// The largest request head (request line and headers), and the read buffer of a connection.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// File descriptors left to the rest of the process (database, outgoing connections) when the
/// open-file limit is what bounds the connections.
pub const RESERVED_FDS: u64 = 64;

/// The listener's limits; [`Limits::default`] is the constants above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub max_connections: usize,
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            body_read: BODY_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
        }
    }
}

impl Limits {
    /// The defaults, with fewer connections when the process's open-file limit would run out
    /// first (each connection is a descriptor; [`RESERVED_FDS`] are kept for the rest).
    pub fn for_this_process() -> Self {
        let mut l = Self::default();
        if let Some(fds) = open_file_limit() {
            let room = usize::try_from(fds.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            l.max_connections = l.max_connections.min(room.max(1));
        }
        l
    }
}

/// The soft `RLIMIT_NOFILE`, when there is one.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// What the listener holds right now, for tests, benchmarks and logs.
#[derive(Clone)]
pub struct Gauges {
    limits: Limits,
    connections: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
}

impl Gauges {
    fn new(limits: Limits) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            bytes: Arc::new(Semaphore::new(limits.max_buffered_bytes)),
            refused: Arc::new(AtomicU64::new(0)),
            limits,
        }
    }

    /// Connections being served.
    pub fn open_connections(&self) -> usize {
        self.limits.max_connections - self.connections.available_permits()
    }

    /// Request-body bytes buffered across connections, beyond each body's first
    /// [`BODY_BYTES_OF_ITS_OWN`].
    pub fn buffered_bytes(&self) -> usize {
        self.limits.max_buffered_bytes - self.bytes.available_permits()
    }

    /// Connections closed at once because [`Limits::max_connections`] were open.
    pub fn refused_connections(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

#[derive(Clone)]
struct AppState {
    pipeline: Arc<EmbeddedPipeline>,
    /// Where webhook keys and client states are read, at each request (a rotated secret is
    /// used at once).
    secrets: Arc<dyn SecretLookup>,
    gauges: Gauges,
}

/// The webhook listener: [`Listener::serve`] it on a bound socket.
pub struct Listener {
    app: Router,
    gauges: Gauges,
}

impl Listener {
    pub fn new(
        pipeline: Arc<EmbeddedPipeline>,
        secrets: Arc<dyn SecretLookup>,
        limits: Limits,
    ) -> Self {
        let gauges = Gauges::new(limits);
        let app = Router::new()
            .route("/webhooks/{first}/{second}", get(webhook).post(webhook))
            .layer(axum::middleware::map_response(nosniff))
            .with_state(AppState {
                pipeline,
                secrets,
                gauges: gauges.clone(),
            });
        Self { app, gauges }
    }

    pub fn gauges(&self) -> Gauges {
        self.gauges.clone()
    }

    /// Accepts and serves connections until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        self.serve_with(listener, None).await
    }

    /// As [`Listener::serve`], over TLS (`tls`: [`tls_config`]): a client certificate, when
    /// one is presented, is verified at the handshake and its subject handed to the flows.
    pub async fn serve_tls(self, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
        self.serve_with(listener, Some(tokio_rustls::TlsAcceptor::from(tls)))
            .await
    }

    async fn serve_with(self, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            // Also the idle time of a kept-alive connection: hyper starts it again when an
            // answer is done.
            .header_read_timeout(self.gauges.limits.header_read)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let http = Arc::new(http);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: wait for connections to close.
                    tracing::error!(error = %e, "webhook listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = self.gauges.connections.clone().try_acquire_owned() else {
                self.gauges.refused.fetch_add(1, Ordering::Relaxed);
                // Without waiting: the socket is writable, and the answer fits its buffer.
                let _ = stream.try_write(BUSY);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let http = http.clone();
            let app = self.app.clone();
            let tls = tls.clone();
            let handshake = self.gauges.limits.header_read;
            tokio::spawn(async move {
                let _slot: OwnedSemaphorePermit = slot;
                let Some(acceptor) = tls else {
                    let service = TowerToHyperService::new(app);
                    if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(error = %e, "webhook connection closed");
                    }
                    return;
                };
                // The handshake is bounded like a request head.
                let stream = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "webhook TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let subject = ClientCertSubject(
                    stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|leaf| subject_of(leaf.as_ref())),
                );
                let app = app.layer(axum::Extension(subject));
                let service = TowerToHyperService::new(app);
                if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!(error = %e, "webhook connection closed");
                }
            });
        }
    }
}

/// The subject DN of a DER certificate, RFC 4514 order reversed into the usual reading
/// ("CN=…, O=…, C=…"); `None` if it cannot be read.
fn subject_of(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let rdns: Vec<String> = cert
        .tbs_certificate
        .subject
        .0
        .iter()
        .rev()
        .map(|rdn| rdn.to_string())
        .collect();
    Some(rdns.join(", "))
}

/// The listener's TLS settings from `[runtime.webhook_tls]`: its certificate and key; with
/// `client_ca_file`, client certificates from those CAs are verified (and one from another
/// issuer refused at the handshake), while a client presenting none is still served.
pub fn tls_config(
    tls: &mlc_shared::config::WebhookTls,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|i| i.collect::<Result<_, _>>())
        .with_context(|| format!("webhook TLS certificate {}", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("webhook TLS key {}", tls.key_file.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("webhook client CA {}", ca.display()))?
            {
                roots.add(c.with_context(|| format!("webhook client CA {}", ca.display()))?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The answer to a connection over [`Limits::max_connections`].
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 38\r\nConnection: close\r\n\r\ntoo many connections; try again later\n";

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn nosniff(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn webhook(
    State(s): State<AppState>,
    cert: Option<axum::Extension<ClientCertSubject>>,
    Path((first, second)): Path<(String, String)>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Held until the answer is made; its bytes count against the shared budget till then.
    let body = match buffer(&s.gauges, &headers, body).await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let names = s.pipeline.integration_names();
    let (integration, channel) = if names.contains(&first.as_str()) {
        (first, second)
    } else {
        (second, first)
    };
    let query: Vec<(String, String)> = query.into_iter().collect();
    let req = WebhookRequest {
        channel: &channel,
        method: method.as_str(),
        headers: &headers,
        query: &query,
        body: &body.bytes,
        // Set by the TLS listener from the verified certificate; plain HTTP has none.
        client_cert_subject: cert.as_ref().and_then(|c| c.0.0.as_deref()),
    };
    let reply = s.pipeline.webhook(&integration, &*s.secrets, req).await;
    text(
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
}

/// A request body, and its share of [`Limits::max_buffered_bytes`].
struct Buffered {
    bytes: Vec<u8>,
    _share: Option<OwnedSemaphorePermit>,
}

/// Reads the body as it arrives, within [`Limits::body_read`], [`MAX_BODY_BYTES`] and the
/// shared budget. A refusal drops what was read at once, and closes the connection.
async fn buffer(g: &Gauges, headers: &HeaderMap, mut body: Body) -> Result<Buffered, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > MAX_BODY_BYTES as u64
    {
        return Err(too_large(n));
    }
    let read = async {
        let mut out = Buffered {
            bytes: Vec::new(),
            _share: None,
        };
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(closing(text(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read\n".into(),
                )));
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            let total = out.bytes.len() + data.len();
            if total > MAX_BODY_BYTES {
                return Err(too_large(total as u64));
            }
            let own = BODY_BYTES_OF_ITS_OWN
                .saturating_sub(out.bytes.len())
                .min(data.len());
            let share = u32::try_from(data.len() - own)
                .ok()
                .and_then(|n| g.bytes.clone().try_acquire_many_owned(n).ok());
            let Some(share) = share else {
                tracing::warn!("webhook refused: the listener's body buffer is full");
                let mut r = closing(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many request bodies at once; try again later\n".into(),
                ));
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                return Err(r);
            };
            match &mut out._share {
                Some(held) => held.merge(share),
                none => *none = Some(share),
            }
            out.bytes.extend_from_slice(&data);
        }
        Ok(out)
    };
    match tokio::time::timeout(g.limits.body_read, read).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("webhook refused: the body was not sent in time");
            Err(closing(text(
                StatusCode::REQUEST_TIMEOUT,
                "the body was not sent in time\n".into(),
            )))
        }
    }
}

fn too_large(n: u64) -> Response {
    closing(text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body has {n} bytes or more; the limit is {MAX_BODY_BYTES}\n"),
    ))
}

/// Closes the connection after this answer (its body may not have been read).
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mlc_shared::ports::{Queue, QueueName};

    use super::*;
    use crate::embedded::testkit::{CLIENT_STATE, Kit, raw_http};

    async fn ingest(k: &Kit) -> u64 {
        k.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap()
    }

    fn notification(client_state: &str) -> String {
        serde_json::json!({"value": [{
            "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
            "clientState": client_state,
            "expirationDateTime": "2030-01-01T00:00:00Z",
            "resource": "api/v2.0/companies(b18aed47-c385-49d2-b954-dbdf8ad71780)/purchaseInvoices(26814998-936a-401c-81c1-0e848a64971d)",
            "changeType": "updated",
            "lastModifiedDateTime": "2029-12-29T12:54:20.467Z"
        }]})
        .to_string()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_handshake_is_answered_with_the_token_alone_on_get_and_post() {
        let k = Kit::start(true).await;
        for method in ["GET", "POST"] {
            let r = raw_http(
                k.addr,
                method,
                "/webhooks/coupa-bc/bc?validationToken=a%2Bb%20c-123",
                "",
            )
            .await;
            assert_eq!(r.status, 200, "{method}: {r:?}");
            assert_eq!(r.body, "a+b c-123", "{method}: exactly the token");
            assert!(r.content_type.starts_with("text/plain"), "{method}: {r:?}");
        }
        assert_eq!(ingest(&k).await, 0, "a handshake queues nothing");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_notification_with_our_client_state_queues_one_poll_and_others_are_refused() {
        let k = Kit::start(true).await;
        let url = "/webhooks/bc/coupa-bc";
        let wrong = raw_http(k.addr, "POST", url, &notification("someone-else")).await;
        assert_eq!(wrong.status, 401, "{wrong:?}");
        let garbage = raw_http(k.addr, "POST", url, "{not json").await;
        assert_eq!(garbage.status, 400, "{garbage:?}");
        assert_eq!(ingest(&k).await, 0);
        let ok = raw_http(k.addr, "POST", url, &notification(CLIENT_STATE)).await;
        assert_eq!(ok.status, 202, "{ok:?}");
        assert_eq!(ingest(&k).await, 1);
        let unknown = raw_http(k.addr, "POST", "/webhooks/bc/nope", "").await;
        assert_eq!(
            (unknown.status, unknown.body.as_str()),
            (401, wrong.body.as_str())
        );
        // The client state is never echoed.
        assert!(!format!("{wrong:?}{ok:?}").contains(CLIENT_STATE));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_routes_of_earlier_versions_still_answer() {
        let k = Kit::start(true).await;
        let r = raw_http(
            k.addr,
            "GET",
            "/webhooks/bc/coupa-bc?validationToken=old-route",
            "",
        )
        .await;
        assert_eq!((r.status, r.body.as_str()), (200, "old-route"), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn without_notifications_configured_the_bc_route_refuses_even_the_handshake() {
        let k = Kit::start(false).await;
        let r = raw_http(
            k.addr,
            "GET",
            "/webhooks/bc/coupa-bc?validationToken=t1",
            "",
        )
        .await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.body, mlc_shared::flows::REFUSED_BODY);
    }

    /// Renewal through the pipeline: the simulator's handshake reaches this listener, and a
    /// change to a purchase invoice comes back as a notification that queues the poll.
    #[tokio::test(flavor = "multi_thread")]
    async fn renewal_creates_the_subscription_through_the_handshake_and_notifications_arrive() {
        let k = Kit::start(true).await;
        let renew = || async {
            k.pipeline
                .upkeep("coupa-bc", &*k.secrets)
                .await
                .map(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let first = renew().await.unwrap();
        assert_eq!(first, ["BC subscriptions: 1 created, 0 renewed, 0 current"]);
        let hs = k.bc.handshakes();
        assert_eq!(hs.len(), 1);
        assert!(hs[0].accepted, "{hs:?}");
        let subs = k.bc.subscriptions();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].notification_url, k.notification_url());
        assert_eq!(subs[0].client_state, CLIENT_STATE);
        assert!(subs[0].resource.ends_with("/purchaseInvoices"), "{subs:?}");

        // Fresh: left alone. Nearly expired: renewed, with a second handshake.
        let again = renew().await.unwrap();
        assert_eq!(again, ["BC subscriptions: 0 created, 0 renewed, 1 current"]);
        let soon = chrono::Utc::now() + chrono::Duration::hours(1);
        assert!(k.bc.set_subscription_expiry(&subs[0].id, soon));
        let renewed = renew().await.unwrap();
        assert_eq!(
            renewed,
            ["BC subscriptions: 0 created, 1 renewed, 0 current"]
        );
        assert_eq!(k.bc.handshakes().len(), 2);
        assert!(k.bc.handshakes()[1].accepted);

        // An invoice posted to BC changes purchaseInvoices: BC notifies, we queue the poll.
        k.simple_invoice("SUP-001", "NOTE-1");
        k.pipeline.poll_all().await.unwrap();
        let mut skipped = k.pipeline.drain(2, Arc::new(|_| {})).await.unwrap().skipped;
        assert_eq!(k.bc.purchase_invoices().len(), 1);
        // Wait for BC's notifications to settle (each change window is one POST).
        let mut delivered = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = k.bc.notifications();
            if !now.is_empty() && now.len() == delivered.len() {
                break;
            }
            delivered = now;
        }
        assert!(!delivered.is_empty(), "BC sent no notification");
        assert!(
            delivered.iter().all(|n| n.status == Some(202)),
            "{delivered:?}"
        );
        // The queued poll runs as a skipped map step (nothing is paid yet); notifications in
        // one 30-second window share a dedup id.
        skipped += k.pipeline.drain(2, Arc::new(|_| {})).await.unwrap().skipped;
        assert!(
            (1..=delivered.len() as u64).contains(&skipped),
            "{skipped} paid-status poll(s) for {} notification(s)",
            delivered.len()
        );
        assert_eq!(ingest(&k).await, 0);
        assert_eq!(k.bc.subscriptions().len(), 1, "BC kept the subscription");
    }
}
