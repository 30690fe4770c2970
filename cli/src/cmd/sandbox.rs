use std::net::SocketAddr;
use std::process::ExitCode;

use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::demo;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:18080")]
    coupa: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:18081")]
    bc: SocketAddr,
    /// Approved invoices to seed.
    #[arg(long, default_value_t = 30)]
    invoices: usize,
}

/// A configuration for `mlc run` against the simulators (the secrets it names hold the
/// simulators' credentials, printed by `mlc sandbox`).
pub fn config_toml(coupa: &CoupaSim, bc: &BcSim, database: &str, secrets_file: &str) -> String {
    let bc_cfg = bc.config();
    format!(
        r#"[runtime]
database = "{database}"
secrets_file = "{secrets_file}"
workers = 4
max_receives = 5
visibility_timeout_secs = 60

[systems.coupa]
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-client-secret"
api_version = "R40"
webhook_secret = "coupa-webhook-secret"

[systems.business_central]
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-client-secret"

[[integrations]]
name = "coupa-bc"
kind = "coupa_to_business_central"
start_from = "2000-01-01T00:00:00Z"

[integrations.mapping]
gl_account = {{ segment = 1 }}
dimensions = [{{ segment = 2, dimension = "DEPARTMENT" }}, {{ segment = 3, dimension = "PROJECT" }}]

[integrations.mapping.suppliers]
"SUP-001" = "V10000"
"SUP-002" = "V20000"
"SUP-003" = "V30000"
"SUP-004" = "V40000"
"#,
        coupa_url = coupa.base_url(),
        coupa_client = coupa.config().client_id,
        bc_url = bc.base_url(),
        tenant = bc_cfg.tenant,
        env = bc_cfg.environment,
        company = bc.company_id(),
        bc_client = bc_cfg.client_id,
    )
}

/// Stores the simulators' credentials under the secret names [`config_toml`] uses.
pub fn store_secrets(
    secrets: &mlc_shared::adapters::embedded::SecretFile,
    coupa: &CoupaSim,
    bc: &BcSim,
) -> Result<(), mlc_shared::ports::SecretError> {
    secrets.set("coupa-client-secret", &coupa.config().client_secret)?;
    secrets.set("bc-client-secret", &bc.config().client_secret)?;
    secrets.set("coupa-webhook-secret", &coupa.config().webhook_secret)
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let coupa = CoupaSim::start_on(CoupaConfig::default(), a.coupa).await?;
    let bc = BcSim::start_on(BcConfig::default(), a.bc).await?;
    demo::seed_bc(&bc);
    demo::seed_coupa(&coupa, a.invoices, 7);
    let cc = coupa.config();
    let bcc = bc.config();
    println!("Coupa simulator:            {}", coupa.base_url());
    println!(
        "  token URL:                {}/oauth2/token",
        coupa.base_url()
    );
    println!(
        "  client id / secret:       {} / {}",
        cc.client_id, cc.client_secret
    );
    println!("  webhook HMAC secret:      {}", cc.webhook_secret);
    println!("Business Central simulator: {}", bc.base_url());
    println!(
        "  API root:                 {}/v2.0/{}/{}/api/v2.0",
        bc.base_url(),
        bcc.tenant,
        bcc.environment
    );
    println!(
        "  token URL:                {}/{}/oauth2/v2.0/token",
        bc.base_url(),
        bcc.tenant
    );
    println!(
        "  client id / secret:       {} / {}",
        bcc.client_id, bcc.client_secret
    );
    println!("  company id:               {}", bc.company_id());
    println!(
        "Inspection: GET {}/_sandbox/invoices, GET {}/_sandbox/requests",
        bc.base_url(),
        coupa.base_url()
    );
    println!(
        "\nA configuration for these (save as mlc.toml, then `mlc secrets set` each secret it names):\n"
    );
    println!("{}", config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets"));
    println!("(These are simulator credentials, printed on purpose; real ones are never printed.)");
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
