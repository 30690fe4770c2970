//! The semantics of `infra/template.yaml` that `cfn-lint` and `sam validate --lint` do not check,
//! measured against the contract in `docs/aws-runtime.md`; and the sample events in `events/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use sha2::Sha256;

// ------------------------------------------------------------------------------- the contract

/// (logical id, crate dir under functions/, binary, timeout in seconds).
const FUNCTIONS: &[(&str, &str, &str, i64)] = &[
    ("WebhookFunction", "webhook", "mlc-fn-webhook", 10),
    ("PollerFunction", "poller", "mlc-fn-poller", 300),
    ("MapperFunction", "mapper", "mlc-fn-mapper", 60),
    ("PosterFunction", "poster", "mlc-fn-poster", 120),
];

/// (consumer function, its source queue, that queue's dead-letter queue, contract name).
const CONSUMERS: &[(&str, &str, &str, &str)] = &[
    (
        "MapperFunction",
        "IngestQueue",
        "IngestDeadLetterQueue",
        "ingest.fifo",
    ),
    (
        "PosterFunction",
        "PostQueue",
        "PostDeadLetterQueue",
        "post.fifo",
    ),
];

/// Every function's environment: variable → (resource or parameter, attribute it must take).
const ENVIRONMENT: &[(&str, &str, Option<&str>)] = &[
    ("MLC_CONFIG", "ConnectorConfig", None),
    ("MLC_CONFIG_SOURCE", "ConfigSecret", None),
    ("MLC_INGEST_QUEUE_URL", "IngestQueue", Some("QueueUrl")),
    ("MLC_POST_QUEUE_URL", "PostQueue", Some("QueueUrl")),
    (
        "MLC_INGEST_DLQ_URL",
        "IngestDeadLetterQueue",
        Some("QueueUrl"),
    ),
    ("MLC_POST_DLQ_URL", "PostDeadLetterQueue", Some("QueueUrl")),
    ("MLC_LEDGER_TABLE", "LedgerTable", None),
    ("MLC_WATERMARKS_TABLE", "WatermarksTable", None),
    ("MLC_MAPPINGS_TABLE", "MappingsTable", None),
    ("MLC_PARKED_TABLE", "ParkedTable", None),
    ("MLC_AUDIT_TABLE", "AuditTable", None),
    ("MLC_SECRET_PREFIX", "SecretPrefix", None),
    ("MLC_SECRET_TTL_SECS", "SecretTtlSeconds", None),
];

struct TableSpec {
    logical_id: &'static str,
    hash: &'static str,
    range: Option<&'static str>,
    /// (index name, hash, range); projection ALL.
    gsis: &'static [(&'static str, &'static str, &'static str)],
}

const TABLES: &[TableSpec] = &[
    TableSpec {
        logical_id: "LedgerTable",
        hash: "ledger_key",
        range: None,
        gsis: &[],
    },
    TableSpec {
        logical_id: "WatermarksTable",
        hash: "watermark_key",
        range: None,
        gsis: &[],
    },
    TableSpec {
        logical_id: "MappingsTable",
        hash: "mapping_table",
        range: Some("source_value"),
        gsis: &[],
    },
    TableSpec {
        logical_id: "ParkedTable",
        hash: "document_key",
        range: None,
        gsis: &[],
    },
    TableSpec {
        logical_id: "AuditTable",
        hash: "audit_id",
        range: None,
        gsis: &[
            ("by_document", "document", "at"),
            ("by_status_date", "status", "at"),
            ("by_document_number", "source_document_number", "at"),
        ],
    },
];

/// Least privilege: exactly these SAM policy templates, on exactly these resources.
/// ("Statement", "RotatingSecretPrefix") is the inline write-back grant of rotating tokens
/// (checked in `only_the_rotating_token_secrets_are_writable`); the webhook calls no API.
const POLICIES: &[(&str, &[(&str, &str)])] = &[
    (
        "WebhookFunction",
        &[
            ("SQSSendMessagePolicy", "IngestQueue"),
            ("DynamoDBWritePolicy", "AuditTable"),
            ("AWSSecretsManagerGetSecretValuePolicy", "SecretPrefix"),
            ("AWSSecretsManagerGetSecretValuePolicy", "ConfigSecret"),
        ],
    ),
    (
        "PollerFunction",
        &[
            ("SQSSendMessagePolicy", "IngestQueue"),
            ("DynamoDBCrudPolicy", "WatermarksTable"),
            ("DynamoDBCrudPolicy", "ParkedTable"),
            ("DynamoDBWritePolicy", "AuditTable"),
            ("AWSSecretsManagerGetSecretValuePolicy", "SecretPrefix"),
            ("AWSSecretsManagerGetSecretValuePolicy", "ConfigSecret"),
            ("Statement", "RotatingSecretPrefix"),
        ],
    ),
    (
        "MapperFunction",
        &[
            ("SQSPollerPolicy", "IngestQueue"),
            ("SQSSendMessagePolicy", "PostQueue"),
            ("DynamoDBReadPolicy", "MappingsTable"),
            ("DynamoDBCrudPolicy", "ParkedTable"),
            ("DynamoDBWritePolicy", "AuditTable"),
            ("AWSSecretsManagerGetSecretValuePolicy", "SecretPrefix"),
            ("AWSSecretsManagerGetSecretValuePolicy", "ConfigSecret"),
            ("Statement", "RotatingSecretPrefix"),
        ],
    ),
    (
        "PosterFunction",
        &[
            ("SQSPollerPolicy", "PostQueue"),
            ("DynamoDBCrudPolicy", "LedgerTable"),
            ("DynamoDBCrudPolicy", "ParkedTable"),
            ("DynamoDBReadPolicy", "MappingsTable"),
            ("DynamoDBWritePolicy", "AuditTable"),
            ("AWSSecretsManagerGetSecretValuePolicy", "SecretPrefix"),
            ("AWSSecretsManagerGetSecretValuePolicy", "ConfigSecret"),
            ("Statement", "RotatingSecretPrefix"),
        ],
    ),
];

/// The one route shape of both URL forms, `/webhooks/<integration>/<channel>` and the earlier
/// `/webhooks/<channel>/<integration>`, for GET and POST (`functions/common/src/webhook.rs`
/// reads the two segments either way).
const WEBHOOK_ROUTE_PATH: &str = "/webhooks/{first}/{second}";
/// The webhook channels of the sample integration's flow (Coupa call-outs, BC notifications).
const CHANNELS: &[&str] = &["coupa", "bc"];
/// The value of the client state secret the BC samples carry.
const SAMPLE_BC_CLIENT_STATE: &str = "mlc-sample-client-state";
/// The value of the `coupa-webhook-secret` secret the sample webhook is signed with.
const SAMPLE_WEBHOOK_SECRET: &[u8] = b"coupa-webhook-secret";
/// The integration the webhook samples and `schedule-poll-one.json` name (one of the example
/// configuration's).
const SAMPLE_INTEGRATION: &str = "coupa-bc";
/// The functions' name of the configuration secret under the prefix, and their placeholder
/// (`functions/common/src/config_source.rs`).
const CONFIG_SOURCE_RS: &str = "functions/common/src/config_source.rs";
/// The poller's log message of a failed scheduled task (`functions/common/src/poller.rs`).
const POLLER_RS: &str = "functions/common/src/poller.rs";

// ------------------------------------------------------------------------------- helpers

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/ has a parent")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn template() -> Value {
    serde_yaml_ng::from_str(&read("infra/template.yaml")).expect("infra/template.yaml parses")
}

fn event(name: &str) -> Json {
    serde_json::from_str(&read(&format!("events/{name}")))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// The tag of a short-form intrinsic (`!Ref` → "Ref") and the value under it.
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a plain string, got {v:?}"))
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().expect("an integer"),
        Value::String(x) => x.parse().expect("an integer string"),
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// `!Ref X` or `{Ref: X}` → X.
fn as_ref(v: &Value) -> Option<&str> {
    match tagged(v) {
        Some((tag, inner)) if tag == "Ref" => inner.as_str(),
        _ => v.get("Ref").and_then(Value::as_str),
    }
}

/// `!GetAtt X.Attr`, `!GetAtt [X, Attr]` or `{Fn::GetAtt: ...}` → (X, Attr).
fn as_getatt(v: &Value) -> Option<(String, String)> {
    let inner = match tagged(v) {
        Some((tag, inner)) if tag == "GetAtt" => inner,
        _ => v.get("Fn::GetAtt")?,
    };
    match inner {
        Value::String(x) => {
            let (r, a) = x.split_once('.')?;
            Some((r.to_string(), a.to_string()))
        }
        Value::Sequence(seq) if seq.len() == 2 => {
            Some((seq[0].as_str()?.to_string(), seq[1].as_str()?.to_string()))
        }
        _ => None,
    }
}

/// The text of a `!Sub` (string form only).
fn as_sub(v: &Value) -> Option<&str> {
    match tagged(v) {
        Some((tag, inner)) if tag == "Sub" => inner.as_str(),
        _ => v.get("Fn::Sub").and_then(Value::as_str),
    }
}

/// The `${Name}` / `${Name.Attr}` variables of a `!Sub` string (not `${!Literal}`).
fn sub_vars(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').expect("closed ${");
        let var = &after[..end];
        if !var.starts_with('!') {
            out.push(var.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

fn resources(t: &Value) -> &serde_yaml_ng::Mapping {
    t["Resources"].as_mapping().expect("Resources")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["Resources"]
        .get(id)
        .unwrap_or_else(|| panic!("resource {id} is missing"))
}

fn type_of<'a>(t: &'a Value, id: &str) -> &'a str {
    s(&resource(t, id)["Type"])
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (s(k), r))
        .collect()
}

/// A function property, falling back to `Globals.Function`.
fn function_prop<'a>(t: &'a Value, id: &str, prop: &str) -> &'a Value {
    let own = &resource(t, id)["Properties"][prop];
    if own.is_null() {
        &t["Globals"]["Function"][prop]
    } else {
        own
    }
}

