//! Property tests: whatever arrives from outside (webhook bodies and headers, API answers, queue
//! messages, the configuration file) never panics the connector, and what is refused is refused
//! with an error that says what is wrong.

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use mlc_shared::adapters::embedded::{Db, SqliteQueue, SqliteStore};
use mlc_shared::config::Config;
use mlc_shared::flows::coupa_bc::verified_invoice;
use mlc_shared::model::{
    Currency, DocumentKind, InvoiceKind, Money, ResolvedInvoice, ResolvedLine,
};
use mlc_shared::ports::{Queue, QueueName, SecretString, SystemClock};
use mlc_shared::steps::webhook::{self, WebhookError};
use mlc_shared::steps::{Env, IngestMessage, PostEnvelope};
use mlc_shared::systems::business_central::wire as bc;
use mlc_shared::systems::coupa::{self, wire as coupa_wire};
use mlc_shared::systems::http::odata::Collection;
use mlc_shared::systems::signature::{SignatureError, sign_hmac_sha256, verify_hmac_sha256};
use mlc_shared::systems::wire::decimal_opt;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

const CASES: u32 = 256;
const H: &str = "X-Coupa-Signature";

/// `PROPTEST_CASES=N` runs more (or fewer) cases than the default.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Keys the decoders know (so generated documents reach deep into them) and some they do not.
const KEYS: &[&str] = &[
    "id",
    "created-at",
    "updated-at",
    "invoice-number",
    "invoice-date",
    "status",
    "document-type",
    "is-credit-note",
    "currency",
    "code",
    "supplier",
    "name",
    "number",
    "tax-id",
    "total-with-taxes",
    "gross-total",
    "invoice-lines",
    "line-num",
    "type",
    "description",
    "price",
    "quantity",
    "total",
    "po-number",
    "account",
    "segment-1",
    "segment-2",
    "segment-99999999999999999999",
    "value",
    "@odata.nextLink",
    "@odata.etag",
    "vendorNumber",
    "vendorInvoiceNumber",
    "totalAmountIncludingTax",
    "lastModifiedDateTime",
    "sequence",
    "lineObjectNumber",
    "valueCode",
    "displayName",
    "blocked",
    "error",
    "message",
    "integration",
    "kind",
    "source_id",
    "version",
    "via",
    "invoice",
    "lines",
    "amount",
    "unit_cost",
    "gl_account",
    "dimensions",
    "vendor_number",
    "vendor_invoice_number",
    "supplier_name",
    "",
    "ünïcødé",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

/// Strings that look like what the decoders parse (numbers, dates, codes) and arbitrary ones.
fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        decimal_text(),
        Just("2024-04-01T02:19:09+03:00".to_string()),
        Just("2024-04-01".to_string()),
        Just("USD".to_string()),
        Just("approved".to_string()),
        Just("Credit Note".to_string()),
        Just("InvoiceAmountLine".to_string()),
        Just("invoice".to_string()),
        "[0-9]{1,40}",
        "[0-9T:+\\-]{0,30}",
        ".{0,40}",
        "\\PC{0,40}",
    ]
}

/// Decimal-looking text, including the edges of rust_decimal (28 digits, huge exponents).
fn decimal_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?",
        "-?[0-9]{1,3}(\\.[0-9]{1,4})?[eE][+-]?[0-9]{1,12}",
        "[ ]?-?\\.[0-9]{1,5}[ ]?",
        Just("79228162514264337593543950335".to_string()),
        Just("-79228162514264337593543950336".to_string()),
        Just("1e28".to_string()),
        Just("1e-28".to_string()),
        Just("9.9e99999999999".to_string()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("12,00".to_string()),
    ]
}

/// Decimal strings up to rust_decimal's largest magnitude and finest scale.
fn big_decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("79228162514264337593543950335".to_string()),
        Just("-79228162514264337593543950335".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        "-?[1-9][0-9]{10,27}",
        "-?[0-9]{1,14}\\.[0-9]{1,14}",
    ]
}

