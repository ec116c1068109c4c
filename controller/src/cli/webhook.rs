//! `tollgate webhook configure`: the webhook's self-signed certificate in a Secret and both
//! webhook configurations pointing at the controller with that CA. Idempotent: a second
//! run changes nothing unless `--rotate` or the certificate is near expiry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};

use super::CliError;
use crate::admission::certs::{self, ServingCert};
use crate::admission::{Registration, WebhookTarget};

/// Field manager of everything this command writes.
pub const FIELD_MANAGER: &str = "tollgate-webhook-configure";
const DAY: Duration = Duration::from_secs(86_400);

/// `tollgate webhook …`
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WebhookCommand {
    /// Create or rotate the webhook's self-signed certificate (Secret) and register both
    /// webhook configurations with its CA.
    Configure(ConfigureArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["service", "url"])))]
struct ConfigureArgs {
    /// Kubeconfig to use (default: in-cluster config, else $KUBECONFIG / ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the Secret (and of --service).
    #[arg(long, default_value = "tollgate-system")]
    namespace: String,
    /// In cluster: the Service in front of the controller's webhook port.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Port of --service.
    #[arg(long, default_value_t = 443)]
    port: i32,
    /// Out of cluster: the base URL the apiserver calls, e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The `kubernetes.io/tls` Secret holding tls.crt, tls.key and ca.crt.
    #[arg(long, default_value = "tollgate-webhook-tls")]
    secret: String,
    /// Name of both webhook configurations.
    #[arg(long, default_value = "tollgate")]
    name: String,
    /// Send only namespaces with this label to the webhook (KEY=VALUE; repeat for several).
    #[arg(long = "namespace-selector", value_name = "KEY=VALUE", value_parser = parse_label)]
    namespace_selector: Vec<(String, String)>,
    /// Issue a new CA and certificate even when the current one is still good.
    #[arg(long)]
    rotate: bool,
    /// Validity of a newly issued certificate, in days.
    #[arg(long, default_value_t = 365)]
    validity_days: u64,
    /// Renew when the certificate expires within this many days.
    #[arg(long, default_value_t = 30)]
    renew_before_days: u64,
    /// Also write tls.crt, tls.key and ca.crt into this folder (a controller out of the
    /// cluster serves them; it re-reads them when they change).
    #[arg(long, value_name = "DIR")]
    write_files: Option<PathBuf>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

/// Runs `tollgate webhook …`.
pub async fn run(args: &WebhookArgs) -> Result<ExitCode, CliError> {
    match &args.command {
        WebhookCommand::Configure(args) => configure(args).await,
    }
}

fn kube_err(what: &str) -> impl Fn(kube::Error) -> CliError + '_ {
    move |e| CliError::Kube(format!("{what}: {e}"))
}