fn function_timeout(t: &Value, id: &str) -> i64 {
    int(function_prop(t, id, "Timeout"))
}

fn is_fifo(queue: &Value) -> bool {
    queue["Properties"]["FifoQueue"].as_bool() == Some(true)
}

/// Every logical name the template refers to, with where.
fn collect_refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    if let Some(r) = as_ref(v) {
        out.push((r.to_string(), at.to_string()));
    }
    if let Some((r, _)) = as_getatt(v) {
        out.push((r, at.to_string()));
    }
    if let Some(text) = as_sub(v) {
        for var in sub_vars(text) {
            let name = var.split('.').next().unwrap_or_default().to_string();
            out.push((name, at.to_string()));
        }
    }
    match v {
        Value::Tagged(t) => collect_refs(&t.value, at, out),
        Value::Sequence(seq) => seq.iter().for_each(|x| collect_refs(x, at, out)),
        Value::Mapping(m) => {
            for (k, x) in m {
                let key = k.as_str().unwrap_or("?");
                collect_refs(x, &format!("{at}.{key}"), out);
            }
        }
        _ => {}
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Mirror of `shared/src/ports/queue.rs::dedup_id` for the short case.
fn dedup_id(parts: &[&str]) -> String {
    let id: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    assert!(
        id.len() <= 128,
        "long ids are hashed; the samples use short ones"
    );
    id
}

fn stack_name() -> String {
    let cfg: toml::Table = toml::from_str(&read("samconfig.toml")).expect("samconfig.toml");
    cfg["default"]["deploy"]["parameters"]["stack_name"]
        .as_str()
        .expect("a deploy stack_name")
        .to_string()
}

/// The physical queue name of a queue resource named `${AWS::StackName}-...` for `stack`.
fn queue_name(t: &Value, id: &str, stack: &str) -> String {
    let name = &resource(t, id)["Properties"]["QueueName"];
    let text = as_sub(name).expect("queue names are !Sub \"${AWS::StackName}-...\"");
    text.replace("${AWS::StackName}", stack)
}

// ------------------------------------------------------------------------------- functions

#[test]
fn functions_are_exactly_the_contracts_four() {
    let t = template();
    let ids: BTreeSet<&str> = resources_of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let want: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.0).collect();
    assert_eq!(ids, want);
    assert!(
        resources_of_type(&t, "AWS::Lambda::Function").is_empty(),
        "functions are SAM functions"
    );
}

#[test]
fn every_function_is_a_cargo_lambda_arm64_al2023_binary_from_the_workspace() {
    let t = template();
    for &(id, dir, binary, _) in FUNCTIONS {
        assert_eq!(
            s(function_prop(&t, id, "Runtime")),
            "provided.al2023",
            "{id}"
        );
        assert_eq!(s(function_prop(&t, id, "Handler")), "bootstrap", "{id}");
        let arch = function_prop(&t, id, "Architectures")
            .as_sequence()
            .expect("Architectures is a list");
        assert_eq!(arch.len(), 1, "{id}");
        assert_eq!(s(&arch[0]), "arm64", "{id}");

        let f = resource(&t, id);
        assert_eq!(s(&f["Metadata"]["BuildMethod"]), "rust-cargolambda", "{id}");
        assert_eq!(
            s(&f["Metadata"]["BuildProperties"]["Binary"]),
            binary,
            "{id}"
        );

        // CodeUri is the workspace root, relative to the template.
        let code = root()
            .join("infra")
            .join(s(function_prop(&t, id, "CodeUri")));
        let manifest =
            std::fs::read_to_string(code.join("Cargo.toml")).expect("CodeUri/Cargo.toml");
        assert!(
            manifest.contains("[workspace]"),
            "{id}: CodeUri is not the workspace root"
        );

        // The binary is what the function's crate builds (when that crate is there).
        let crate_manifest = root().join("functions").join(dir).join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&crate_manifest) {
            let m: toml::Table = toml::from_str(&text).expect("function Cargo.toml");
            let mut names: Vec<&str> = m
                .get("bin")
                .and_then(|b| b.as_array())
                .map(|bins| bins.iter().filter_map(|b| b["name"].as_str()).collect())
                .unwrap_or_default();
            if names.is_empty() {
                names.push(m["package"]["name"].as_str().expect("package name"));
            }
            assert!(
                names.contains(&binary),
                "functions/{dir} builds {names:?}, the template wants {binary}"
            );
        }
    }
}

#[test]
fn function_timeouts_and_memory() {
    let t = template();
    for &(id, _, _, timeout) in FUNCTIONS {
        assert_eq!(function_timeout(&t, id), timeout, "{id}");
        let mem = int(function_prop(&t, id, "MemorySize"));
        assert!((128..=10240).contains(&mem), "{id}: MemorySize {mem}");
    }
}

/// The webhook function's HTTP API routes: (method, path), each checked to be on the API.
fn webhook_routes(t: &Value) -> BTreeSet<(String, String)> {
    let events = resource(t, "WebhookFunction")["Properties"]["Events"]
        .as_mapping()
        .expect("webhook events");
    let mut out = BTreeSet::new();
    for (name, ev) in events {
        assert_eq!(s(&ev["Type"]), "HttpApi", "{name:?}");
        let p = &ev["Properties"];
        assert_eq!(s(&p["PayloadFormatVersion"]), "2.0", "{name:?}");
        let api = as_ref(&p["ApiId"]).expect("ApiId: !Ref the HTTP API");
        assert_eq!(type_of(t, api), "AWS::Serverless::HttpApi");
        out.insert((s(&p["Method"]).to_string(), s(&p["Path"]).to_string()));
    }
    out
}

/// Does a request `method path` reach the webhook function through one of `routes`? (HTTP API
/// matching: `{x}` is one whole segment; `ANY` is every method.)
fn routed(routes: &BTreeSet<(String, String)>, method: &str, path: &str) -> bool {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    routes.iter().any(|(m, p)| {
        let want: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        (m == method || m.eq_ignore_ascii_case("ANY"))
            && want.len() == segs.len()
            && want
                .iter()
                .zip(&segs)
                .all(|(w, g)| (w.starts_with('{') && w.ends_with('}')) || w == g)
    })
}

#[test]
fn the_webhooks_are_get_and_post_on_one_route_shape_for_both_url_forms() {
    let t = template();
    let routes = webhook_routes(&t);
    let want: BTreeSet<(String, String)> = ["GET", "POST"]
        .iter()
        .map(|m| (m.to_string(), WEBHOOK_ROUTE_PATH.to_string()))
        .collect();
    assert_eq!(routes, want);
    for channel in CHANNELS {
        let new_form = format!("/webhooks/{SAMPLE_INTEGRATION}/{channel}");
        // The URLs Coupa instances and BC subscriptions of earlier versions were given.
        let old_form = format!("/webhooks/{channel}/{SAMPLE_INTEGRATION}");
        for path in [&new_form, &old_form] {
            for method in ["GET", "POST"] {
                assert!(routed(&routes, method, path), "{method} {path}: {routes:?}");
            }
            // Not ANY: no other method reaches (and bills) the function.
            for method in ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
                assert!(
                    !routed(&routes, method, path),
                    "{method} {path} reaches the webhook: {routes:?}"
                );
            }
        }
    }
    assert!(!routed(&routes, "POST", "/webhooks/coupa-bc"));
    assert!(!routed(&routes, "POST", "/webhooks/coupa-bc/coupa/extra"));
}

#[test]
fn no_two_routes_differ_only_in_their_parameter_names() {
    // An HTTP API refuses `/webhooks/{source}/{integration}` next to
    // `/webhooks/{first}/{second}` (CloudFormation fails the deployment; cfn-lint does not see
    // it): at one position of one path, every route names its variable alike.
    let t = template();
    let routes = webhook_routes(&t);
    let mut names: BTreeMap<(String, usize), String> = BTreeMap::new();
    for (_, path) in &routes {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (i, seg) in segs.iter().enumerate() {
            let Some(var) = seg.strip_prefix('{').and_then(|v| v.strip_suffix('}')) else {
                continue;
            };
            let prefix = segs[..i].join("/");
            let seen = names
                .entry((prefix.clone(), i))
                .or_insert_with(|| var.to_string());
            assert_eq!(seen, var, "/{prefix}/{{…}}: {routes:?}");
        }
    }
}

