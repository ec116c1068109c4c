//! Leader election on a `coordination.k8s.io/v1` Lease, so several controller replicas can
//! run while only one reconciles.
//!
//! The algorithm is client-go's: a candidate takes the Lease when nobody holds it, or when
//! its record (resourceVersion) has not changed for the Lease's duration *as measured on the
//! candidate's own clock since it first saw that record*, so clock skew between nodes does
//! not matter. The holder renews every retry period; writes use the resourceVersion read
//! (optimistic concurrency), so of two candidates exactly one write succeeds. A holder that
//! cannot renew within the renew deadline (shorter than the Lease's duration) considers the
//! lease lost before anyone else may take it, and so does one that finds another holder.
//!
//! Written here rather than taken from `kube-lease-manager`: in its watch mode an error while
//! renewing is logged and retried without telling the holder, which could go on
//! reconciling after its lease expired; the client-go rules above are short enough to own.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaderError {
    /// The Lease could not be read or written.
    #[error(
        "Lease {namespace}/{name}: {source}; check that the namespace exists and the controller may get, create and update leases there"
    )]
    Kube {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The underlying error.
        source: kube::Error,
    },
    /// A call to the API did not answer within the retry period.
    #[error("Lease {namespace}/{name}: the API did not answer within {timeout:?}")]
    Timeout {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Another replica holds the Lease now.
    #[error("lost the leader Lease to {holder}")]
    Lost {
        /// Who holds it now (empty when nobody does).
        holder: String,
    },
    /// Renewing failed for longer than the renew deadline: another replica may take over.
    #[error(
        "could not renew the leader Lease for {deadline:?} (last error: {last}); stepping down"
    )]
    RenewDeadline {
        /// The renew deadline.
        deadline: Duration,
        /// The last renew error.
        last: String,
    },
}

/// How long a Lease is good for, and how often it is renewed and looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A holder that stops renewing is replaced after this long.
    pub lease_duration: Duration,
    /// A holder that could not renew for this long steps down (shorter than
    /// `lease_duration`, so it stops before anyone else may start).
    pub renew_deadline: Duration,
    /// How often the holder renews and a candidate looks again.
    pub retry_period: Duration,
}

impl Timing {
    /// client-go's proportions (15 s / 10 s / 2 s) for a lease duration.
    #[must_use]
    pub fn for_lease_duration(lease_duration: Duration) -> Self {
        Self {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: (lease_duration * 2 / 15).max(Duration::from_millis(200)),
        }
    }
}

/// What a look at the Lease says to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Move {
    /// Write ourselves as the holder (it is free, expired, or already ours).
    Take,
    /// Someone else holds it and it has not expired: look again later.
    Wait,
}