async fn configure(args: &ConfigureArgs) -> Result<ExitCode, CliError> {
    let client = super::controller::client(args.kubeconfig.as_ref()).await?;
    let target = match (&args.service, &args.url) {
        (Some(service), _) => WebhookTarget::Service {
            namespace: args.namespace.clone(),
            name: service.clone(),
            port: args.port,
        },
        (None, Some(url)) => WebhookTarget::Url(url.clone()),
        (None, None) => return Err(CliError::Kube("give --service or --url".to_owned())),
    };
    let names = target.certificate_names();
    let now = SystemTime::now();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let stored = secrets
        .get_opt(&args.secret)
        .await
        .map_err(kube_err("cannot read the webhook Secret"))?
        .and_then(|secret| stored_cert(&secret));
    let why = match (&stored, args.rotate) {
        (None, _) => Some("no certificate yet".to_owned()),
        (Some(_), true) => Some("--rotate".to_owned()),
        (Some(current), false) => certs::needs_renewal(
            current,
            &names,
            now,
            Duration::from_secs(args.renew_before_days.saturating_mul(DAY.as_secs())),
        ),
    };
    let cert = match (&why, &stored) {
        (None, Some(current)) => {
            outln!("certificate: kept (still good for {})", names.join(", "))?;
            current.clone()
        }
        _ => {
            let reason = why.unwrap_or_default();
            let issued = certs::issue(
                &names,
                Duration::from_secs(args.validity_days.saturating_mul(DAY.as_secs())),
                stored.as_ref().map(|c| c.ca_pem.as_str()),
                now,
            )
            .map_err(|e| CliError::Kube(e.to_string()))?;
            outln!(
                "certificate: issued ({reason}) for {}, valid {} days",
                names.join(", "),
                args.validity_days
            )?;
            issued
        }
    };

    // Configurations first: their bundle trusts the new CA and the previous one, so the
    // controller is trusted before and after it picks up the new certificate.
    let registration = Registration {
        name: args.name.clone(),
        namespace_selector: (!args.namespace_selector.is_empty()).then(|| LabelSelector {
            match_labels: Some(args.namespace_selector.iter().cloned().collect()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (mutating, validating) = registration.configurations_for(&target, cert.ca_pem.as_bytes());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mutating_api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating_api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let before = mutating_api
        .get_opt(&args.name)
        .await
        .map_err(kube_err("cannot read the MutatingWebhookConfiguration"))?
        .and_then(|o| o.metadata.resource_version);
    let after = mutating_api
        .patch(
            &args.name,
            &params,
            &Patch::Apply(&typed(mutating, "MutatingWebhookConfiguration")),
        )
        .await
        .map_err(kube_err("cannot apply the MutatingWebhookConfiguration"))?
        .metadata
        .resource_version;
    report("MutatingWebhookConfiguration", &args.name, before, after)?;
    let before = validating_api
        .get_opt(&args.name)
        .await
        .map_err(kube_err("cannot read the ValidatingWebhookConfiguration"))?
        .and_then(|o| o.metadata.resource_version);
    let after = validating_api
        .patch(
            &args.name,
            &params,
            &Patch::Apply(&typed(validating, "ValidatingWebhookConfiguration")),
        )
        .await
        .map_err(kube_err("cannot apply the ValidatingWebhookConfiguration"))?
        .metadata
        .resource_version;
    report("ValidatingWebhookConfiguration", &args.name, before, after)?;

    let before = secrets
        .get_opt(&args.secret)
        .await
        .map_err(kube_err("cannot read the webhook Secret"))?
        .and_then(|o| o.metadata.resource_version);
    let after = secrets
        .patch(
            &args.secret,
            &params,
            &Patch::Apply(&secret(&args.secret, &args.namespace, &cert)),
        )
        .await
        .map_err(kube_err("cannot apply the webhook Secret"))?
        .metadata
        .resource_version;
    report(
        "Secret",
        &format!("{}/{}", args.namespace, args.secret),
        before,
        after,
    )?;

    if let Some(dir) = &args.write_files {
        write_files(dir, &cert)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn typed<T: serde::Serialize>(object: T, kind: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".to_owned(),
            "admissionregistration.k8s.io/v1".into(),
        );
        map.insert("kind".to_owned(), kind.into());
    }
    value
}

fn report(
    kind: &str,
    name: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), CliError> {
    let what = match (before, after) {
        (None, _) => "created",
        (Some(b), Some(a)) if b == a => "unchanged",
        _ => "updated",
    };
    outln!("{kind} {name}: {what}")
}

fn stored_cert(secret: &Secret) -> Option<ServingCert> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(ServingCert {
        ca_pem: text("ca.crt")?,
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

fn secret(name: &str, namespace: &str, cert: &ServingCert) -> serde_json::Value {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "tollgate".to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (
                "ca.crt".to_owned(),
                ByteString(cert.ca_pem.clone().into_bytes()),
            ),
            (
                "tls.crt".to_owned(),
                ByteString(cert.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(cert.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    let mut value = serde_json::to_value(secret).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".to_owned(), "v1".into());
        map.insert("kind".to_owned(), "Secret".into());
    }
    value
}

/// Writes the files that differ, each aside and renamed (a reader never sees half a file);
/// the key first, so a reader that sees a new certificate finds its key.
fn write_files(dir: &Path, cert: &ServingCert) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for (file, content) in [
        ("tls.key", &cert.key_pem),
        ("tls.crt", &cert.cert_pem),
        ("ca.crt", &cert.ca_pem),
    ] {
        let path = dir.join(file);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(content.as_str()) {
            continue;
        }
        let tmp = dir.join(format!(".{file}.tmp"));
        let io = |source| CliError::Io {
            path: path.clone(),
            source,
        };
        write_private(&tmp, content.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        outln!("wrote {}", path.display())?;
    }
    Ok(())
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content)
}