#[test]
fn the_webhook_api_is_throttled_by_parameters_with_sensible_defaults() {
    // Unauthenticated callers must not take the account's Lambda concurrency (the mapper and
    // poster share it): the stage throttles every route, all clients together.
    let t = template();
    let api = &resource(&t, "WebhookApi")["Properties"];
    let settings = &api["DefaultRouteSettings"];
    assert_eq!(
        as_ref(&settings["ThrottlingRateLimit"]),
        Some("WebhookThrottlingRateLimit")
    );
    assert_eq!(
        as_ref(&settings["ThrottlingBurstLimit"]),
        Some("WebhookThrottlingBurstLimit")
    );
    // No route is exempted.
    assert!(api["RouteSettings"].is_null(), "{:?}", api["RouteSettings"]);
    let p = &t["Parameters"];
    let (rate, burst) = (
        &p["WebhookThrottlingRateLimit"],
        &p["WebhookThrottlingBurstLimit"],
    );
    for (name, param, quota) in [("rate", rate, 10_000), ("burst", burst, 5_000)] {
        assert_eq!(s(&param["Type"]), "Number", "{name}");
        // 0 would refuse every call-out; above the account quota means nothing.
        assert!(int(&param["MinValue"]) >= 1, "{name}");
        assert!(int(&param["MaxValue"]) <= quota, "{name}");
        let default = int(&param["Default"]);
        assert!(
            (int(&param["MinValue"])..=int(&param["MaxValue"])).contains(&default),
            "{name}"
        );
    }
    assert_eq!(int(&rate["Default"]), 50);
    assert_eq!(int(&burst["Default"]), 100);
    // Both are in the console's parameter groups.
    let groups = t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        .as_sequence()
        .expect("ParameterGroups");
    let grouped: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g["Parameters"].as_sequence().expect("Parameters").iter())
        .map(s)
        .collect();
    for name in ["WebhookThrottlingRateLimit", "WebhookThrottlingBurstLimit"] {
        assert!(grouped.contains(name), "{name} is in no parameter group");
    }
}

#[test]
fn the_poller_runs_on_an_eventbridge_schedule_over_every_configured_integration() {
    let t = template();
    let events = resource(&t, "PollerFunction")["Properties"]["Events"]
        .as_mapping()
        .expect("poller events");
    assert!(!events.is_empty());
    for (name, ev) in events {
        assert_eq!(s(&ev["Type"]), "Schedule", "{name:?}");
        assert_eq!(s(&ev["Properties"]["State"]), "ENABLED", "{name:?}");
        // One rule per task whatever the integrations: a rule name may not hold "*" or ",".
        let rule = as_sub(&ev["Properties"]["Name"]).expect("Name: !Sub");
        assert_eq!(sub_vars(rule), ["AWS::StackName"], "{name:?}: {rule}");
    }
    let p = &events["Poll"]["Properties"];
    assert_eq!(as_ref(&p["Schedule"]), Some("PollSchedule"));
    let input = schedule_input(&t, p, None);
    assert_eq!(
        input,
        serde_json::json!({"integrations": "*", "task": "poll"})
    );
    assert_eq!(
        input,
        event("schedule-poll.json"),
        "events/schedule-poll.json"
    );
    let schedule = s(&t["Parameters"]["PollSchedule"]["Default"]);
    assert!(schedule.starts_with("rate(") || schedule.starts_with("cron("));
}

#[test]
fn poll_integration_selects_every_integration_or_a_list_and_keeps_the_input_json() {
    // "*" (every integration), or names as an older stack has them (one) or a list; the
    // pattern admits no character that could break the Input's JSON.
    let t = template();
    let param = &t["Parameters"]["PollIntegration"];
    assert_eq!(s(&param["Default"]), "*");
    assert_eq!(
        s(&param["AllowedPattern"]),
        "^(\\*|[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*)$"
    );
    let events = &resource(&t, "PollerFunction")["Properties"]["Events"];
    for value in ["*", "coupa-bc", "coupa-bc,basware_bc"] {
        for ev in ["Poll", "RenewSubscriptions"] {
            let input = schedule_input(&t, &events[ev]["Properties"], Some(value));
            assert_eq!(input["integrations"], value, "{ev}");
            assert!(input.get("integration").is_none(), "{ev}");
        }
    }
}

/// A schedule's `Input: !Sub '...'` with `PollIntegration` = `value` (default: its default),
/// as JSON.
fn schedule_input(t: &Value, props: &Value, value: Option<&str>) -> Json {
    let value = value.unwrap_or_else(|| s(&t["Parameters"]["PollIntegration"]["Default"]));
    let input = as_sub(&props["Input"]).expect("Input: !Sub");
    let vars = sub_vars(input);
    assert!(
        vars.iter().all(|v| v == "PollIntegration"),
        "Input uses only ${{PollIntegration}}: {vars:?}"
    );
    let input = input.replace("${PollIntegration}", value);
    serde_json::from_str(&input).expect("Input is JSON")
}

#[test]
fn the_poller_renews_the_webhook_subscriptions_every_12_hours() {
    // It runs each flow's generic upkeep. BC subscriptions live 3 days (business-central.md
    // A8); renewal every 12 hours leaves several attempts before one expires.
    let t = template();
    let events = resource(&t, "PollerFunction")["Properties"]["Events"]
        .as_mapping()
        .expect("poller events");
    assert_eq!(events.len(), 2, "the poll and the renewal");
    let p = &events["RenewSubscriptions"]["Properties"];
    assert_eq!(s(&events["RenewSubscriptions"]["Type"]), "Schedule");
    assert_eq!(s(&p["Schedule"]), "rate(12 hours)");
    assert_eq!(s(&p["State"]), "ENABLED");
    let input = schedule_input(&t, p, None);
    assert_eq!(
        input,
        serde_json::json!({"integrations": "*", "task": "renew_subscriptions"})
    );
    assert_eq!(
        input,
        event("schedule-renew-subscriptions.json"),
        "events/schedule-renew-subscriptions.json"
    );
    // Its own rule name, distinct from the poll's.
    let name = |ev: &str| as_sub(&events[ev]["Properties"]["Name"]).expect("Name: !Sub");
    assert_ne!(name("Poll"), name("RenewSubscriptions"));
    // Described as what it is for every flow, not for one system.
    let description = as_sub(&p["Description"]).expect("Description: !Sub");
    assert!(
        description.contains("webhook subscriptions") && !description.contains("BC"),
        "{description}"
    );
}

#[test]
fn a_failed_scheduled_task_is_counted_from_the_pollers_log_and_alarms() {
    // Over several integrations the poller's invocation succeeds even when one failed, so the
    // function's Errors alarm does not see it: a metric filter on its log does.
    let t = template();
    let phrase = {
        let src = read(POLLER_RS);
        let at = src
            .find("pub const TASK_FAILED: &str = \"")
            .expect("poller.rs defines TASK_FAILED");
        let rest = &src[at..];
        let start = rest.find('"').unwrap() + 1;
        let end = start + rest[start..].find('"').unwrap();
        rest[start..end].to_string()
    };
    let filters = resources_of_type(&t, "AWS::Logs::MetricFilter");
    assert_eq!(filters.len(), 1, "{filters:?}");
    let p = &filters[0].1["Properties"];
    let group = as_ref(&p["LogGroupName"]).expect("LogGroupName: !Ref");
    assert_eq!(
        as_ref(&resource(&t, "PollerFunction")["Properties"]["LoggingConfig"]["LogGroup"]),
        Some(group),
        "the filter reads the poller's log group"
    );
    assert_eq!(s(&p["FilterPattern"]), format!("\"{phrase}\""));
    let m = &p["MetricTransformations"][0];
    let (namespace, metric) = (
        as_sub(&m["MetricNamespace"]).expect("!Sub"),
        s(&m["MetricName"]),
    );
    let alarms: Vec<_> = resources_of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| {
            as_sub(&a["Properties"]["Namespace"]) == Some(namespace)
                && a["Properties"]["MetricName"].as_str() == Some(metric)
        })
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on {namespace}/{metric}");
    let a = &alarms[0].1["Properties"];
    assert_eq!(s(&a["Statistic"]), "Sum");
    assert_eq!(int(&a["Threshold"]), 0);
    assert_eq!(s(&a["ComparisonOperator"]), "GreaterThanThreshold");
    assert_eq!(s(&a["TreatMissingData"]), "notBreaching");
}

// ------------------------------------------------------------------------------- configuration