fn json_number() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        // Literal number text (arbitrary precision keeps the digits).
        "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,5})?"
            .prop_filter_map("valid JSON number", |s| serde_json::from_str::<Value>(&s)
                .ok()),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.8, s)
}

/// A leaf of the right type most of the time, anything some of the time.
fn mostly(s: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> + Clone {
    prop_oneof![4 => s, 1 => json_leaf()]
}

fn decimal_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        decimal_text().prop_map(Value::String),
        json_number(),
        Just(Value::Null),
    ]
}

/// Coupa invoice JSON shaped like the real thing, with any field missing or odd.
fn coupa_invoice_json() -> impl Strategy<Value = Value> {
    let account = prop::collection::vec(
        (
            prop_oneof![
                Just("code".to_string()),
                (0usize..25).prop_map(|n| format!("segment-{n}")),
                key()
            ],
            json_leaf(),
        ),
        0..6,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    let line = (
        maybe(mostly(any::<i64>().prop_map(Value::from))),
        maybe(mostly(any::<u32>().prop_map(Value::from))),
        maybe(mostly(
            prop_oneof![
                Just("InvoiceAmountLine"),
                Just("InvoiceQuantityLine"),
                Just("")
            ]
            .prop_map(Value::from),
        )),
        maybe(json_leaf()),
        maybe(decimal_json()),
        maybe(decimal_json()),
        maybe(decimal_json()),
        maybe(prop_oneof![4 => account, 1 => json_leaf()]),
    )
        .prop_map(|(id, n, t, d, price, qty, total, account)| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put("id", id);
            put("line-num", n);
            put("type", t);
            put("description", d);
            put("price", price);
            put("quantity", qty);
            put("total", total);
            put("account", account);
            Value::Object(m)
        });
    let timestamp = mostly(
        prop_oneof![
            Just("2024-04-01T02:19:09+03:00".to_string()),
            (0i64..4_000_000_000, -50400i32..50400).prop_map(|(s, o)| {
                chrono::FixedOffset::east_opt(o / 60 * 60)
                    .unwrap()
                    .timestamp_opt(s, 0)
                    .unwrap()
                    .to_rfc3339()
            }),
            text(),
        ]
        .prop_map(Value::from),
    );
    (
        mostly(any::<i64>().prop_map(Value::from)),
        maybe(timestamp.clone()),
        maybe(mostly(text().prop_map(Value::from))),
        maybe(timestamp),
        maybe(mostly(
            prop_oneof![Just("approved"), Just("draft")].prop_map(Value::from),
        )),
        maybe(mostly(
            prop_oneof![Just("Invoice"), Just("Credit Note")].prop_map(Value::from),
        )),
        maybe(json_leaf()),
        maybe(prop_oneof![
            "[A-Za-z]{0,4}".prop_map(|c| json!({ "code": c })),
            json_leaf()
        ]),
        maybe(prop_oneof![
            (maybe(any::<i64>()), maybe(text()), maybe(text()), maybe(text())).prop_map(
                |(id, name, number, tax)| json!({ "id": id, "name": name, "number": number, "tax-id": tax })
            ),
            json_leaf()
        ]),
        maybe(decimal_json()),
        maybe(decimal_json()),
        maybe(prop_oneof![
            4 => prop::collection::vec(line, 0..4).prop_map(Value::Array),
            1 => json_leaf()
        ]),
    )
        .prop_map(
            |(id, created, number, updated, status, doc_type, credit, currency, supplier, twt, gross, lines)| {
                let mut m = Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.to_string(), v);
                    }
                };
                put("id", Some(id));
                put("created-at", created);
                put("invoice-number", number);
                put("updated-at", updated.clone());
                put("invoice-date", updated);
                put("status", status);
                put("document-type", doc_type);
                put("is-credit-note", credit);
                put("currency", currency);
                put("supplier", supplier);
                put("total-with-taxes", twt);
                put("gross-total", gross);
                put("invoice-lines", lines);
                Value::Object(m)
            },
        )
}

