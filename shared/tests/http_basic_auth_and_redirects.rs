//! The two `systems/http` additions Basware needed, for every client: HTTP Basic client
//! authentication at the token endpoint, and a 3xx returned to the caller when redirects are
//! not followed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;

use mlc_shared::ports::SecretString;
use mlc_shared::systems::http::{
    ApiClient, ApiRequest, ClientAuth, ClientCredentials, HttpSettings, TokenCache,
};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

type Seen = Arc<Mutex<Vec<(Option<String>, HashMap<String, String>)>>>;

async fn token(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_string());
    seen.lock().unwrap().push((auth, form));
    axum::Json(json!({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}))
        .into_response()
}

fn creds(base: &str) -> ClientCredentials {
    ClientCredentials {
        token_url: format!("{base}/token"),
        client_id: "the-client".into(),
        client_secret: SecretString::new("the-secret"),
        scope: "a.read b.write".into(),
    }
}

#[tokio::test]
async fn basic_client_auth_sends_the_secret_in_the_header_and_never_in_the_form() {
    let seen: Seen = Arc::default();
    let base = serve(
        Router::new()
            .route("/token", post(token))
            .route("/api", get(|| async { "ok" }))
            .with_state(seen.clone()),
    )
    .await;
    let client = ApiClient::new(
        TokenCache::new(creds(&base)).with_client_auth(ClientAuth::Basic),
        vec![],
        HttpSettings::default(),
    )
    .unwrap();
    client
        .send(&ApiRequest::get(format!("{base}/api")))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let (auth, form) = &seen[0];
    let encoded = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .expect("Basic");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(decoded, b"the-client:the-secret");
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some("a.read b.write")
    );
    assert!(!form.contains_key("client_secret") && !form.contains_key("client_id"));
}

#[tokio::test]
async fn the_default_client_auth_keeps_the_secret_in_the_form() {
    let seen: Seen = Arc::default();
    let base = serve(
        Router::new()
            .route("/token", post(token))
            .route("/api", get(|| async { "ok" }))
            .with_state(seen.clone()),
    )
    .await;
    let client = ApiClient::new(
        TokenCache::new(creds(&base)),
        vec![],
        HttpSettings::default(),
    )
    .unwrap();
    client
        .send(&ApiRequest::get(format!("{base}/api")))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let (auth, form) = &seen[0];
    assert_eq!(auth, &None);
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some("the-secret")
    );
}

#[tokio::test]
async fn a_redirect_is_returned_to_the_caller_when_not_followed_and_followed_by_default() {
    let seen: Seen = Arc::default();
    let base = serve(
        Router::new()
            .route("/token", post(token))
            .route(
                "/api",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/target")]) }),
            )
            .route("/target", get(|| async { "followed" }))
            .with_state(seen),
    )
    .await;
    let req = ApiRequest::get(format!("{base}/api"));
    let by_hand = ApiClient::new(
        TokenCache::new(creds(&base)),
        vec![],
        HttpSettings {
            follow_redirects: false,
            ..HttpSettings::default()
        },
    )
    .unwrap();
    let resp = by_hand.send(&req).await.unwrap();
    assert_eq!(resp.status, StatusCode::FOUND);
    assert_eq!(resp.headers[header::LOCATION], "/target");
    let default = ApiClient::new(
        TokenCache::new(creds(&base)),
        vec![],
        HttpSettings::default(),
    )
    .unwrap();
    let resp = default.send(&req).await.unwrap();
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(&resp.body[..], b"followed");
}