/// The string literal of `const NAME: &str = "...";` in a Rust source (escapes `\n`, `\"`).
fn rust_str_const(src: &str, name: &str) -> String {
    let at = src
        .find(&format!("const {name}: &str = \""))
        .unwrap_or_else(|| panic!("no const {name}"));
    let rest = &src[at..];
    let start = rest.find('"').unwrap() + 1;
    let mut out = String::new();
    let mut chars = rest[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    panic!("const {name} is not closed")
}

#[test]
fn the_stack_owns_the_configuration_secret_and_the_functions_may_only_read_it() {
    let t = template();
    let src = read(CONFIG_SOURCE_RS);
    let secret = resource(&t, "ConfigSecret");
    assert_eq!(s(&secret["Type"]), "AWS::SecretsManager::Secret");
    let p = &secret["Properties"];
    // Under the prefix, by the name the functions and mlc-aws-local use.
    assert_eq!(
        as_sub(&p["Name"]),
        Some(
            format!(
                "${{SecretPrefix}}{}",
                rust_str_const(&src, "CONFIG_SECRET_NAME")
            )
            .as_str()
        )
    );
    // Created holding the placeholder: comment lines only, so the functions fall back to
    // MLC_CONFIG until a configuration is uploaded; the very text the functions write locally.
    let placeholder = s(&p["SecretString"]);
    assert!(
        placeholder
            .lines()
            .all(|l| l.trim().is_empty() || l.trim().starts_with('#')),
        "{placeholder:?}"
    );
    assert_eq!(placeholder, rust_str_const(&src, "PLACEHOLDER"));
    assert!(p["GenerateSecretString"].is_null());
    // Every function is told where it is (ENVIRONMENT) and may read it (POLICIES); nothing in
    // the stack may write it: only GetSecretValue policy templates name it.
    for &(id, ..) in FUNCTIONS {
        let (_, want) = POLICIES.iter().find(|p| p.0 == id).unwrap();
        assert!(
            want.contains(&("AWSSecretsManagerGetSecretValuePolicy", "ConfigSecret")),
            "{id}"
        );
    }
    let mut refs = Vec::new();
    collect_refs(&t["Resources"], "Resources", &mut refs);
    for (name, at) in &refs {
        if name == "ConfigSecret" {
            assert!(
                at.ends_with("AWSSecretsManagerGetSecretValuePolicy.SecretArn"),
                "{at} refers to the configuration secret"
            );
        }
    }
    let outputs = &t["Outputs"];
    assert_eq!(
        as_ref(&outputs["ConfigSecretArn"]["Value"]),
        Some("ConfigSecret")
    );
}

#[test]
fn the_sqs_triggers_are_scoped_event_source_mappings_on_fifo_queues() {
    let t = template();
    // A SAM `SQS` event would attach AWSLambdaSQSQueueExecutionRole (every queue): not allowed.
    for (id, f) in resources_of_type(&t, "AWS::Serverless::Function") {
        if let Some(events) = f["Properties"]["Events"].as_mapping() {
            for (name, ev) in events {
                assert_ne!(
                    ev["Type"].as_str(),
                    Some("SQS"),
                    "{id} {name:?}: use an AWS::Lambda::EventSourceMapping"
                );
            }
        }
    }
    let mappings = resources_of_type(&t, "AWS::Lambda::EventSourceMapping");
    assert_eq!(mappings.len(), CONSUMERS.len());
    for &(function, queue, _, _) in CONSUMERS {
        let found: Vec<_> = mappings
            .iter()
            .filter(|(_, m)| as_ref(&m["Properties"]["FunctionName"]) == Some(function))
            .collect();
        assert_eq!(found.len(), 1, "{function}: one trigger");
        let p = &found[0].1["Properties"];
        let (source, attr) = as_getatt(&p["EventSourceArn"]).expect("EventSourceArn: !GetAtt");
        assert_eq!(
            (source.as_str(), attr.as_str()),
            (queue, "Arn"),
            "{function}"
        );
        assert_eq!(type_of(&t, &source), "AWS::SQS::Queue");
        assert!(is_fifo(resource(&t, &source)), "{source} is FIFO");
        let types: Vec<&str> = p["FunctionResponseTypes"]
            .as_sequence()
            .expect("FunctionResponseTypes")
            .iter()
            .map(s)
            .collect();
        assert_eq!(types, ["ReportBatchItemFailures"], "{function}");
        let batch = int(&p["BatchSize"]);
        assert!(
            (1..=10).contains(&batch),
            "{function}: FIFO batches hold 1..=10"
        );
        assert!(
            p["MaximumBatchingWindowInSeconds"].is_null(),
            "{function}: FIFO sources take no batching window"
        );
        assert!(
            p["Enabled"].as_bool() != Some(false),
            "{function}: trigger disabled"
        );
    }
}

// ------------------------------------------------------------------------------- queues

#[test]
fn every_queue_is_fifo_with_a_fifo_dead_letter_queue() {
    let t = template();
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    let mut dead_letter_targets = BTreeSet::new();
    for (id, q) in &queues {
        let p = &q["Properties"];
        assert!(is_fifo(q), "{id} is not FIFO");
        assert_eq!(
            p["ContentBasedDeduplication"].as_bool(),
            Some(false),
            "{id}: the connector sets MessageDeduplicationId"
        );
        if let Some(name) = as_sub(&p["QueueName"]) {
            assert!(name.ends_with(".fifo"), "{id}: {name}");
        }
        let retention = int(&p["MessageRetentionPeriod"]);
        assert!((60..=1_209_600).contains(&retention), "{id}: retention");
        let visibility = int(&p["VisibilityTimeout"]);
        assert!((0..=43_200).contains(&visibility), "{id}: visibility");
        let redrive = &p["RedrivePolicy"];
        if !redrive.is_null() {
            let (dlq, attr) = as_getatt(&redrive["deadLetterTargetArn"]).expect("!GetAtt DLQ.Arn");
            assert_eq!(attr, "Arn");
            assert_eq!(type_of(&t, &dlq), "AWS::SQS::Queue", "{id} → {dlq}");
            let dlq_res = resource(&t, &dlq);
            assert!(is_fifo(dlq_res), "{id}: its DLQ {dlq} is not FIFO");
            assert!(
                dlq_res["Properties"]["RedrivePolicy"].is_null(),
                "{dlq} is a DLQ with a DLQ"
            );
            let max = int(&redrive["maxReceiveCount"]);
            assert!((1..=1000).contains(&max), "{id}: maxReceiveCount {max}");
            assert_eq!(max, 5, "{id}: the contract says 5");
            let dlq_retention = int(&dlq_res["Properties"]["MessageRetentionPeriod"]);
            assert!(dlq_retention >= retention, "{dlq} keeps less than {id}");
            dead_letter_targets.insert(dlq);
        }
    }
    // Every queue is either a source with a DLQ or a DLQ.
    for (id, q) in &queues {
        assert!(
            !q["Properties"]["RedrivePolicy"].is_null() || dead_letter_targets.contains(*id),
            "{id} has no dead-letter queue and is none"
        );
    }
    for &(_, queue, dlq, contract) in CONSUMERS {
        let redrive = &resource(&t, queue)["Properties"]["RedrivePolicy"];
        assert_eq!(
            as_getatt(&redrive["deadLetterTargetArn"]).map(|x| x.0),
            Some(dlq.to_string())
        );
        let name = as_sub(&resource(&t, queue)["Properties"]["QueueName"]).expect("QueueName");
        assert!(name.ends_with(&format!("-{contract}")), "{queue}: {name}");
        assert_eq!(
            int(&resource(&t, dlq)["Properties"]["MessageRetentionPeriod"]),
            1_209_600,
            "{dlq}: keep dead letters 14 days"
        );
    }
}

#[test]
fn consumer_queues_hide_a_message_six_times_the_function_timeout() {
    let t = template();
    for &(function, queue, _, _) in CONSUMERS {
        let visibility = int(&resource(&t, queue)["Properties"]["VisibilityTimeout"]);
        let timeout = function_timeout(&t, function);
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} < 6 x {function} Timeout {timeout}"
        );
    }
}

// ------------------------------------------------------------------------------- tables

#[test]
fn tables_have_the_contracts_keys_and_indexes_pitr_and_encryption() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    let ids: BTreeSet<&str> = tables.iter().map(|(id, _)| *id).collect();
    let want: BTreeSet<&str> = TABLES.iter().map(|x| x.logical_id).collect();
    assert_eq!(ids, want);

    fn keys(schema: &Value) -> Vec<(String, String)> {
        schema
            .as_sequence()
            .expect("KeySchema")
            .iter()
            .map(|k| {
                (
                    s(&k["AttributeName"]).to_string(),
                    s(&k["KeyType"]).to_string(),
                )
            })
            .collect()
    }
    fn want_keys(hash: &str, range: Option<&str>) -> Vec<(String, String)> {
        let mut v = vec![(hash.to_string(), "HASH".to_string())];
        if let Some(r) = range {
            v.push((r.to_string(), "RANGE".to_string()));
        }
        v
    }

    for spec in TABLES {
        let table = resource(&t, spec.logical_id);
        let p = &table["Properties"];
        let id = spec.logical_id;
        assert_eq!(s(&p["BillingMode"]), "PAY_PER_REQUEST", "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{id}: point-in-time recovery"
        );
        assert_eq!(
            p["SSESpecification"]["SSEEnabled"].as_bool(),
            Some(true),
            "{id}"
        );
        assert_eq!(s(&table["DeletionPolicy"]), "Retain", "{id}");
        assert_eq!(s(&table["UpdateReplacePolicy"]), "Retain", "{id}");
        assert_eq!(
            keys(&p["KeySchema"]),
            want_keys(spec.hash, spec.range),
            "{id}"
        );

        let gsis: BTreeMap<String, &Value> = p["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|seq| {
                seq.iter()
                    .map(|g| (s(&g["IndexName"]).to_string(), g))
                    .collect()
            })
            .unwrap_or_default();
        let want_names: BTreeSet<String> = spec.gsis.iter().map(|g| g.0.to_string()).collect();
        assert_eq!(
            gsis.keys().cloned().collect::<BTreeSet<_>>(),
            want_names,
            "{id}: GSIs"
        );
        for &(name, hash, range) in spec.gsis {
            let g = gsis[name];
            assert_eq!(
                keys(&g["KeySchema"]),
                want_keys(hash, Some(range)),
                "{id}.{name}"
            );
            assert_eq!(s(&g["Projection"]["ProjectionType"]), "ALL", "{id}.{name}");
        }
        assert!(p["LocalSecondaryIndexes"].is_null(), "{id}: no LSIs");

        // Attribute definitions: exactly the key attributes, all strings (CloudFormation
        // refuses definitions no key uses).
        let defined: BTreeMap<String, String> = p["AttributeDefinitions"]
            .as_sequence()
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| {
                (
                    s(&a["AttributeName"]).to_string(),
                    s(&a["AttributeType"]).to_string(),
                )
            })
            .collect();
        let mut used: BTreeSet<String> = BTreeSet::new();
        used.insert(spec.hash.to_string());
        used.extend(spec.range.map(str::to_string));
        for &(_, h, r) in spec.gsis {
            used.insert(h.to_string());
            used.insert(r.to_string());
        }
        assert_eq!(
            defined.keys().cloned().collect::<BTreeSet<_>>(),
            used,
            "{id}"
        );
        assert!(defined.values().all(|ty| ty == "S"), "{id}: string keys");
    }
}