/// Decodes `v` both from the value and from its text, which must agree on success/failure and
/// never panic. Errors must say something.
fn decodes<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    let text = serde_json::to_string(v).unwrap();
    let from_text = serde_json::from_str::<T>(&text);
    if let Err(e) = &from_text {
        assert!(
            !e.to_string().trim().is_empty(),
            "an empty error for {text}"
        );
    }
    let from_value = serde_json::from_value::<T>(v.clone());
    if let Err(e) = &from_value {
        assert!(
            !e.to_string().trim().is_empty(),
            "an empty error for {text}"
        );
    }
    from_text.ok()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

type MemEnv = Env<SqliteQueue, SqliteStore, SystemClock>;

fn memory_env() -> MemEnv {
    let db = Db::open_in_memory().unwrap();
    Env::new(
        SqliteQueue::with_defaults(db.clone()),
        SqliteStore::new(db),
        SystemClock,
    )
}

// ---------------------------------------------------------------------------------------------
// Webhook signatures

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signature_check_never_panics(
        header in maybe(prop_oneof![".{0,100}", "sha256=[0-9a-fA-F]{60,68}", "[A-Za-z0-9+/=]{40,48}"]),
        body in prop::collection::vec(any::<u8>(), 0..512),
        secret in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let r = verify_hmac_sha256(H, &secret, &body, header.as_deref());
        if let Err(e) = r {
            prop_assert!(e.to_string().contains(H));
        }
    }

    #[test]
    fn a_signature_verifies_its_body_and_no_other(
        body in prop::collection::vec(any::<u8>(), 1..512),
        secret in prop::collection::vec(any::<u8>(), 0..200),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        other in prop::array::uniform32(any::<u8>()),
    ) {
        let sig = sign_hmac_sha256(&secret, &body);
        prop_assert_eq!(verify_hmac_sha256(H, &secret, &body, Some(&sig)), Ok(()));
        // The same digest without the prefix, upper-case, padded with spaces: still ours.
        let hex = sig.trim_start_matches("sha256=");
        prop_assert_eq!(verify_hmac_sha256(H, &secret, &body, Some(hex)), Ok(()));
        let upper = format!("  {}  ", hex.to_uppercase());
        prop_assert_eq!(verify_hmac_sha256(H, &secret, &body, Some(&upper)), Ok(()));
        // Any flipped bit of the body is refused.
        let mut tampered = body.clone();
        let i = flip.index(tampered.len());
        tampered[i] ^= 1 << bit;
        prop_assert_eq!(
            verify_hmac_sha256(H, &secret, &tampered, Some(&sig)),
            Err(SignatureError::Mismatch(H))
        );
        // Another digest of the right length is refused.
        if other.as_slice() != hex::decode(hex).unwrap().as_slice() {
            let forged = format!("sha256={}", hex::encode(other));
            prop_assert_eq!(
                verify_hmac_sha256(H, &secret, &body, Some(&forged)),
                Err(SignatureError::Mismatch(H))
            );
        }
    }

    #[test]
    fn the_webhook_step_never_panics_and_enqueues_only_signed_bodies(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            (any::<i64>(), maybe(text())).prop_map(|(id, at)| {
                serde_json::to_vec(&json!({ "id": id, "updated-at": at })).unwrap()
            }),
        ],
        secret in "[ -~]{1,64}",
        header in maybe(".{0,80}"),
        sign in any::<bool>(),
    ) {
        let env = memory_env();
        let secret = SecretString::new(secret);
        let header = if sign {
            Some(sign_hmac_sha256(secret.expose().as_bytes(), &body))
        } else {
            header
        };
        let valid = verify_hmac_sha256(H, secret.expose().as_bytes(), &body, header.as_deref()).is_ok();
        let r = runtime().block_on(async {
            let stub = verified_invoice(&secret, header.as_deref(), &body)?;
            let refs = [(stub.id.to_string(), stub.updated_at.clone())];
            webhook::accept(&env, "coupa-bc", DocumentKind::Invoice, &refs).await?;
            Ok::<_, WebhookError>(stub.id.to_string())
        });
        let depth = runtime().block_on(env.queue.depth(QueueName::Ingest)).unwrap();
        match &r {
            Ok(id) => {
                prop_assert!(valid, "enqueued without a valid signature");
                prop_assert_eq!(depth, 1);
                let stub: coupa_wire::InvoiceStub = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(id, &stub.id.to_string());
            }
            Err(WebhookError::Unauthorized(_)) => {
                prop_assert!(!valid);
                prop_assert_eq!(depth, 0);
            }
            Err(e @ WebhookError::Malformed(_)) => {
                prop_assert!(valid);
                prop_assert_eq!(depth, 0);
                prop_assert!(
                    e.to_string().starts_with("the body is not a document this webhook takes: not a Coupa invoice: "),
                    "{}", e
                );
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Coupa wire types

proptest! {
    #![proptest_config(config())]

    #[test]
    fn coupa_decoders_never_panic_on_any_json(v in json_value()) {
        decodes::<coupa_wire::Invoice>(&v);
        decodes::<coupa_wire::InvoiceStub>(&v);
        decodes::<Vec<coupa_wire::InvoiceStub>>(&v);
    }

    #[test]
    fn coupa_decoders_never_panic_on_any_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = serde_json::from_slice::<coupa_wire::Invoice>(&b);
        let _ = serde_json::from_slice::<coupa_wire::InvoiceStub>(&b);
        let _ = serde_json::from_slice::<Vec<coupa_wire::Invoice>>(&b);
    }

    #[test]
    fn converting_a_decodable_invoice_never_panics_and_names_the_field(v in coupa_invoice_json()) {
        let Some(w) = decodes::<coupa_wire::Invoice>(&v) else { return Ok(()) };
        match coupa::invoice_from_wire(&w) {
            Ok(inv) => {
                prop_assert_eq!(inv.source_id, w.id.to_string());
                prop_assert!(!inv.lines.is_empty());
                prop_assert!(!inv.number.trim().is_empty());
                prop_assert_eq!(inv.total.currency.to_string().len(), 3);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(
                    msg.starts_with(&format!("Coupa invoice {}: ", w.id)),
                    "{}", msg
                );
                prop_assert!(msg.contains("field '"), "the error names no field: {}", msg);
            }
        }
    }

    #[test]
    fn amounts_at_the_limits_of_a_decimal_never_panic_the_conversion(
        lines in prop::collection::vec(
            (maybe(big_decimal()), maybe(big_decimal()), maybe(big_decimal()), any::<bool>()),
            1..4,
        ),
        total in maybe(big_decimal()),
    ) {
        let lines: Vec<Value> = lines
            .into_iter()
            .map(|(price, qty, line_total, amount_line)| json!({
                "type": if amount_line { "InvoiceAmountLine" } else { "InvoiceQuantityLine" },
                "price": price, "quantity": qty, "total": line_total,
                "account": { "segment-1": "6100" },
            }))
            .collect();
        let v = json!({
            "id": 7, "updated-at": "2024-04-01T02:19:09+03:00", "invoice-number": "N-1",
            "invoice-date": "2024-04-01", "currency": { "code": "USD" }, "supplier": { "id": 1 },
            "total-with-taxes": total, "invoice-lines": lines,
        });
        let w: coupa_wire::Invoice = match serde_json::from_value(v) {
            Ok(w) => w,
            Err(e) => {
                prop_assert!(e.to_string().contains("decimal number"), "{}", e);
                return Ok(());
            }
        };
        if let Err(e) = coupa::invoice_from_wire(&w) {
            prop_assert!(e.to_string().contains("field '"), "{}", e);
        }
    }

    #[test]
    fn decimals_are_exact_or_a_clear_error(s in decimal_text(), n in json_number()) {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "decimal_opt")]
            v: Option<Decimal>,
        }
        for v in [Value::String(s.clone()), n.clone()] {
            let literal = match &v {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            };
            let body = json!({ "v": v }).to_string();
            match serde_json::from_str::<T>(&body) {
                Ok(T { v: None }) => prop_assert!(literal.is_empty()),
                Ok(T { v: Some(d) }) => prop_assert!(
                    same_number(&literal, d),
                    "'{}' was read as {} (not exact)", literal, d
                ),
                Err(e) => prop_assert!(
                    e.to_string().contains("is not a decimal number"),
                    "unclear error for '{}': {}", literal, e
                ),
            }
        }
    }
}

