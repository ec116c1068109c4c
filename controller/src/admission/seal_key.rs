//! Where the decision seal key lives: a Secret in the controller's namespace that only the
//! controller (and cluster admins) can read. The controller and its webhook load it at
//! start; the first to start creates it.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::Error;
use crate::seal::SealKey;

/// Default `namespace/name` of the key Secret.
pub const DEFAULT_SEAL_KEY_SECRET: &str = "tollgate-system/tollgate-decision-key";
/// Data key holding the key bytes.
const KEY_FIELD: &str = "key";
/// `type` of the key Secret.
const SECRET_TYPE: &str = "tollgate.dev/decision-key";

/// Loads the seal key from the Secret `namespace/name`, creating it with a random key when
/// it does not exist yet (two processes starting at once end with the same key).
pub async fn load_or_create(client: &Client, secret: &str) -> Result<SealKey, Error> {
    let fail = |message: String| Error::SealKey {
        secret: secret.to_owned(),
        message,
    };
    let (namespace, name) = secret
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty())
        .ok_or_else(|| fail("expected NAMESPACE/NAME".into()))?;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let existing = match api.get_opt(name).await.map_err(|e| fail(e.to_string()))? {
        Some(found) => found,
        None => {
            let key = SealKey::generate().map_err(|e| fail(e.to_string()))?;
            let new = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                type_: Some(SECRET_TYPE.to_owned()),
                data: Some([(KEY_FIELD.to_owned(), ByteString(key))].into()),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &new).await {
                Ok(created) => created,
                // Another replica (or the webhook) created it first: use theirs.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    api.get(name).await.map_err(|e| fail(e.to_string()))?
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
    };
    let bytes = existing
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_FIELD))
        .ok_or_else(|| fail(format!("it has no data key `{KEY_FIELD}`")))?;
    SealKey::from_bytes(&bytes.0).map_err(|e| fail(e.to_string()))
}
