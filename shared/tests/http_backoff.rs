//! Backing off, as the server sees it: a small local server records when each request arrives
//! and with which token, and answers 429s or 503s on a script. A server's wait is obeyed in full
//! by every clone of a client, long waits go back to the queue instead of being slept, the
//! client resumes gently, and requests that waited carry the token current when they leave.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::json;

use mlc_shared::ports::{SecretString, SystemError};
use mlc_shared::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, RateBudget, TokenCache,
};

/// One scripted non-2xx answer, given to the next request that carries a valid token.
#[derive(Clone, Copy)]
struct Refusal {
    status: StatusCode,
    retry_after: Option<u64>,
    /// Invalidate every token issued so far as this answer goes out (the token expires while
    /// the client's requests wait out the pause).
    expire_tokens: bool,
}

impl Refusal {
    fn throttle(retry_after: Option<u64>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            expire_tokens: false,
        }
    }
}

#[derive(Default)]
struct Server {
    /// When each API request arrived, in order.
    arrivals: Vec<Instant>,
    /// When each scripted refusal went out, in order.
    refused_at: Vec<Instant>,
    script: VecDeque<Refusal>,
    issued: u32,
    valid: HashSet<String>,
    unauthorized: u32,
}

type Shared = Arc<Mutex<Server>>;

async fn token(State(s): State<Shared>) -> Response {
    let mut s = s.lock().unwrap();
    s.issued += 1;
    let token = format!("t-{}", s.issued);
    s.valid.insert(token.clone());
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 3600})).into_response()
}

async fn api(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    let now = Instant::now();
    s.arrivals.push(now);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !s.valid.contains(&token) {
        s.unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    }
    let Some(r) = s.script.pop_front() else {
        return Json(json!({"ok": true})).into_response();
    };
    s.refused_at.push(now);
    if r.expire_tokens {
        s.valid.clear();
    }
    let mut resp = (r.status, Json(json!({"error": "slow down"}))).into_response();
    if let Some(secs) = r.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
    }
    resp
}

/// Serves the API with `script`; returns its state and base URL.
async fn serve(script: impl IntoIterator<Item = Refusal>) -> (Shared, String) {
    let state: Shared = Arc::new(Mutex::new(Server {
        script: script.into_iter().collect(),
        ..Server::default()
    }));
    let app = Router::new()
        .route("/token", post(token))
        .route("/api", any(api))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, format!("http://{addr}"))
}

fn client(base: &str, settings: HttpSettings) -> ApiClient {
    ApiClient::new(
        TokenCache::new(ClientCredentials {
            token_url: format!("{base}/token"),
            client_id: "c".into(),
            client_secret: SecretString::new("s"),
            scope: "api".into(),
        }),
        vec![],
        settings,
    )
    .unwrap()
}

/// Waits until `client` has been throttled `n` times (the pause is in place by then).
async fn throttled(client: &ApiClient, n: u64) {
    while client.stats.throttled.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends one GET from each of `n` clones of `client` at once; all must succeed.
async fn callers(client: &ApiClient, base: &str, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let c = client.clone();
            let url = format!("{base}/api");
            tokio::spawn(async move {
                c.send(&ApiRequest::get(url)).await.unwrap();
            })
        })
        .collect()
}

#[tokio::test]
async fn a_retry_after_above_the_inline_maximum_goes_back_to_the_queue_in_full() {
    let (server, base) = serve([Refusal::throttle(Some(45))]).await;
    let client = client(
        &base,
        HttpSettings {
            max_inline_wait: Duration::from_secs(1),
            ..HttpSettings::default()
        },
    );
    let req = ApiRequest::post_json(format!("{base}/api"), &json!({"n": 1}));

    let e = client.send(&req).await.unwrap_err();
    assert!(
        matches!(e, HttpError::Status { status: 429, retry_after: Some(d), .. }
            if d == Duration::from_secs(45)),
        "the server's 45 s, not cut to 30: {e:?}"
    );
    match SystemError::from(e) {
        SystemError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(45)));
        }
        other => panic!("a 429 is transient: {other:?}"),
    }

    // Another worker of the same client is not let through inside the window either.
    let e = client.clone().send(&req).await.unwrap_err();
    match &e {
        HttpError::Paused { retry_after, .. } => {
            assert!(*retry_after > Duration::from_secs(40), "{e}");
        }
        other => panic!("expected the client to be paused: {other:?}"),
    }
    assert!(matches!(
        SystemError::from(e),
        SystemError::Transient { retry_after: Some(d), .. } if d > Duration::from_secs(40)
    ));
    assert_eq!(
        server.lock().unwrap().arrivals.len(),
        1,
        "nothing is sent again inside the 45 s window"
    );
}