/// Whether decimal text `s` (plain or scientific) denotes exactly `d`.
fn same_number(s: &str, d: Decimal) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().unwrap_or(i64::MAX)),
        None => (s, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    // The exact value as (all digits, power of ten), normalised without trailing zeros.
    let mut all: String = format!("{int}{frac}").trim_start_matches('0').to_string();
    let mut pow = exp - frac.len() as i64;
    while all.ends_with('0') {
        all.pop();
        pow += 1;
    }
    let d = d.normalize();
    let mut want = d.mantissa().abs().to_string();
    let mut want_pow = -(d.scale() as i64);
    if want == "0" {
        want.clear();
        want_pow = 0;
    }
    while want.ends_with('0') {
        want.pop();
        want_pow += 1;
    }
    if all.is_empty() {
        return want.is_empty();
    }
    all == want && pow == want_pow && neg == d.is_sign_negative()
}

// ---------------------------------------------------------------------------------------------
// Business Central wire types, OData collections

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bc_decoders_never_panic_on_any_json(v in json_value()) {
        decodes::<bc::PurchaseInvoice>(&v);
        decodes::<bc::PurchaseInvoiceLine>(&v);
        decodes::<bc::DimensionSetLine>(&v);
        decodes::<bc::Vendor>(&v);
        decodes::<bc::ErrorBody>(&v);
        decodes::<Collection<bc::PurchaseInvoice>>(&v);
        decodes::<Collection<bc::Vendor>>(&v);
        decodes::<Collection<bc::DimensionSetLine>>(&v);
        decodes::<Collection<bc::PurchaseInvoiceLine>>(&v);
    }

    #[test]
    fn bc_decoders_never_panic_on_any_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = serde_json::from_slice::<bc::PurchaseInvoice>(&b);
        let _ = serde_json::from_slice::<bc::ErrorBody>(&b);
        let _ = serde_json::from_slice::<Collection<bc::PurchaseInvoice>>(&b);
        let _ = serde_json::from_slice::<Collection<bc::Vendor>>(&b);
    }

    #[test]
    fn bc_collections_of_real_shape_decode_with_their_next_link(
        ids in prop::collection::vec("[0-9a-f-]{1,36}", 0..5),
        totals in prop::collection::vec(decimal_json(), 5),
        next in maybe(".{0,60}"),
    ) {
        let value: Vec<Value> = ids
            .iter()
            .zip(&totals)
            .map(|(id, t)| json!({ "id": id, "status": "Draft", "totalAmountIncludingTax": t }))
            .collect();
        let mut page = json!({ "value": value });
        if let Some(n) = &next {
            page["@odata.nextLink"] = Value::from(n.clone());
        }
        if let Some(c) = decodes::<Collection<bc::PurchaseInvoice>>(&page) {
            prop_assert_eq!(c.value.len(), ids.len());
            prop_assert_eq!(c.next_link, next);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queue messages

fn resolved_invoice() -> impl Strategy<Value = ResolvedInvoice> {
    let line = (
        ".{0,30}",
        "[0-9]{1,6}",
        any::<(i64, u32)>(),
        any::<(i64, u32)>(),
        prop::collection::vec(("[A-Z]{1,10}", "[A-Z0-9-]{1,10}"), 0..3),
    )
        .prop_map(|(description, gl_account, q, u, dimensions)| ResolvedLine {
            description,
            gl_account,
            quantity: Decimal::new(q.0, q.1 % 29),
            unit_cost: Decimal::new(u.0, u.1 % 29),
            dimensions,
        });
    (
        ".{1,40}",
        0i64..4_000_000_000,
        any::<bool>(),
        ".{0,20}",
        ".{0,40}",
        ".{0,40}",
        any::<(i64, u32)>(),
        "[A-Z]{3}",
        prop::collection::vec(line, 0..4),
    )
        .prop_map(
            |(source_id, secs, credit, vendor, number, name, total, currency, lines)| {
                ResolvedInvoice {
                    source_id,
                    version: Utc.timestamp_opt(secs, 0).unwrap(),
                    kind: if credit {
                        InvoiceKind::CreditNote
                    } else {
                        InvoiceKind::Invoice
                    },
                    vendor_number: vendor,
                    vendor_invoice_number: number,
                    supplier_name: name,
                    invoice_date: Utc.timestamp_opt(secs, 0).unwrap().date_naive(),
                    total: Money {
                        amount: Decimal::new(total.0, total.1 % 29),
                        currency: Currency::new(&currency).unwrap(),
                    },
                    lines,
                }
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn queue_messages_never_panic_on_any_body(v in json_value(), b in prop::collection::vec(any::<u8>(), 0..300)) {
        decodes::<IngestMessage>(&v);
        let _ = PostEnvelope::decode(&v.to_string());
        let _ = serde_json::from_slice::<IngestMessage>(&b);
        let _ = PostEnvelope::decode(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn ingest_messages_round_trip_with_sqs_safe_ids(
        integration in ".{0,60}",
        source_id in ".{0,200}",
        version in maybe(".{0,80}"),
        via in prop_oneof![Just("webhook"), Just("poll"), Just("retry"), Just("replay")],
    ) {
        let m = IngestMessage {
            integration,
            kind: DocumentKind::Invoice,
            source_id,
            version,
            via: via.to_string(),
            document: None,
        };
        let out = m.to_outgoing();
        for id in [&out.dedup_id, &out.group_id] {
            prop_assert!(!id.is_empty() && id.len() <= 128, "{}", id);
            prop_assert!(!id.contains(':'), "{}", id);
        }
        let back: IngestMessage = serde_json::from_str(&out.body).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn post_messages_round_trip_with_sqs_safe_ids(
        integration in ".{0,60}",
        invoice in resolved_invoice(),
    ) {
        let m = PostEnvelope::new(
            &integration,
            DocumentKind::Invoice,
            &invoice.source_id,
            Some(invoice.version.timestamp().to_string()),
            true,
            &invoice,
        );
        let out = m.to_outgoing();
        for id in [&out.dedup_id, &out.group_id] {
            prop_assert!(!id.is_empty() && id.len() <= 128, "{}", id);
            prop_assert!(!id.contains(':'), "{}", id);
        }
        let back = PostEnvelope::decode(&out.body).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.payload::<ResolvedInvoice>().unwrap(), invoice);
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration file

const EXAMPLE: &str = include_str!("../../examples/mlc.toml");

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_parse_never_panics_on_any_text(t in "\\PC{0,300}") {
        if let Err(e) = Config::parse(&t) {
            prop_assert!(!e.trim().is_empty());
        }
    }

    #[test]
    fn config_parse_never_panics_on_a_mangled_example(
        cuts in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, ".{0,12}"), 1..4),
    ) {
        let mut t = EXAMPLE.to_string();
        for (at, len, insert) in cuts {
            let mut i = at.index(t.len() + 1);
            while !t.is_char_boundary(i) { i -= 1; }
            let mut j = (i + len).min(t.len());
            while !t.is_char_boundary(j) { j -= 1; }
            t.replace_range(i..j, &insert);
        }
        if let Err(e) = Config::parse(&t) {
            prop_assert!(!e.trim().is_empty());
        }
    }
}

#[test]
fn the_example_configuration_parses() {
    Config::parse(EXAMPLE).unwrap();
}