/// The AWS adapter (`shared/src/adapters/aws/`) is the code that queries the tables: every GSI
/// it names must exist, and it must use every key attribute the template declares.
#[test]
fn the_aws_adapter_queries_what_the_tables_have() {
    let dir = root().join("shared/src/adapters/aws");
    let mut source = String::new();
    for entry in std::fs::read_dir(&dir).expect("shared/src/adapters/aws") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(&path).expect("adapter source"));
        }
    }
    if !source.to_lowercase().contains("dynamodb") {
        eprintln!("the AWS adapter has no DynamoDB code yet; nothing to compare");
        return;
    }
    let t = template();
    let mut indexes = BTreeSet::new();
    for spec in TABLES {
        indexes.extend(spec.gsis.iter().map(|g| g.0));
        for attr in [Some(spec.hash), spec.range].into_iter().flatten() {
            assert!(
                source.contains(&format!("\"{attr}\"")),
                "the adapter never names key attribute {attr} of {}",
                spec.logical_id
            );
        }
    }
    // Every "by_..." literal in the adapter is an index of the template.
    let mut rest = source.as_str();
    while let Some(i) = rest.find("\"by_") {
        let lit = &rest[i + 1..];
        let end = lit.find('"').expect("closed literal");
        let name = &lit[..end];
        assert!(
            indexes.contains(name),
            "the adapter queries index {name}, the template has {indexes:?}"
        );
        rest = &lit[end..];
    }
    assert!(!resources_of_type(&t, "AWS::DynamoDB::Table").is_empty());
}

// ------------------------------------------------------------------------------- environment

#[test]
fn every_function_gets_every_contract_variable_from_the_right_resource() {
    let t = template();
    let global = &t["Globals"]["Function"]["Environment"]["Variables"];
    for &(id, ..) in FUNCTIONS {
        let own = &resource(&t, id)["Properties"]["Environment"]["Variables"];
        for &(var, target, attr) in ENVIRONMENT {
            // SAM merges a function's variables over the global ones.
            let value = if own.get(var).is_some() {
                &own[var]
            } else {
                &global[var]
            };
            assert!(!value.is_null(), "{id}: {var} is not set");
            match attr {
                None => assert_eq!(as_ref(value), Some(target), "{id}: {var}"),
                Some(attr) => assert_eq!(
                    as_getatt(value),
                    Some((target.to_string(), attr.to_string())),
                    "{id}: {var}"
                ),
            }
        }
        assert!(
            own.get("AWS_ENDPOINT_URL").is_none() && global.get("AWS_ENDPOINT_URL").is_none(),
            "AWS_ENDPOINT_URL is for a local emulator only"
        );
    }
}

// ------------------------------------------------------------------------------- IAM

#[test]
fn every_function_has_exactly_its_scoped_policy_templates() {
    let t = template();
    let queue_types = ["SQSSendMessagePolicy", "SQSPollerPolicy"];
    let table_types = [
        "DynamoDBCrudPolicy",
        "DynamoDBReadPolicy",
        "DynamoDBWritePolicy",
    ];
    for &(id, want) in POLICIES {
        let f = &resource(&t, id)["Properties"];
        assert!(f["Role"].is_null(), "{id}: SAM builds the role");
        let policies = f["Policies"].as_sequence().expect("Policies");
        let mut got = Vec::new();
        for policy in policies {
            let m = policy
                .as_mapping()
                .unwrap_or_else(|| panic!("{id}: {policy:?} is not a scoped policy template"));
            assert_eq!(m.len(), 1, "{id}: one template per list item");
            let (name, args) = m.iter().next().unwrap();
            let name = s(name);
            let target = if queue_types.contains(&name) {
                let (q, attr) =
                    as_getatt(&args["QueueName"]).expect("QueueName: !GetAtt Q.QueueName");
                assert_eq!(attr, "QueueName", "{id} {name}");
                assert_eq!(type_of(&t, &q), "AWS::SQS::Queue", "{id} {name}");
                q
            } else if table_types.contains(&name) {
                let table = as_ref(&args["TableName"]).expect("TableName: !Ref");
                assert_eq!(type_of(&t, table), "AWS::DynamoDB::Table", "{id} {name}");
                table.to_string()
            } else if name == "AWSSecretsManagerGetSecretValuePolicy"
                && let Some(secret) = as_ref(&args["SecretArn"])
            {
                // One secret of the stack's own (its Ref is the ARN).
                assert_eq!(
                    type_of(&t, secret),
                    "AWS::SecretsManager::Secret",
                    "{id} {name}"
                );
                secret.to_string()
            } else if name == "AWSSecretsManagerGetSecretValuePolicy" {
                let arn = as_sub(&args["SecretArn"]).expect("SecretArn: !Sub or !Ref a secret");
                assert!(
                    arn.ends_with(":secret:${SecretPrefix}*"),
                    "{id}: secrets scoped to the prefix, got {arn}"
                );
                assert!(arn.starts_with(
                    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
                ));
                "SecretPrefix".to_string()
            } else if name == "Statement" {
                rotating_write_grant(id, args);
                "RotatingSecretPrefix".to_string()
            } else {
                panic!("{id}: unexpected policy {name}")
            };
            got.push((name.to_string(), target));
        }
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{id}");
    }
    // Each trigger's function may read its queue.
    for &(function, queue, _, _) in CONSUMERS {
        let (_, want) = POLICIES.iter().find(|p| p.0 == function).unwrap();
        assert!(want.contains(&("SQSPollerPolicy", queue)), "{function}");
    }
}

/// Checks the one inline statement a function may have: PutSecretValue and
/// UpdateSecretVersionStage (the compare-and-set of the secrets adapter), nothing else, on the
/// rotating-token secrets only.
fn rotating_write_grant(id: &str, statements: &Value) {
    let statements = statements.as_sequence().expect("Statement: a list");
    assert_eq!(statements.len(), 1, "{id}: one write-back statement");
    let st = &statements[0];
    assert_eq!(s(&st["Effect"]), "Allow", "{id}");
    let mut actions: Vec<&str> = st["Action"]
        .as_sequence()
        .expect("Action: a list")
        .iter()
        .map(s)
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage"
        ],
        "{id}: only the compare-and-set write"
    );
    let arn = as_sub(&st["Resource"]).expect("Resource: !Sub");
    assert_eq!(
        arn,
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:\
         ${SecretPrefix}${RotatingSecretPrefix}*",
        "{id}: writes scoped to the rotating-token secrets"
    );
    for key in st.as_mapping().unwrap().keys() {
        assert!(
            ["Sid", "Effect", "Action", "Resource"].contains(&s(key)),
            "{id}: unexpected {key:?} (a NotAction or NotResource would widen the grant)"
        );
    }
}

#[test]
fn only_the_rotating_token_secrets_are_writable() {
    let t = template();
    let p = &t["Parameters"]["RotatingSecretPrefix"];
    assert_eq!(s(&p["Type"]), "String");
    assert_eq!(s(&p["Default"]), "rotating/");
    // Never empty: "${SecretPrefix}*" would make every secret of the deployment writable.
    assert!(int(&p["MinLength"]) >= 1);
    assert!(
        s(&p["AllowedPattern"]).ends_with("+$"),
        "one character at least"
    );
    let mut writers = Vec::new();
    for (id, _) in resources_of_type(&t, "AWS::Serverless::Function") {
        for policy in function_prop(&t, id, "Policies").as_sequence().unwrap() {
            let Some(statements) = policy.as_mapping().and_then(|m| m.get("Statement")) else {
                continue;
            };
            rotating_write_grant(id, statements);
            writers.push(id);
        }
    }
    writers.sort();
    // The functions that call the systems (and so refresh their tokens); not the webhook.
    assert_eq!(
        writers,
        ["MapperFunction", "PollerFunction", "PosterFunction"]
    );
    // The documentation names the parameter and what it grants.
    let doc = read("docs/aws-runtime.md");
    assert!(doc.contains("RotatingSecretPrefix"), "docs/aws-runtime.md");
}

