//! The auth flavours of the shared HTTP client against small local servers: client credentials,
//! a rotating refresh token stored back through the encrypted secrets file (Concur), and a
//! session-cookie login (SAP B1 Service Layer).

#[cfg(feature = "aws")]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Json, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::ports::{PutOutcome, SecretError, SecretString, SecretVersion, Secrets};
use mlc_shared::systems::http::auth::BoxFuture;
use mlc_shared::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, RefreshTokenAuth,
    RefreshTokenSettings, SessionAuth, SessionLogin, TokenCache, TokenPersistence, TokenStore,
};

/// Serves `app` on a free local port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token"})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Client credentials (Coupa, BC, F&O, Basware)

#[derive(Default)]
struct CcServer {
    issued: u32,
    valid: HashSet<String>,
    calls: u32,
    /// `expires_in` as sent; "3600" when unset.
    expires_in: Option<&'static str>,
    /// Refuse every token request (a wrong secret, an outage).
    refuse_tokens: bool,
}

async fn cc_token(
    State(s): State<Arc<Mutex<CcServer>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap();
    if f.get("grant_type").map(String::as_str) != Some("client_credentials")
        || f.get("client_secret").map(String::as_str) != Some("cc-secret")
        || s.refuse_tokens
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    s.issued += 1;
    let token = format!("cc-{}", s.issued);
    s.valid.insert(token.clone());
    let expires_in = s.expires_in.unwrap_or("3600");
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}))
        .into_response()
}

async fn cc_api(State(s): State<Arc<Mutex<CcServer>>>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    s.calls += 1;
    match bearer(&headers) {
        Some(t) if s.valid.contains(&t) => Json(json!({"ok": true})).into_response(),
        _ => unauthorized(),
    }
}

#[tokio::test]
async fn client_credentials_reuse_a_token_and_refetch_it_once_on_401() {
    let state = Arc::new(Mutex::new(CcServer::default()));
    let base = serve(
        Router::new()
            .route("/token", post(cc_token))
            .route("/api", get(cc_api))
            .with_state(state.clone()),
    )
    .await;
    let client = ApiClient::new(
        TokenCache::new(ClientCredentials {
            token_url: format!("{base}/token"),
            client_id: "cc".into(),
            client_secret: SecretString::new("cc-secret"),
            scope: "read".into(),
        }),
        vec![],
        HttpSettings::default(),
    )
    .unwrap();
    for _ in 0..3 {
        client
            .send(&ApiRequest::get(format!("{base}/api")))
            .await
            .unwrap();
    }
    assert_eq!(state.lock().unwrap().issued, 1, "one token for three calls");
    // Revoked early: one 401, one new token, one replay.
    state.lock().unwrap().valid.clear();
    client
        .send(&ApiRequest::get(format!("{base}/api")))
        .await
        .unwrap();
    let s = state.lock().unwrap();
    assert_eq!((s.issued, s.calls), (2, 5));
}

/// A client-credentials server on a free port, and its state.
async fn cc_server() -> (Arc<Mutex<CcServer>>, String) {
    let state = Arc::new(Mutex::new(CcServer::default()));
    let base = serve(
        Router::new()
            .route("/token", post(cc_token))
            .route("/api", get(cc_api))
            .with_state(state.clone()),
    )
    .await;
    (state, base)
}

/// One "process": its own secrets-file handle, token cache and client, nothing shared in
/// memory with another.
fn cc_process(base: &str, client_id: &str, store: Option<Arc<dyn TokenStore>>) -> ApiClient {
    let persistence = store.map(|s| TokenPersistence::new(s, "token-cache/cc"));
    ApiClient::new(
        TokenCache::persisted(
            ClientCredentials {
                token_url: format!("{base}/token"),
                client_id: client_id.into(),
                client_secret: SecretString::new("cc-secret"),
                scope: "read".into(),
            },
            persistence,
        ),
        vec![],
        HttpSettings::default(),
    )
    .unwrap()
}