#[tokio::test]
async fn one_429_pauses_every_caller_of_the_client_for_the_whole_window() {
    let (server, base) = serve([Refusal::throttle(Some(2))]).await;
    let client = client(&base, HttpSettings::default());

    let first = callers(&client, &base, 1).await;
    throttled(&client, 1).await;
    // A second worker starts while the first waits out the server's 2 s.
    let second = callers(&client, &base, 1).await;
    for h in first.into_iter().chain(second) {
        h.await.unwrap();
    }

    let s = server.lock().unwrap();
    assert_eq!(
        s.arrivals.len(),
        3,
        "the refused request, its retry, the other worker's"
    );
    let window_end = s.refused_at[0] + Duration::from_secs(2);
    for (i, at) in s.arrivals.iter().enumerate().skip(1) {
        assert!(
            *at >= window_end,
            "request {i} arrived {:?} after the 429 that asked for 2 s",
            at.duration_since(s.refused_at[0])
        );
    }
}

#[tokio::test]
async fn a_429_without_retry_after_pauses_everyone_for_the_backoff() {
    let (server, base) = serve([Refusal::throttle(None)]).await;
    let client = client(&base, HttpSettings::default());

    let first = callers(&client, &base, 1).await;
    throttled(&client, 1).await;
    let window_end = client
        .paused_until()
        .expect("a 429 without Retry-After pauses the client for a backoff");
    let others = callers(&client, &base, 2).await;
    for h in first.into_iter().chain(others) {
        h.await.unwrap();
    }

    let s = server.lock().unwrap();
    assert_eq!(s.arrivals.len(), 4);
    for (i, at) in s.arrivals.iter().enumerate().skip(1) {
        assert!(*at >= window_end, "request {i} arrived inside the backoff");
    }
}

#[tokio::test]
async fn after_the_window_the_waiting_callers_resume_one_at_a_time() {
    // 40 per 4 s: a GCRA burst of 2, then one every 4 s / 38 ≈ 105 ms. Idle through the pause,
    // the limiter alone would let two waiting callers out at once.
    let budget = RateBudget {
        requests: 40,
        window_secs: 4,
        concurrent: None,
    };
    let period = Duration::from_secs(4) / 38;
    let (server, base) = serve([Refusal::throttle(Some(1))]).await;
    let client = client(
        &base,
        HttpSettings {
            budget: Some(budget),
            ..HttpSettings::default()
        },
    );

    let first = callers(&client, &base, 1).await;
    throttled(&client, 1).await;
    let waiting = callers(&client, &base, 5).await;
    for h in first.into_iter().chain(waiting) {
        h.await.unwrap();
    }

    let s = server.lock().unwrap();
    assert_eq!(s.arrivals.len(), 7);
    let window_end = s.refused_at[0] + Duration::from_secs(1);
    let resumed = &s.arrivals[1..];
    assert!(resumed.iter().all(|at| *at >= window_end));
    for pair in resumed.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        // Half the period: room for timer and scheduling noise, far from a burst's ~0.
        assert!(
            gap >= period / 2,
            "gaps after the pause {:?}, the pacer's period {period:?}",
            resumed
                .windows(2)
                .map(|p| p[1].duration_since(p[0]))
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn requests_that_waited_out_a_pause_carry_the_token_current_when_they_leave() {
    // The token expires while four workers wait behind the pause.
    let (server, base) = serve([Refusal {
        expire_tokens: true,
        ..Refusal::throttle(Some(1))
    }])
    .await;
    let client = client(&base, HttpSettings::default());

    let first = callers(&client, &base, 1).await;
    throttled(&client, 1).await;
    let waiting = callers(&client, &base, 4).await;
    for h in first.into_iter().chain(waiting) {
        h.await.unwrap();
    }

    let s = server.lock().unwrap();
    assert!(
        s.unauthorized <= 1,
        "{} 401s after one expiry: requests left with a replaced token",
        s.unauthorized
    );
    assert_eq!(s.issued, 2, "one token before the expiry, one after");
}

#[tokio::test]
async fn a_503_with_retry_after_on_a_post_fails_the_post_and_pauses_the_client() {
    let (server, base) = serve([Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        retry_after: Some(2),
        expire_tokens: false,
    }])
    .await;
    // BC: a 503 is not a throttle, and its post action may have gone through.
    let client = client(&base, HttpSettings::default());

    let e = client
        .send(&ApiRequest::post_empty(format!("{base}/api")))
        .await
        .unwrap_err();
    assert!(
        matches!(e, HttpError::Status { status: 503, retry_after: Some(d), .. }
            if d == Duration::from_secs(2)),
        "{e:?}"
    );
    // A read from another worker right after waits for the window the server announced.
    client
        .clone()
        .send(&ApiRequest::get(format!("{base}/api")))
        .await
        .unwrap();

    let s = server.lock().unwrap();
    assert_eq!(
        s.arrivals.len(),
        2,
        "the post is not repeated inside the call"
    );
    assert!(s.arrivals[1] >= s.refused_at[0] + Duration::from_secs(2));
}