// ------------------------------------------------------------------------------- alarms

#[test]
fn one_alarm_per_dead_letter_queue_and_per_function() {
    let t = template();
    assert!(!t["Conditions"]["HasAlarmTopic"].is_null());
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let dimension = |a: &Value, name: &str| -> Option<Value> {
        a["Properties"]["Dimensions"]
            .as_sequence()?
            .iter()
            .find(|d| d["Name"].as_str() == Some(name))
            .map(|d| d["Value"].clone())
    };
    for &(_, _, dlq, _) in CONSUMERS {
        let n = alarms
            .iter()
            .filter(|(_, a)| {
                a["Properties"]["Namespace"].as_str() == Some("AWS/SQS")
                    && a["Properties"]["MetricName"].as_str()
                        == Some("ApproximateNumberOfMessagesVisible")
                    && dimension(a, "QueueName")
                        .and_then(|v| as_getatt(&v))
                        .is_some_and(|(r, attr)| r == dlq && attr == "QueueName")
            })
            .inspect(|(id, a)| {
                let p = &a["Properties"];
                assert_eq!(int(&p["Threshold"]), 0, "{id}");
                assert_eq!(s(&p["ComparisonOperator"]), "GreaterThanThreshold", "{id}");
            })
            .count();
        assert_eq!(n, 1, "{dlq}: one depth alarm");
    }
    for &(function, ..) in FUNCTIONS {
        let n = alarms
            .iter()
            .filter(|(_, a)| {
                a["Properties"]["Namespace"].as_str() == Some("AWS/Lambda")
                    && a["Properties"]["MetricName"].as_str() == Some("Errors")
                    && dimension(a, "FunctionName").and_then(|v| as_ref(&v).map(str::to_string))
                        == Some(function.to_string())
            })
            .inspect(|(id, a)| {
                let p = &a["Properties"];
                assert_eq!(int(&p["Threshold"]), 0, "{id}");
                assert_eq!(s(&p["ComparisonOperator"]), "GreaterThanThreshold", "{id}");
            })
            .count();
        assert_eq!(n, 1, "{function}: one Errors alarm");
    }
    // Every alarm notifies the topic when one is given, and nothing otherwise.
    for (id, a) in &alarms {
        let actions = &a["Properties"]["AlarmActions"];
        let (tag, args) = tagged(actions).unwrap_or_else(|| panic!("{id}: AlarmActions !If"));
        assert_eq!(tag, "If", "{id}");
        assert_eq!(args[0].as_str(), Some("HasAlarmTopic"), "{id}");
        assert_eq!(as_ref(&args[1][0]), Some("AlarmTopicArn"), "{id}");
        assert_eq!(as_ref(&args[2]), Some("AWS::NoValue"), "{id}");
    }
}

// ------------------------------------------------------------------------------- references