/// An empty secrets file in a fresh directory.
fn empty_secrets() -> (tempfile::TempDir, std::path::PathBuf, SecretKey) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    (dir, path, SecretKey::generate())
}

fn file_store(path: &std::path::Path, key: &SecretKey) -> Option<Arc<dyn TokenStore>> {
    Some(Arc::new(SecretFile::open(path, key.clone()).unwrap()))
}

/// The stored token-cache entry, as JSON.
fn cached_entry(path: &std::path::Path, key: &SecretKey) -> serde_json::Value {
    let raw = SecretFile::open(path, key.clone())
        .unwrap()
        .read("token-cache/cc")
        .unwrap();
    serde_json::from_str(raw.expose()).unwrap()
}

#[tokio::test]
async fn a_second_process_reuses_the_stored_token_while_it_is_valid() {
    let (state, base) = cc_server().await;
    let (_dir, path, key) = empty_secrets();
    let api = format!("{base}/api");
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(state.lock().unwrap().issued, 1);
    let entry = cached_entry(&path, &key);
    assert_eq!(entry["access_token"], "cc-1", "{entry}");
    assert_eq!(entry["client_id"], "cc");
    assert_eq!(entry["token_url"], format!("{base}/token"));
    let expires = entry["expires_at_ms"].as_i64().unwrap();
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    assert!((in_an_hour - expires).abs() < 60_000, "{entry}");

    // The next process: no token request, the stored token is accepted.
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    let s = state.lock().unwrap();
    assert_eq!(
        (s.issued, s.calls),
        (1, 2),
        "a token request in the second process"
    );
}

#[tokio::test]
async fn a_stored_token_is_not_reused_for_another_client_id_or_without_a_store() {
    let (state, base) = cc_server().await;
    let (_dir, path, key) = empty_secrets();
    let api = format!("{base}/api");
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    cc_process(&base, "cc-renamed", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(
        state.lock().unwrap().issued,
        2,
        "another client id reused the token"
    );
    assert_eq!(cached_entry(&path, &key)["client_id"], "cc-renamed");
    // Without a store (Lambda) every process fetches its own.
    cc_process(&base, "cc-renamed", None)
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(state.lock().unwrap().issued, 3);
}

#[tokio::test]
async fn a_stored_token_near_or_past_its_expiry_is_not_used() {
    let (state, base) = cc_server().await;
    // A one-second token is used for half a second.
    state.lock().unwrap().expires_in = Some("1");
    let (_dir, path, key) = empty_secrets();
    let api = format!("{base}/api");
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(state.lock().unwrap().issued, 1, "reused while usable");
    // Within its refresh margin (still valid for 300 ms): the next process asks anew.
    tokio::time::sleep(Duration::from_millis(700)).await;
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(
        state.lock().unwrap().issued,
        2,
        "a token near expiry was used"
    );
    assert_eq!(cached_entry(&path, &key)["access_token"], "cc-2");

    // An entry whose expiry has passed (whatever its refresh point says) is not used either.
    let mut entry = cached_entry(&path, &key);
    let now = chrono::Utc::now().timestamp_millis();
    entry["expires_at_ms"] = json!(now - 1_000);
    entry["refresh_at_ms"] = json!(now + 3_600_000);
    SecretFile::open(&path, key.clone())
        .unwrap()
        .set("token-cache/cc", &entry.to_string())
        .unwrap();
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    assert_eq!(state.lock().unwrap().issued, 3, "an expired token was used");
}

#[tokio::test]
async fn a_refused_token_is_cleared_from_the_store_for_the_next_process() {
    let (state, base) = cc_server().await;
    let (_dir, path, key) = empty_secrets();
    let api = format!("{base}/api");
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    // Revoked early, and the token endpoint is down: the next process tries the stored token
    // (401), forgets it, and fails to get another.
    {
        let mut s = state.lock().unwrap();
        s.valid.clear();
        s.refuse_tokens = true;
    }
    let err = cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HttpError::Auth { status: 401, .. }),
        "{err:?}"
    );
    let entry = cached_entry(&path, &key);
    assert!(entry.get("access_token").is_none(), "still stored: {entry}");
    assert_eq!(state.lock().unwrap().calls, 2);
    // The process after it does not try the refused token: one token request, one call.
    state.lock().unwrap().refuse_tokens = false;
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    let s = state.lock().unwrap();
    assert_eq!((s.issued, s.calls), (2, 3));
    drop(s);
    assert_eq!(cached_entry(&path, &key)["access_token"], "cc-2");
}

