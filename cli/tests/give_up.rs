//! `mlc replay --give-up` as an operator runs it on Basware → BC in park mode: the real binary,
//! a real SQLite file, the simulators over HTTP.

mod common;

use common::{mlc, text};

use mlc_sandbox::basware::{BASWARE_SCOPE, BaswareConfig, BaswareSim, NewCodingRow, NewDocument};
use mlc_sandbox::bc::{BcConfig, BcSim};

struct Deployment {
    dir: tempfile::TempDir,
    basware: BaswareSim,
    _bc: BcSim,
}

impl Deployment {
    fn mlc(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["-c", "mlc.toml"]);
        mlc(self.dir.path(), &all, None)
    }
}

async fn deployment() -> Deployment {
    let basware = BaswareSim::start(BaswareConfig::default()).await.unwrap();
    let bc = BcSim::start(BcConfig {
        rate_limit: None,
        ..BcConfig::default()
    })
    .await
    .unwrap();
    bc.add_vendor("V10000", "Fabrikam, Inc.");
    bc.add_account("6100", "Office Supplies");
    let bcc = bc.config();
    let scopes: Vec<String> = BASWARE_SCOPE
        .split_whitespace()
        .map(|s| format!("\"{s}\""))
        .collect();
    let toml = format!(
        r#"[runtime]
database = "mlc.sqlite"
secrets_file = "mlc.secrets"
retry_base_delay_ms = 20

[systems.basware]
type = "basware"
base_url = "{bw}"
token_url = "{bw_token}"
client_id = "{bw_client}"
client_secret = "basware-client-secret"
scopes = [{scopes}]
requests_per_second = 1000
failure_response = "park"

[systems.business_central]
type = "business_central"
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-client-secret"

[[integrations]]
name = "basware-bc"
kind = "basware_to_business_central"
start_from = "2000-01-01T00:00:00Z"

[integrations.mapping]
gl_account = {{ segment = 1, translate = true }}

[integrations.mapping.gl_accounts]
"4000" = "6100"
"#,
        bw = basware.base_url(),
        bw_token = basware.token_url(),
        bw_client = basware.config().client_id,
        scopes = scopes.join(", "),
        bc_url = bc.base_url(),
        tenant = bcc.tenant,
        env = bcc.environment,
        company = bc.company_id(),
        bc_client = bcc.client_id,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mlc.toml"), toml).unwrap();
    for (name, value) in [
        (
            "basware-client-secret",
            basware.config().client_secret.clone(),
        ),
        ("bc-client-secret", bc.config().client_secret.clone()),
    ] {
        let o = mlc(
            dir.path(),
            &["secrets", "set", name, "-c", "mlc.toml"],
            Some(&value),
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    Deployment {
        dir,
        basware,
        _bc: bc,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_gives_up_on_a_parked_basware_document_once_and_basware_gets_the_reason() {
    let d = deployment().await;
    let id = d.basware.add_document(
        NewDocument::invoice("BW-GU-1", "V10000").coding_row(NewCodingRow::new("9999", "10")),
    );
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        d.basware
            .document(&id)
            .unwrap()
            .transfer_responses
            .is_empty()
    );

    let o = d.mlc(&[
        "replay",
        "--give-up",
        "BW-GU-1",
        "--reason",
        "re-code it",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        d.basware
            .document(&id)
            .unwrap()
            .transfer_responses
            .is_empty(),
        "dry run"
    );

    let o = d.mlc(&["replay", "--give-up", "BW-GU-1", "--reason", "re-code it"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("source answered") && out.contains("closed"),
        "{out}"
    );
    let doc = d.basware.document(&id).unwrap();
    assert_eq!(doc.processing_status, "TransferFailed");
    assert_eq!(doc.transfer_responses.len(), 1);
    assert!(
        doc.transfer_responses[0]["responseMessage"]
            .as_str()
            .unwrap()
            .contains("re-code it")
    );

    // Again: nothing is parked under that number any more; nothing is sent.
    let o = d.mlc(&["replay", "--give-up", "BW-GU-1", "--reason", "re-code it"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("nothing to give up"), "{}", text(&o));
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.basware.document(&id).unwrap().transfer_responses.len(), 1);

    // The document stands closed, with why; the operator's action is its own event.
    let o = d.mlc(&["audit", "--status", "discarded", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let now: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(now.as_array().unwrap().len(), 1, "{now}");
    let o = d.mlc(&["audit", "--history", "--status", "discarded", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["error"].as_str().unwrap().contains("re-code it"),
        "{rows:?}"
    );
}