#[test]
fn every_reference_resolves_and_every_parameter_is_used() {
    let t = template();
    let mut refs = Vec::new();
    collect_refs(&t["Globals"], "Globals", &mut refs);
    collect_refs(&t["Resources"], "Resources", &mut refs);
    collect_refs(&t["Outputs"], "Outputs", &mut refs);
    collect_refs(&t["Conditions"], "Conditions", &mut refs);
    let params: BTreeSet<&str> = t["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .keys()
        .map(s)
        .collect();
    let known = |name: &str| {
        name.starts_with("AWS::")
            || params.contains(name)
            || t["Resources"].get(name).is_some()
            // SAM-generated: the function's role, the HTTP API's stage.
            || name.strip_suffix("Role").is_some_and(|f| t["Resources"].get(f).is_some())
    };
    for (name, at) in &refs {
        assert!(
            known(name),
            "{at}: {name} is neither a parameter nor a resource"
        );
    }
    let used: BTreeSet<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    for p in &params {
        assert!(used.contains(p), "parameter {p} is never used");
    }
    // Conditions named by !If exist.
    let conditions = t["Conditions"].as_mapping().expect("Conditions");
    fn ifs(v: &Value, out: &mut Vec<String>) {
        if let Some((tag, inner)) = tagged(v) {
            if tag == "If" {
                out.push(s(&inner[0]).to_string());
            }
            ifs(inner, out);
        }
        match v {
            Value::Sequence(seq) => seq.iter().for_each(|x| ifs(x, out)),
            Value::Mapping(m) => m.values().for_each(|x| ifs(x, out)),
            _ => {}
        }
    }
    let mut named = Vec::new();
    ifs(&t, &mut named);
    for c in named {
        assert!(
            conditions.contains_key(c.as_str()),
            "condition {c} is missing"
        );
    }
}

#[test]
fn parameters_have_the_documented_defaults() {
    let t = template();
    let p = &t["Parameters"];
    // Optional: the configuration secret holds the configuration; this is the fallback.
    assert_eq!(s(&p["ConnectorConfig"]["Default"]), "");
    assert_eq!(int(&p["ConnectorConfig"]["MinLength"]), 0);
    assert_eq!(p["ConnectorConfig"]["NoEcho"].as_bool(), Some(false));
    // Lambda's 4 KB budget for all variables together.
    assert!(int(&p["ConnectorConfig"]["MaxLength"]) <= 3400);
    assert_eq!(s(&p["SecretPrefix"]["Default"]), "ml-connector/");
    assert_eq!(s(&p["PollIntegration"]["Default"]), "*");
    assert_eq!(s(&p["RotatingSecretPrefix"]["Default"]), "rotating/");
    assert_eq!(s(&p["PollSchedule"]["Default"]), "rate(5 minutes)");
    assert_eq!(s(&p["AlarmTopicArn"]["Default"]), "");
    assert_eq!(int(&p["SecretTtlSeconds"]["Default"]), 300);
    assert_eq!(int(&p["WebhookThrottlingRateLimit"]["Default"]), 50);
    assert_eq!(int(&p["WebhookThrottlingBurstLimit"]["Default"]), 100);
}

#[test]
fn outputs_give_the_webhook_url_queue_urls_and_table_names() {
    let t = template();
    let outputs = t["Outputs"].as_mapping().expect("Outputs");
    let base = as_sub(&outputs["WebhookBaseUrl"]["Value"]).expect("webhook base URL");
    assert!(base.starts_with("https://${WebhookApi}.execute-api."));
    assert!(base.ends_with("/webhooks"));
    // The URL form of this version, and that the earlier one still works.
    let said = s(&outputs["WebhookBaseUrl"]["Description"]);
    assert!(
        said.contains("{WebhookBaseUrl}/<integration>/<channel>")
            && said.contains("{WebhookBaseUrl}/<channel>/<integration>"),
        "{said}"
    );
    // Per integration: the user puts the integration's name in place of {integration}; the
    // channel is the flow's.
    for (output, channel) in [("CoupaWebhookUrl", "coupa"), ("BcNotificationUrl", "bc")] {
        let url = as_sub(&outputs[output]["Value"]).expect("a webhook URL");
        assert_eq!(url, format!("{base}/{{integration}}/{channel}"), "{output}");
        let routes = webhook_routes(&t);
        let example = url
            .trim_start_matches(base)
            .replace("{integration}", SAMPLE_INTEGRATION);
        assert!(
            routed(&routes, "POST", &format!("/webhooks{example}")),
            "{output}: {example}"
        );
        let said = s(&outputs[output]["Description"]);
        assert!(
            said.contains(&format!("/webhooks/{channel}/{{integration}} still works")),
            "{output}: {said}"
        );
    }
    let mut queue_urls = BTreeSet::new();
    let mut tables = BTreeSet::new();
    for (_, o) in outputs {
        if let Some((r, attr)) = as_getatt(&o["Value"])
            && attr == "QueueUrl"
        {
            queue_urls.insert(r);
        }
        if let Some(r) = as_ref(&o["Value"]) {
            tables.insert(r.to_string());
        }
    }
    for (id, _) in resources_of_type(&t, "AWS::SQS::Queue") {
        assert!(queue_urls.contains(id), "no output for {id}");
    }
    for spec in TABLES {
        assert!(
            tables.contains(spec.logical_id),
            "no output for {}",
            spec.logical_id
        );
    }
}

#[test]
fn samconfig_points_at_the_template_and_deploys_with_iam() {
    let cfg: toml::Table = toml::from_str(&read("samconfig.toml")).expect("samconfig.toml");
    assert_eq!(cfg["version"].as_float(), Some(0.1));
    let d = &cfg["default"];
    assert_eq!(
        d["build"]["parameters"]["template_file"].as_str(),
        Some("infra/template.yaml")
    );
    assert!(root().join("infra/template.yaml").exists());
    assert_eq!(
        d["build"]["parameters"]["beta_features"].as_bool(),
        Some(true)
    );
    assert_eq!(d["validate"]["parameters"]["lint"].as_bool(), Some(true));
    let deploy = &d["deploy"]["parameters"];
    assert_eq!(deploy["capabilities"].as_str(), Some("CAPABILITY_IAM"));
    assert_eq!(deploy["confirm_changeset"].as_bool(), Some(true));
    assert_eq!(deploy["resolve_s3"].as_bool(), Some(true));
    assert_eq!(deploy["stack_name"].as_str(), Some("ml-connector"));
    assert!(
        deploy.get("region").is_none(),
        "the region comes from the user's profile"
    );
}

// ------------------------------------------------------------------------------- events

/// A Coupa call-out sample on `/webhooks/<first>/<second>`: an HTTP API v2 event of the
/// template's POST route, with that route's path parameters. Returns its body.
fn check_webhook_shape(e: &Json, t: &Value, (first, second): (&str, &str)) -> String {
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], format!("POST {WEBHOOK_ROUTE_PATH}"));
    assert!(webhook_routes(t).contains(&("POST".into(), WEBHOOK_ROUTE_PATH.into())));
    assert_eq!(e["requestContext"]["routeKey"], e["routeKey"]);
    assert_eq!(e["requestContext"]["http"]["method"], "POST");
    assert_eq!(e["requestContext"]["http"]["path"], e["rawPath"]);
    assert_eq!(e["isBase64Encoded"], false);
    assert_eq!(
        e["pathParameters"],
        serde_json::json!({"first": first, "second": second})
    );
    assert_eq!(e["rawPath"], format!("/webhooks/{first}/{second}"));
    // HTTP API v2 lower-cases header names.
    let headers = e["headers"].as_object().expect("headers");
    assert!(headers.keys().all(|k| *k == k.to_lowercase()));
    let body = e["body"].as_str().expect("body is a string").to_string();
    assert_eq!(headers["content-length"], body.len().to_string());
    let invoice: Json = serde_json::from_str(&body).expect("body is JSON");
    assert_eq!(invoice["id"], 92010);
    assert_eq!(invoice["status"], "approved");
    assert!(invoice["updated-at"].is_string());
    assert!(
        invoice["invoice-lines"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    body
}

fn signature_of(e: &Json) -> String {
    let sig = e["headers"]["x-coupa-signature"]
        .as_str()
        .expect("x-coupa-signature");
    sig.strip_prefix("sha256=")
        .expect("sha256= prefix")
        .to_string()
}

#[test]
fn the_webhook_sample_is_signed_with_the_sample_secret() {
    let t = template();
    let e = event("webhook-coupa.json");
    // The URL of earlier versions, that Coupa instances are set up with.
    let body = check_webhook_shape(&e, &t, ("coupa", SAMPLE_INTEGRATION));
    assert_eq!(
        signature_of(&e),
        hmac_hex(SAMPLE_WEBHOOK_SECRET, body.as_bytes())
    );
}

#[test]
fn the_new_route_sample_is_the_same_call_out_on_integration_then_channel() {
    let t = template();
    let old = event("webhook-coupa.json");
    let mut new = event("webhook-coupa-new-route.json");
    let body = check_webhook_shape(&new, &t, (SAMPLE_INTEGRATION, "coupa"));
    assert_eq!(
        signature_of(&new),
        hmac_hex(SAMPLE_WEBHOOK_SECRET, body.as_bytes())
    );
    // Nothing else differs (API Gateway's request id aside).
    for key in ["rawPath", "pathParameters"] {
        new[key] = old[key].clone();
    }
    new["requestContext"]["http"]["path"] = old["requestContext"]["http"]["path"].clone();
    new["requestContext"]["requestId"] = old["requestContext"]["requestId"].clone();
    assert_eq!(new, old);
}

#[test]
fn the_bad_signature_sample_differs_only_in_its_signature() {
    let t = template();
    let good = event("webhook-coupa.json");
    let mut bad = event("webhook-coupa-bad-signature.json");
    let body = check_webhook_shape(&bad, &t, ("coupa", SAMPLE_INTEGRATION));
    let sig = signature_of(&bad);
    assert_eq!(sig.len(), 64, "well-formed hex");
    assert_ne!(sig, hmac_hex(SAMPLE_WEBHOOK_SECRET, body.as_bytes()));
    bad["headers"]["x-coupa-signature"] = good["headers"]["x-coupa-signature"].clone();
    assert_eq!(bad, good);
}

fn check_sqs_batch(file: &str, t: &Value, queue: &str, n: usize) -> Vec<Json> {
    let e = event(file);
    let records = e["Records"].as_array().expect("Records");
    assert_eq!(records.len(), n, "{file}");
    let arn_suffix = format!(":{}", queue_name(t, queue, &stack_name()));
    let mut last_seq: Option<u128> = None;
    let mut bodies = Vec::new();
    for r in records {
        assert_eq!(r["eventSource"], "aws:sqs");
        let arn = r["eventSourceARN"].as_str().expect("eventSourceARN");
        assert!(arn.starts_with("arn:aws:sqs:"), "{arn}");
        assert!(arn.ends_with(&arn_suffix), "{file}: {arn} is not {queue}");
        assert!(r["messageId"].is_string() && r["receiptHandle"].is_string());
        assert!(r["md5OfBody"].as_str().is_some_and(|m| m.len() == 32));
        let a = &r["attributes"];
        for key in [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "ApproximateFirstReceiveTimestamp",
        ] {
            assert!(a[key].is_string(), "{file}: attribute {key}");
        }
        let receives: u32 = a["ApproximateReceiveCount"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(receives >= 1);
        let seq: u128 = a["SequenceNumber"].as_str().unwrap().parse().unwrap();
        assert!(
            last_seq.is_none_or(|l| l < seq),
            "{file}: sequence numbers rise"
        );
        last_seq = Some(seq);
        for id in ["MessageGroupId", "MessageDeduplicationId"] {
            let v = a[id].as_str().unwrap();
            assert!(v.len() <= 128 && !v.contains(':'), "{file}: {id} {v}");
        }
        let body: Json =
            serde_json::from_str(r["body"].as_str().expect("body")).expect("JSON body");
        let source_id = body["source_id"]
            .as_str()
            .or(body["invoice"]["source_id"].as_str())
            .expect("source_id");
        assert_eq!(
            a["MessageGroupId"].as_str().unwrap(),
            dedup_id(&[body["integration"].as_str().unwrap(), "invoice", source_id]),
            "{file}: one message group per document"
        );
        bodies.push(body);
    }
    bodies
}

#[test]
fn the_ingest_batch_carries_ingest_messages() {
    let t = template();
    let e = event("sqs-ingest-batch.json");
    let bodies = check_sqs_batch("sqs-ingest-batch.json", &t, "IngestQueue", 3);
    for (body, record) in bodies.iter().zip(e["Records"].as_array().unwrap()) {
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["integration", "kind", "source_id", "version", "via"])
        );
        assert_eq!(body["integration"], "coupa-bc");
        assert_eq!(body["kind"], "invoice");
        assert!(["webhook", "poll", "retry", "replay"].contains(&body["via"].as_str().unwrap()));
        let version = body["version"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(version).expect("RFC 3339 version");
        assert_eq!(
            record["attributes"]["MessageDeduplicationId"]
                .as_str()
                .unwrap(),
            dedup_id(&[
                "coupa-bc",
                "invoice",
                body["source_id"].as_str().unwrap(),
                version,
                ""
            ])
        );
    }
}

#[test]
fn the_post_batch_carries_resolved_invoices() {
    let t = template();
    let e = event("sqs-post-batch.json");
    let bodies = check_sqs_batch("sqs-post-batch.json", &t, "PostQueue", 2);
    let decimal = |v: &Json| {
        let x = v.as_str().expect("decimals are strings");
        assert!(
            !x.is_empty()
                && x.chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '-'),
            "{x}"
        );
        x.parse::<f64>().unwrap()
    };
    for (body, record) in bodies.iter().zip(e["Records"].as_array().unwrap()) {
        assert_eq!(body["integration"], "coupa-bc");
        let inv = &body["invoice"];
        let keys: BTreeSet<&str> = inv
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "source_id",
                "version",
                "kind",
                "vendor_number",
                "vendor_invoice_number",
                "supplier_name",
                "invoice_date",
                "total",
                "lines"
            ])
        );
        assert_eq!(inv["kind"], "invoice");
        let version = chrono::DateTime::parse_from_rfc3339(inv["version"].as_str().unwrap())
            .expect("RFC 3339 version");
        chrono::NaiveDate::parse_from_str(inv["invoice_date"].as_str().unwrap(), "%Y-%m-%d")
            .expect("invoice_date");
        let total = decimal(&inv["total"]["amount"]);
        assert_eq!(inv["total"]["currency"].as_str().map(str::len), Some(3));
        let mut sum = 0.0;
        for line in inv["lines"].as_array().expect("lines") {
            let keys: BTreeSet<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "description",
                    "gl_account",
                    "quantity",
                    "unit_cost",
                    "dimensions"
                ])
            );
            sum += decimal(&line["quantity"]) * decimal(&line["unit_cost"]);
            for d in line["dimensions"].as_array().expect("dimensions") {
                let pair = d.as_array().expect("[code, value]");
                assert_eq!(pair.len(), 2);
                assert!(pair.iter().all(Json::is_string));
            }
        }
        assert!((sum - total).abs() < 0.005, "lines add up to the total");
        assert_eq!(
            record["attributes"]["MessageDeduplicationId"]
                .as_str()
                .unwrap(),
            dedup_id(&[
                "coupa-bc",
                "post",
                inv["source_id"].as_str().unwrap(),
                &version.timestamp().to_string()
            ])
        );
    }
}