#[tokio::test]
async fn a_401_on_a_stored_token_fetches_a_new_one_and_stores_it() {
    let (state, base) = cc_server().await;
    let (_dir, path, key) = empty_secrets();
    let api = format!("{base}/api");
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    state.lock().unwrap().valid.clear();
    cc_process(&base, "cc", file_store(&path, &key))
        .send(&ApiRequest::get(&api))
        .await
        .unwrap();
    let s = state.lock().unwrap();
    // Stored cc-1 refused once, cc-2 fetched, the call replayed.
    assert_eq!((s.issued, s.calls), (2, 3));
    drop(s);
    assert_eq!(cached_entry(&path, &key)["access_token"], "cc-2");
}

/// A store that fails every read and write.
struct BrokenStore;

impl TokenStore for BrokenStore {
    fn read<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<(SecretString, SecretVersion), SecretError>> {
        Box::pin(async { Err(SecretError::Backend("disk full".into())) })
    }

    fn write<'a>(
        &'a self,
        _name: &'a str,
        _expected: Option<&'a SecretVersion>,
        _value: &'a SecretString,
    ) -> BoxFuture<'a, Result<PutOutcome, SecretError>> {
        Box::pin(async { Err(SecretError::Backend("disk full".into())) })
    }
}

#[tokio::test]
async fn a_failing_token_store_never_fails_a_request() {
    let (state, base) = cc_server().await;
    let client = cc_process(&base, "cc", Some(Arc::new(BrokenStore)));
    let api = format!("{base}/api");
    client.send(&ApiRequest::get(&api)).await.unwrap();
    client.send(&ApiRequest::get(&api)).await.unwrap();
    state.lock().unwrap().valid.clear();
    client.send(&ApiRequest::get(&api)).await.unwrap();
    let s = state.lock().unwrap();
    assert_eq!(
        (s.issued, s.calls),
        (2, 4),
        "kept in memory as without a store"
    );
}

// ---------------------------------------------------------------------------------------------
// Rotating refresh token (Concur)

/// A strictly rotating OAuth server: each refresh token works once, and the answer carries the
/// next one. Routes exist at the root and under `/geo` (the geolocation it may name).
struct Oauth {
    current: String,
    issued: u32,
    refreshes: u32,
    refused: u32,
    valid_access: HashSet<String>,
    /// `expires_in` as sent (a string, like Concur's).
    expires_in: String,
    geolocation: Option<String>,
    /// Every path hit, in order.
    paths: Vec<String>,
}

impl Oauth {
    fn new(first_refresh_token: &str) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            current: first_refresh_token.into(),
            issued: 0,
            refreshes: 0,
            refused: 0,
            valid_access: HashSet::new(),
            expires_in: "3600".into(),
            geolocation: None,
            paths: Vec::new(),
        }))
    }
}

async fn oauth_token(
    State(s): State<Arc<Mutex<Oauth>>>,
    uri: Uri,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap();
    s.paths.push(uri.path().to_string());
    if f.get("grant_type").map(String::as_str) != Some("refresh_token")
        || f.get("client_secret").map(String::as_str) != Some("concur-secret")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    if f.get("refresh_token") != Some(&s.current) {
        s.refused += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 108, "error": "invalid_grant",
                        "error_description": "bad or expired refresh token"})),
        )
            .into_response();
    }
    s.refreshes += 1;
    s.issued += 1;
    let n = s.issued;
    s.current = format!("rt-{n}");
    let access = format!("at-{n}");
    s.valid_access.insert(access.clone());
    let mut body = json!({
        "expires_in": s.expires_in, "scope": "app-scopes", "token_type": "Bearer",
        "access_token": access, "refresh_token": s.current, "id_token": "oidc",
    });
    if let Some(g) = &s.geolocation {
        body["geolocation"] = json!(g);
    }
    Json(body).into_response()
}

