//! A metering relay in front of the AWS emulator: the functions reach moto through it, and it
//! counts every request by operation, read from the `X-Amz-Target` header the JSON protocols
//! carry (`DynamoDB_20120810.PutItem`, `AmazonSQS.SendMessage`,
//! `secretsmanager.GetSecretValue`) or, for a query-protocol call, its `Action` parameter. The
//! counts are what AWS bills by request (SQS, DynamoDB on demand, Secrets Manager).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

pub struct Meter {
    pub url: String,
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Meter {
    /// Starts the relay to `upstream` ("http://host:port") on a loopback port.
    pub async fn start(upstream: &str) -> Arc<Meter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let meter = Arc::new(Meter {
            url: format!("http://{}", listener.local_addr().unwrap()),
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            counts: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(meter.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        meter
    }

    /// The requests counted since the last call, by operation ("DynamoDB_20120810.PutItem").
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

fn operation(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> String {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.to_string();
    }
    let query = uri.query().unwrap_or_default().to_string();
    let form = String::from_utf8_lossy(body);
    for part in query.split('&').chain(form.split('&')) {
        if let Some(action) = part.strip_prefix("Action=") {
            return action.to_string();
        }
    }
    "other".into()
}

async fn forward(
    State(m): State<Arc<Meter>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *m.counts
        .lock()
        .unwrap()
        .entry(operation(&headers, &uri, &body))
        .or_default() += 1;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = m
        .client
        .request(method, format!("{}{path}", m.upstream))
        .body(body);
    for (name, value) in headers.iter() {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let mut out = HeaderMap::new();
            for (name, value) in r.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = r.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