/// The decision of one look: `holder` as written in the Lease, and how long its record has
/// been unchanged on our clock.
fn next_move(
    identity: &str,
    holder: Option<&str>,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Move {
    match holder {
        None | Some("") => Move::Take,
        Some(h) if h == identity => Move::Take,
        Some(_) if unchanged_for >= lease_duration => Move::Take,
        Some(_) => Move::Wait,
    }
}

/// Whether a write of the Lease (a create, or a replace at the version read) won: a
/// conflict means another candidate wrote first.
fn won(written: Result<Lease, LeaderError>) -> Result<bool, LeaderError> {
    match written {
        Ok(_) => Ok(true),
        Err(LeaderError::Kube {
            source: kube::Error::Api(status),
            ..
        }) if status.code == 409 => Ok(false),
        Err(err) => Err(err),
    }
}

/// One candidate for the leader Lease `namespace/name`.
pub struct Election {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timing: Timing,
}

impl Election {
    /// A candidate called `identity` (unique among replicas: the pod's name).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
        }
    }

    /// This candidate's identity, as written into the Lease.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn kube_error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Kube {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }

    /// An API call bounded by the retry period, so a hanging request cannot outlast the
    /// renew deadline.
    async fn call<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaderError> {
        match tokio::time::timeout(self.timing.retry_period, request).await {
            Ok(result) => result.map_err(|e| self.kube_error(e)),
            Err(_) => Err(LeaderError::Timeout {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                timeout: self.timing.retry_period,
            }),
        }
    }

    /// Waits until this candidate holds the Lease. Errors (API down, no permission) are
    /// logged and retried: a replica that cannot lead stays a candidate.
    pub async fn acquire(&self) {
        let mut seen: Option<(String, Instant)> = None;
        let mut last_error = String::new();
        loop {
            match self.try_take(&mut seen).await {
                Ok(true) => {
                    tracing::info!(identity = %self.identity, lease = %format!("{}/{}", self.namespace, self.name), "became the leader");
                    return;
                }
                Ok(false) => {}
                Err(err) => {
                    let text = err.to_string();
                    if text != last_error {
                        tracing::warn!(error = %text, "cannot take part in leader election; retrying");
                        last_error = text;
                    }
                }
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// One look at the Lease; `Ok(true)` once we hold it. `seen` is the record last seen
    /// and since when (our clock).
    async fn try_take(&self, seen: &mut Option<(String, Instant)>) -> Result<bool, LeaderError> {
        let Some(lease) = self.call(self.api.get_opt(&self.name)).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.held_spec(None, 0)),
            };
            return won(self
                .call(self.api.create(&PostParams::default(), &lease))
                .await);
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let now = Instant::now();
        let since = match seen {
            Some((seen_version, at)) if *seen_version == version => *at,
            _ => {
                *seen = Some((version, now));
                now
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let lease_duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timing.lease_duration, Duration::from_secs);
        let holder = spec.holder_identity.as_deref();
        match next_move(&self.identity, holder, now - since, lease_duration) {
            Move::Wait => Ok(false),
            Move::Take => self.write(lease).await,
        }
    }

    /// The spec of a Lease we hold: `acquired` is kept when we already held it.
    fn held_spec(&self, previous: Option<&LeaseSpec>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(jiff::Timestamp::now());
        let ours = previous
            .and_then(|p| p.holder_identity.as_deref())
            .is_some_and(|h| h == self.identity);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.timing.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    /// Writes us as the holder over exactly the version read; `Ok(false)` when someone
    /// else wrote first.
    async fn write(&self, mut lease: Lease) -> Result<bool, LeaderError> {
        let previous = lease.spec.take();
        let transitions = previous
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        lease.spec = Some(self.held_spec(previous.as_ref(), transitions));
        won(self
            .call(self.api.replace(&self.name, &PostParams::default(), &lease))
            .await)
    }

    /// Renews the Lease every retry period while this candidate leads; returns why it
    /// stopped leading (never returns otherwise).
    pub async fn hold(&self) -> LeaderError {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let error = match self.renew().await {
                Ok(()) => {
                    renewed = Instant::now();
                    continue;
                }
                Err(lost @ LeaderError::Lost { .. }) => return lost,
                Err(err) => err,
            };
            if renewed.elapsed() >= self.timing.renew_deadline {
                return LeaderError::RenewDeadline {
                    deadline: self.timing.renew_deadline,
                    last: error.to_string(),
                };
            }
            tracing::warn!(error = %error, "cannot renew the leader Lease; retrying");
        }
    }

    async fn renew(&self) -> Result<(), LeaderError> {
        let lease = self
            .call(self.api.get_opt(&self.name))
            .await?
            .unwrap_or_default();
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        if holder != self.identity {
            return Err(LeaderError::Lost { holder });
        }
        match self.write(lease).await? {
            true => Ok(()),
            // Written meanwhile: the next look says by whom.
            false => Err(LeaderError::Lost {
                holder: "another replica (the Lease changed while renewing)".to_owned(),
            }),
        }
    }

    /// Gives the Lease up (on a clean shutdown) so another replica takes over at once
    /// instead of after the lease duration. Best effort.
    pub async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.call(self.api.get_opt(&self.name)).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
            self.call(self.api.replace(&self.name, &PostParams::default(), &lease))
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(identity = %self.identity, "released the leader Lease"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot release the leader Lease; another replica takes over once it expires")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn a_free_lease_is_taken() {
        assert_eq!(next_move("a", None, Duration::ZERO, D), Move::Take);
        assert_eq!(next_move("a", Some(""), Duration::ZERO, D), Move::Take);
    }

    #[test]
    fn our_own_lease_is_renewed_even_after_a_restart() {
        assert_eq!(next_move("a", Some("a"), Duration::ZERO, D), Move::Take);
    }

    #[test]
    fn another_holder_is_waited_for_until_its_record_is_unchanged_for_the_duration() {
        assert_eq!(next_move("a", Some("b"), Duration::ZERO, D), Move::Wait);
        assert_eq!(
            next_move("a", Some("b"), D - Duration::from_millis(1), D),
            Move::Wait
        );
        assert_eq!(next_move("a", Some("b"), D, D), Move::Take);
    }

    #[test]
    fn the_holder_steps_down_before_anyone_may_take_over() {
        for seconds in [1, 6, 15, 60, 137] {
            let t = Timing::for_lease_duration(Duration::from_secs(seconds));
            assert!(t.renew_deadline < t.lease_duration, "{t:?}");
            assert!(t.retry_period < t.renew_deadline, "{t:?}");
        }
        let t = Timing::for_lease_duration(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry_period, Duration::from_secs(2));
    }
}