async fn oauth_api(State(s): State<Arc<Mutex<Oauth>>>, uri: Uri, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    s.paths.push(uri.path().to_string());
    match bearer(&headers) {
        Some(t) if s.valid_access.contains(&t) => Json(json!({"token": t})).into_response(),
        _ => unauthorized(),
    }
}

async fn oauth_server(state: Arc<Mutex<Oauth>>) -> String {
    serve(
        Router::new()
            .route("/oauth2/v0/token", post(oauth_token))
            .route("/geo/oauth2/v0/token", post(oauth_token))
            .route("/api/ping", get(oauth_api))
            .route("/geo/api/ping", get(oauth_api))
            .with_state(state),
    )
    .await
}

fn concur_settings(base: &str, lease: Duration) -> RefreshTokenSettings {
    RefreshTokenSettings {
        token_url: "/oauth2/v0/token".into(),
        base_url: base.into(),
        client_id: "concur-app".into(),
        client_secret: SecretString::new("concur-secret"),
        scope: None,
        secret_name: "concur-token".into(),
        lease,
    }
}

fn concur_client(auth: RefreshTokenAuth) -> ApiClient {
    ApiClient::with_auth(Arc::new(auth), vec![], HttpSettings::default()).unwrap()
}

/// A secrets file in a fresh directory holding `initial` as the token state.
fn secrets_file(initial: &SecretString) -> (tempfile::TempDir, std::path::PathBuf, SecretKey) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.enc");
    let key = SecretKey::generate();
    SecretFile::open(&path, key.clone())
        .unwrap()
        .set("concur-token", initial.expose())
        .unwrap();
    (dir, path, key)
}

/// The stored state, as JSON.
fn stored(path: &std::path::Path, key: &SecretKey) -> serde_json::Value {
    let raw = SecretFile::open(path, key.clone())
        .unwrap()
        .read("concur-token")
        .unwrap();
    serde_json::from_str(raw.expose()).unwrap()
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_back_before_use() {
    let oauth = Oauth::new("rt-0");
    let base = oauth_server(oauth.clone()).await;
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    let file = SecretFile::open(&path, key.clone()).unwrap();
    let client = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(30)),
        file,
    ));
    let resp = client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(resp.json::<serde_json::Value>().unwrap()["token"], "at-1");
    let state = stored(&path, &key);
    assert_eq!(state["refresh_token"], "rt-1", "{state}");
    assert_eq!(state["access_token"], "at-1");
    assert!(state.get("lease").is_none(), "claim released: {state}");
    // The access token (expires_in "3600", a string) is reused: no second refresh.
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(oauth.lock().unwrap().refreshes, 1);
}

#[tokio::test]
async fn expires_in_as_a_string_is_honoured() {
    let oauth = Oauth::new("rt-0");
    oauth.lock().unwrap().expires_in = "1".into(); // Used for half a second.
    let base = oauth_server(oauth.clone()).await;
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    let client = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(30)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(oauth.lock().unwrap().refreshes, 1);
    // Had "1" not been read, the default (an hour) would keep the first token.
    tokio::time::sleep(Duration::from_millis(700)).await;
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(oauth.lock().unwrap().refreshes, 2);
    assert_eq!(stored(&path, &key)["refresh_token"], "rt-2");
}