/// A BC sample: an HTTP API v2 event whose route key is one of the template's routes, with
/// that route's method and exactly its path parameters.
fn check_bc_shape(e: &Json, t: &Value, method: &str) {
    let routes = webhook_routes(t);
    assert_eq!(e["version"], "2.0");
    let route_key = e["routeKey"].as_str().expect("routeKey");
    assert_eq!(e["requestContext"]["routeKey"], route_key);
    let (m, path) = route_key.split_once(' ').expect("METHOD PATH");
    assert_eq!(m, method);
    assert!(
        routes.contains(&(m.to_string(), path.to_string())),
        "{route_key} is not a template route: {routes:?}"
    );
    assert_eq!(e["requestContext"]["http"]["method"], method);
    assert_eq!(e["requestContext"]["http"]["path"], e["rawPath"]);
    // The URL of a subscription made by an earlier version.
    let integration = SAMPLE_INTEGRATION;
    assert_eq!(e["rawPath"], format!("/webhooks/bc/{integration}"));
    // The path parameters are exactly the route's variables, one per segment.
    let params = e["pathParameters"].as_object().expect("pathParameters");
    let vars: BTreeSet<&str> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    assert_eq!(
        params.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        vars
    );
    assert_eq!(
        e["pathParameters"],
        serde_json::json!({"first": "bc", "second": integration})
    );
    let headers = e["headers"].as_object().expect("headers");
    assert!(headers.keys().all(|k| *k == k.to_lowercase()));
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn the_bc_notification_sample_is_a_thin_batch_with_the_sample_client_state() {
    let t = template();
    let e = event("webhook-bc-notification.json");
    check_bc_shape(&e, &t, "POST");
    let body = e["body"].as_str().expect("body");
    assert_eq!(e["headers"]["content-length"], body.len().to_string());
    let batch: Json = serde_json::from_str(body).expect("body is JSON");
    let value = batch["value"].as_array().expect("value");
    assert!(!value.is_empty());
    for n in value {
        assert_eq!(n["clientState"], SAMPLE_BC_CLIENT_STATE);
        assert!(
            ["created", "updated", "deleted", "collection"].contains(&s_json(&n["changeType"]))
        );
        assert!(s_json(&n["resource"]).contains("/purchaseInvoices"));
        assert!(n["subscriptionId"].is_string());
    }
    assert!(SAMPLE_BC_CLIENT_STATE.len() <= 50, "BC's strictest limit");
}

#[test]
fn the_bc_handshake_sample_is_a_get_with_a_validation_token_and_no_body() {
    let t = template();
    let e = event("webhook-bc-handshake.json");
    check_bc_shape(&e, &t, "GET");
    let token = e["queryStringParameters"]["validationToken"]
        .as_str()
        .expect("validationToken");
    assert!(!token.is_empty());
    assert_eq!(e["rawQueryString"], format!("validationToken={token}"));
    assert!(e.get("body").is_none_or(Json::is_null));
}

#[test]
fn every_sample_event_is_checked_here_and_listed_in_the_readme() {
    let src = read("infra/tests/template.rs");
    let readme = read("events/README.md");
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("events")).expect("events/") {
        let name = entry.expect("dir entry").file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".json") {
            continue;
        }
        n += 1;
        assert!(
            src.contains(&format!("event(\"{name}\")")),
            "events/{name} is checked by no test of infra/tests/template.rs"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "events/{name} is not in events/README.md"
        );
    }
    assert!(n > 0, "no sample events");
}

fn s_json(v: &Json) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

#[test]
fn the_schedule_samples_are_the_poll_inputs() {
    let e = event("schedule-poll.json");
    assert_eq!(e, serde_json::json!({"integrations": "*", "task": "poll"}));
    // One integration, by name: the input of a stack deployed before, or of a hand invocation.
    let one = event("schedule-poll-one.json");
    assert_eq!(one, serde_json::json!({"integration": SAMPLE_INTEGRATION}));
}

// ------------------------------------------------------------------------------- parameters file

#[test]
fn the_example_parameters_fit_the_template_and_lambdas_environment_budget() {
    let t = template();
    let file: Value = serde_yaml_ng::from_str(&read("infra/parameters.example.yaml"))
        .expect("infra/parameters.example.yaml");
    let params = t["Parameters"].as_mapping().expect("Parameters");
    let given = file.as_mapping().expect("a mapping");
    for (k, _) in given {
        assert!(params.contains_key(k), "{k:?} is not a template parameter");
    }
    for (k, p) in params {
        assert!(
            !p["Default"].is_null() || given.contains_key(k),
            "{k:?} has no default and no value"
        );
    }
    assert!(
        !given.contains_key("ConnectorConfig"),
        "the example uploads its configuration (infra/config.example.toml)"
    );

    // The configuration goes to the configuration secret: TOML, within Secrets Manager's
    // 64 KiB (mlc-aws-local refuses more), naming the samples' integration.
    let config = read("infra/config.example.toml");
    let parsed: toml::Table = toml::from_str(&config).expect("config.example.toml is TOML");
    assert!(parsed.contains_key("systems") && parsed.contains_key("integrations"));
    assert!(
        !parsed.contains_key("runtime"),
        "[runtime] is the embedded runtime's"
    );
    assert!(config.len() <= 65_536);
    let names: Vec<&str> = parsed["integrations"]
        .as_array()
        .expect("[[integrations]]")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&SAMPLE_INTEGRATION), "{names:?}");

    // Lambda: 4 KB for all variables of a function (names + values). Size the others for a
    // long stack name in the longest region name, and ConnectorConfig (the fallback of older
    // stacks) at its maximum.
    let stack = "x".repeat(40);
    let queue_url = |suffix: &str| {
        format!("https://sqs.ap-southeast-5.amazonaws.com/123456789012/{stack}-{suffix}")
    };
    let max_config = int(&t["Parameters"]["ConnectorConfig"]["MaxLength"]) as usize;
    let secret_prefix_len = 40;
    let config_secret_arn = format!(
        "arn:aws-us-gov:secretsmanager:ap-southeast-5:123456789012:secret:{}mlc-config-AbCdEf",
        "x".repeat(secret_prefix_len)
    );
    let mut total = 0;
    for &(var, target, _) in ENVIRONMENT {
        let value_len = match target {
            "ConnectorConfig" => max_config,
            "ConfigSecret" => config_secret_arn.len(),
            "IngestQueue" => queue_url("ingest.fifo").len(),
            "PostQueue" => queue_url("post.fifo").len(),
            "IngestDeadLetterQueue" => queue_url("ingest-dlq.fifo").len(),
            "PostDeadLetterQueue" => queue_url("post-dlq.fifo").len(),
            "SecretPrefix" => secret_prefix_len,
            _ => stack.len() + 12,
        };
        total += var.len() + value_len;
    }
    total += "RUST_LOG".len() + "info".len();
    assert!(
        total <= 4096,
        "environment of {total} bytes exceeds Lambda's 4 KB"
    );
}

#[test]
fn concur_events_can_arrive_over_a_mutual_tls_custom_domain_mapped_to_the_webhook_api() {
    let t = template();
    let domain = resource(&t, "WebhookMtlsDomain");
    assert_eq!(
        type_of(&t, "WebhookMtlsDomain"),
        "AWS::ApiGatewayV2::DomainName"
    );
    assert_eq!(s(&domain["Condition"]), "HasMtlsDomain");
    let p = &domain["Properties"];
    assert_eq!(as_ref(&p["DomainName"]), Some("MtlsDomainName"));
    assert_eq!(
        as_ref(&p["MutualTlsAuthentication"]["TruststoreUri"]),
        Some("MtlsTruststoreUri")
    );
    let conf = &p["DomainNameConfigurations"][0];
    assert_eq!(as_ref(&conf["CertificateArn"]), Some("MtlsCertificateArn"));
    assert_eq!(s(&conf["SecurityPolicy"]), "TLS_1_2");
    let mapping = resource(&t, "WebhookMtlsMapping");
    assert_eq!(s(&mapping["Condition"]), "HasMtlsDomain");
    assert_eq!(as_ref(&mapping["Properties"]["ApiId"]), Some("WebhookApi"));
    assert_eq!(
        as_ref(&mapping["Properties"]["DomainName"]),
        Some("WebhookMtlsDomain")
    );
    // Off unless a domain is given: every parameter defaults to empty, and is grouped.
    let groups = t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        .as_sequence()
        .expect("ParameterGroups");
    let grouped: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g["Parameters"].as_sequence().expect("Parameters").iter())
        .map(s)
        .collect();
    for name in [
        "MtlsDomainName",
        "MtlsCertificateArn",
        "MtlsTruststoreUri",
        "MtlsTruststoreVersion",
    ] {
        assert_eq!(s(&t["Parameters"][name]["Default"]), "", "{name}");
        assert!(grouped.contains(name), "{name} is in no parameter group");
    }
}