#[tokio::test]
async fn two_workers_refreshing_at_once_spend_the_refresh_token_once() {
    let oauth = Oauth::new("rt-0");
    let base = oauth_server(oauth.clone()).await;
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    // Two handles on one file, as two `mlc` processes would have: nothing shared in memory.
    let worker = || {
        concur_client(RefreshTokenAuth::new(
            concur_settings(&base, Duration::from_secs(30)),
            SecretFile::open(&path, key.clone()).unwrap(),
        ))
    };
    let (a, b) = (worker(), worker());
    let req = ApiRequest::get("/api/ping");
    let (ra, rb) = tokio::join!(a.send(&req), b.send(&req));
    ra.unwrap();
    rb.unwrap();
    let s = oauth.lock().unwrap();
    assert_eq!(
        (s.refreshes, s.refused),
        (1, 0),
        "one refresh, nothing refused"
    );
    assert_eq!(stored(&path, &key)["refresh_token"], "rt-1");
}

#[tokio::test]
async fn many_workers_refreshing_every_call_never_spend_a_token_twice() {
    let oauth = Oauth::new("rt-0");
    // Tokens that are never reusable: every call of every worker refreshes.
    oauth.lock().unwrap().expires_in = "0".into();
    let base = oauth_server(oauth.clone()).await;
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = concur_client(RefreshTokenAuth::new(
                concur_settings(&base, Duration::from_secs(30)),
                SecretFile::open(&path, key.clone()).unwrap(),
            ));
            tokio::spawn(async move {
                for _ in 0..5 {
                    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = oauth.lock().unwrap();
    assert_eq!(s.refused, 0, "a refresh token was spent twice");
    assert_eq!(s.refreshes, 20);
    assert_eq!(
        stored(&path, &key)["refresh_token"],
        format!("rt-{}", s.refreshes)
    );
}

#[tokio::test]
async fn the_geolocation_of_the_token_response_becomes_the_base_url() {
    let oauth = Oauth::new("rt-0");
    let base = oauth_server(oauth.clone()).await;
    oauth.lock().unwrap().geolocation = Some(format!("{base}/geo"));
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    let client = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(30)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(stored(&path, &key)["geolocation"], format!("{base}/geo"));
    // The next refresh goes to the geolocation too (after the API refuses the token).
    oauth.lock().unwrap().valid_access.clear();
    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
    let paths = oauth.lock().unwrap().paths.clone();
    assert_eq!(
        paths,
        [
            "/oauth2/v0/token",
            "/geo/api/ping",
            "/geo/api/ping",
            "/geo/oauth2/v0/token",
            "/geo/api/ping"
        ]
    );
    // A worker starting later reads the geolocation from the store.
    let later = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(30)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    let resp = later.send(&ApiRequest::get("/api/ping")).await.unwrap();
    assert_eq!(resp.url, format!("{base}/geo/api/ping"));
}

#[tokio::test]
async fn a_refused_refresh_token_is_a_typed_error_without_the_token() {
    let oauth = Oauth::new("rt-0");
    let base = oauth_server(oauth.clone()).await;
    let (_dir, path, key) = secrets_file(&SecretString::new("rt-revoked-by-admin"));
    let client = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(30)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    let err = client
        .send(&ApiRequest::get("/api/ping"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HttpError::RefreshRefused { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.needs_reauthorization());
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("invalid_grant"), "{shown}");
    assert!(
        !shown.contains("rt-revoked-by-admin") && !shown.contains("concur-secret"),
        "{shown}"
    );
    // The claim was released: the next worker need not wait out a lease to hear the same.
    let state = SecretFile::open(&path, key)
        .unwrap()
        .read("concur-token")
        .unwrap();
    assert!(!state.expose().contains("lease"));
}

/// A store that "crashes" on its `crash_on`-th write: the write lands first or not, and the
/// caller hears an error either way (as if the process died before the acknowledgement).
struct CrashingStore {
    inner: SecretFile,
    writes: AtomicU32,
    crash_on: u32,
    lands: bool,
}

impl TokenStore for CrashingStore {
    fn read<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(SecretString, SecretVersion), SecretError>> {
        Box::pin(self.inner.get_versioned(name))
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        expected: Option<&'a SecretVersion>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<PutOutcome, SecretError>> {
        Box::pin(async move {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if n != self.crash_on {
                return self.inner.put_if(name, expected, value).await;
            }
            if self.lands {
                self.inner.put_if(name, expected, value).await?;
            }
            Err(SecretError::Backend("simulated crash".into()))
        })
    }
}

/// What a crash left: the server, and the secrets file.
struct AfterCrash {
    oauth: Arc<Mutex<Oauth>>,
    base: String,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    key: SecretKey,
}

/// Worker A claims, spends rt-0 and crashes on the store-back (its second write).
async fn crash_during_store_back(lands: bool) -> AfterCrash {
    let oauth = Oauth::new("rt-0");
    let base = oauth_server(oauth.clone()).await;
    let (dir, path, key) = secrets_file(&SecretString::new("rt-0"));
    let a = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(1)),
        CrashingStore {
            inner: SecretFile::open(&path, key.clone()).unwrap(),
            writes: AtomicU32::new(0),
            crash_on: 2,
            lands,
        },
    ));
    let err = a.send(&ApiRequest::get("/api/ping")).await.unwrap_err();
    assert!(matches!(err, HttpError::Secrets(_)), "{err:?}");
    assert_eq!(oauth.lock().unwrap().refreshes, 1, "rt-0 was spent");
    AfterCrash {
        oauth,
        base,
        _dir: dir,
        path,
        key,
    }
}

#[tokio::test]
async fn a_crash_before_the_store_back_lands_loses_the_new_token() {
    let AfterCrash {
        oauth,
        base,
        _dir,
        path,
        key,
    } = crash_during_store_back(false).await;
    // What survives: the spent rt-0, under the dead worker's lease; rt-1 died with it.
    let state = stored(&path, &key);
    assert_eq!(state["refresh_token"], "rt-0");
    assert!(state.get("lease").is_some(), "{state}");
    // The next worker waits out the lease (1 s), spends rt-0 again, and a strictly rotating
    // server refuses it: the connection must be authorised again (a systemic failure).
    let b = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(1)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    let started = std::time::Instant::now();
    let err = b.send(&ApiRequest::get("/api/ping")).await.unwrap_err();
    assert!(err.needs_reauthorization(), "{err:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "waited for the lease"
    );
    assert_eq!(oauth.lock().unwrap().refused, 1);
}

#[tokio::test]
async fn a_crash_after_the_store_back_lands_loses_nothing() {
    let AfterCrash {
        oauth,
        base,
        _dir,
        path,
        key,
    } = crash_during_store_back(true).await;
    let state = stored(&path, &key);
    assert_eq!(state["refresh_token"], "rt-1");
    // The next worker uses the stored access token: no refresh, nothing refused.
    let b = concur_client(RefreshTokenAuth::new(
        concur_settings(&base, Duration::from_secs(1)),
        SecretFile::open(&path, key.clone()).unwrap(),
    ));
    b.send(&ApiRequest::get("/api/ping")).await.unwrap();
    let s = oauth.lock().unwrap();
    assert_eq!((s.refreshes, s.refused), (1, 0));
}

/// The same protocol over Secrets Manager (on moto): workers in separate "Lambda instances"
/// (their own adapter and cache each) refreshing on every call never spend a token twice.
#[cfg(feature = "aws")]
#[tokio::test]
async fn workers_on_secrets_manager_spend_each_refresh_token_once() {
    use mlc_shared::adapters::aws::SecretsManagerSecrets;
    let oauth = Oauth::new("rt-0");
    oauth.lock().unwrap().expires_in = "0".into();
    let base = oauth_server(oauth.clone()).await;
    let sm = aws_sdk_secretsmanager::Client::new(&common::moto::sdk_config().await);
    let prefix = format!("{}/", common::moto::unique("mlc"));
    sm.create_secret()
        .name(format!("{prefix}concur-token"))
        .secret_string(RefreshTokenAuth::initial_state(&SecretString::new("rt-0"), None).expose())
        .send()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let store =
                SecretsManagerSecrets::new(sm.clone(), prefix.clone(), Duration::from_secs(300));
            let client = concur_client(RefreshTokenAuth::new(
                concur_settings(&base, Duration::from_secs(30)),
                store,
            ));
            tokio::spawn(async move {
                for _ in 0..3 {
                    client.send(&ApiRequest::get("/api/ping")).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (refreshes, refused) = {
        let s = oauth.lock().unwrap();
        (s.refreshes, s.refused)
    };
    assert_eq!((refreshes, refused), (9, 0));
    let reader = SecretsManagerSecrets::new(sm, prefix, Duration::from_secs(300));
    let (raw, _) = reader.get_versioned("concur-token").await.unwrap();
    let state: serde_json::Value = serde_json::from_str(raw.expose()).unwrap();
    assert_eq!(state["refresh_token"], "rt-9");
}

// ---------------------------------------------------------------------------------------------
// Session cookies (SAP B1 Service Layer)

#[derive(Default)]
struct B1 {
    sessions: HashSet<String>,
    logins: u32,
    logouts: u32,
    calls: u32,
    /// The Cookie header of each API call.
    cookies: Vec<String>,
    /// Answer every API call 401 with this code, session or not.
    always_401: Option<i64>,
    /// The code of the 401 for an unknown session (B1: 301).
    expired_code: i64,
}

fn b1_error(status: StatusCode, code: i64, text: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": {"lang": "en-us", "value": text}}})),
    )
        .into_response()
}

async fn b1_login(
    State(s): State<Arc<Mutex<B1>>>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if body["CompanyDB"] != "SBODEMOUS"
        || body["UserName"] != "manager"
        || body["Password"] != "b1-pass"
    {
        return b1_error(StatusCode::UNAUTHORIZED, 100000027, "Login failed");
    }
    // A slow login, so concurrent callers would pile up on it if logins were not serialised.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut s = s.lock().unwrap();
    s.logins += 1;
    let id = uuid::Uuid::new_v4().to_string();
    s.sessions.insert(id.clone());
    let mut resp = Json(json!({
        "odata.metadata": "x", "SessionId": id, "Version": "1000190", "SessionTimeout": 30
    }))
    .into_response();
    // As B1 sends them: no Path on B1SESSION, a trailing `;`.
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        format!("B1SESSION={id};HttpOnly;").parse().unwrap(),
    );
    h.append(
        header::SET_COOKIE,
        "ROUTEID=.node1; path=/b1s".parse().unwrap(),
    );
    resp
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
    cookie
        .split(';')
        .find_map(|p| p.trim().strip_prefix("B1SESSION=").map(str::to_string))
}

async fn b1_items(State(s): State<Arc<Mutex<B1>>>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    s.calls += 1;
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or_default()
        .to_string();
    s.cookies.push(cookie);
    if let Some(code) = s.always_401 {
        return b1_error(StatusCode::UNAUTHORIZED, code, "refused");
    }
    match session_of(&headers) {
        Some(id) if s.sessions.contains(&id) => Json(json!({"value": []})).into_response(),
        _ => b1_error(
            StatusCode::UNAUTHORIZED,
            s.expired_code,
            "Invalid session or session already timeout.",
        ),
    }
}

async fn b1_logout(State(s): State<Arc<Mutex<B1>>>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    s.logouts += 1;
    if let Some(id) = session_of(&headers) {
        s.sessions.remove(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn b1_server(expired_code: i64) -> (Arc<Mutex<B1>>, String) {
    let state = Arc::new(Mutex::new(B1 {
        expired_code,
        ..B1::default()
    }));
    let base = serve(
        Router::new()
            .route("/b1s/v1/Login", post(b1_login))
            .route("/b1s/v1/Logout", post(b1_logout))
            .route("/b1s/v1/Items", get(b1_items).post(b1_items))
            .with_state(state.clone()),
    )
    .await;
    (state, base)
}

fn b1_client(base: &str, password: &str, expiry_codes: Vec<i64>) -> ApiClient {
    let auth = SessionAuth::new(SessionLogin {
        service_root: format!("{base}/b1s/v1"),
        company_db: "SBODEMOUS".into(),
        user_name: "manager".into(),
        password: SecretString::new(password),
        expiry_codes,
    });
    ApiClient::with_auth(Arc::new(auth), vec![], HttpSettings::default()).unwrap()
}

#[tokio::test]
async fn the_session_cookies_go_on_every_call() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    for _ in 0..3 {
        client.send(&ApiRequest::get("/Items")).await.unwrap();
    }
    let s = b1.lock().unwrap();
    assert_eq!(s.logins, 1);
    let id = s.sessions.iter().next().unwrap().clone();
    assert_eq!(
        s.cookies,
        vec![format!("B1SESSION={id}; ROUTEID=.node1"); 3]
    );
}

#[tokio::test]
async fn an_expired_session_logs_in_once_more_and_replays_once() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    b1.lock().unwrap().sessions.clear(); // Timed out on the server.
    // A POST too: a 401 means it was not processed, so the replay is safe.
    client
        .send(&ApiRequest::post_json("/Items", &json!({"ItemCode": "A1"})))
        .await
        .unwrap();
    let s = b1.lock().unwrap();
    assert_eq!((s.logins, s.calls), (2, 3), "one re-login, one replay");
    assert_ne!(
        s.cookies[1], s.cookies[2],
        "the replay carries the new session"
    );
}

#[tokio::test]
async fn a_second_401_is_an_error() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    b1.lock().unwrap().always_401 = Some(301);
    let err = client.send(&ApiRequest::get("/Items")).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err:?}");
    let s = b1.lock().unwrap();
    assert_eq!(
        (s.logins, s.calls),
        (2, 3),
        "one re-login and one replay, no more"
    );
}

#[tokio::test]
async fn a_401_with_another_code_is_not_a_session_expiry() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    b1.lock().unwrap().always_401 = Some(-5002);
    let err = client.send(&ApiRequest::get("/Items")).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(b1.lock().unwrap().logins, 1, "no re-login");
    // Where -5002 is configured as the expiry code, it is one.
    let (b1, base) = b1_server(-5002).await;
    let client = b1_client(&base, "b1-pass", vec![301, -5002]);
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    b1.lock().unwrap().sessions.clear();
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    assert_eq!(b1.lock().unwrap().logins, 2);
}

#[tokio::test]
async fn concurrent_calls_on_an_expired_session_log_in_once() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    b1.lock().unwrap().sessions.clear();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.send(&ApiRequest::get("/Items")).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(
        b1.lock().unwrap().logins,
        2,
        "one login for the expired session"
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_the_next_call_logs_in() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "b1-pass", vec![301]);
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    client.logout().await.unwrap();
    {
        let s = b1.lock().unwrap();
        assert_eq!(s.logouts, 1);
        assert!(s.sessions.is_empty());
    }
    client.logout().await.unwrap(); // No session: nothing to do.
    client.send(&ApiRequest::get("/Items")).await.unwrap();
    let s = b1.lock().unwrap();
    assert_eq!((s.logouts, s.logins), (1, 2));
}

#[tokio::test]
async fn a_refused_login_is_an_auth_error_without_the_password() {
    let (b1, base) = b1_server(301).await;
    let client = b1_client(&base, "wrong-pass-123", vec![301]);
    let err = client.send(&ApiRequest::get("/Items")).await.unwrap_err();
    assert!(
        matches!(&err, HttpError::Auth { status: 401, .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("Login failed") && !shown.contains("wrong-pass-123"),
        "{shown}"
    );
    assert_eq!(b1.lock().unwrap().calls, 0);
}
