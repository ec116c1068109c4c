//! The decision seal: proof that a Checkpoint's decision went through tollgate's admission.
//!
//! `status.decidedBy` alone proves nothing: where no admission runs, whoever may write
//! `checkpoints/status` can type any name. So the mutating webhook, after stamping
//! `decidedBy`/`decidedAt` from the authenticated request, also writes `status.decisionSeal`:
//! an HMAC-SHA256, under a key only the controller holds, over everything the decision
//! means (which checkpoint, which plan, the decision, who, when, why). The controller acts
//! on a decision only when its seal verifies; a decision admission never saw has no valid
//! seal and changes nothing. Pure: the key's storage is the caller's business.

use ring::hmac;

/// Key length in bytes (HMAC-SHA256's block-size recommendation is 32+).
pub const KEY_LEN: usize = 32;
/// Prefix of seals made with this scheme, so another one can follow.
const VERSION: &str = "v1";

/// Errors of the seal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The key material is too short to be a key.
    #[error(
        "the decision seal key has {0} bytes, fewer than {KEY_LEN}: delete the key Secret so the controller makes a new one (pending decisions must then be made again)"
    )]
    ShortKey(usize),
    /// No random key could be made.
    #[error("cannot generate a decision seal key: the system's random source failed")]
    Random,
    /// The decision carries no seal.
    #[error(
        "it carries no decisionSeal, so tollgate's admission webhook did not record it (decidedBy may have been typed by anyone)"
    )]
    Missing,
    /// The seal does not match the decision.
    #[error(
        "its decisionSeal does not match the decision, the deciding user, the time, the reason or the plan: it was not made by tollgate's admission webhook for this decision"
    )]
    Mismatch,
}

/// What a seal covers. Every field is as stored in the Checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct SealedDecision<'a> {
    /// `metadata.uid` of the Checkpoint (a recreated Checkpoint of the same name differs).
    pub checkpoint_uid: &'a str,
    /// `spec.planRef.digest`: the plan decided on.
    pub plan_digest: &'a str,
    /// `Approved` or `Rejected`.
    pub decision: &'a str,
    /// `status.decidedBy`.
    pub decided_by: &'a str,
    /// `status.decidedAt`, as serialised in the object.
    pub decided_at: &'a str,
    /// `status.reason` (empty when none).
    pub reason: &'a str,
}

impl SealedDecision<'_> {
    /// Length-prefixed fields: no two different decisions share an encoding.
    fn message(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [
            VERSION,
            self.checkpoint_uid,
            self.plan_digest,
            self.decision,
            self.decided_by,
            self.decided_at,
            self.reason,
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// The key seals are made and checked with. `Debug` never shows it.
pub struct SealKey(hmac::Key);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A key from stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() < KEY_LEN {
            return Err(SealError::ShortKey(bytes.len()));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// Fresh random key material, to be stored where only the controller can read it.
    pub fn generate() -> Result<Vec<u8>, SealError> {
        let mut bytes = vec![0u8; KEY_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| SealError::Random)?;
        Ok(bytes)
    }

    /// The seal of `decision`.
    pub fn seal(&self, decision: &SealedDecision<'_>) -> String {
        let tag = hmac::sign(&self.0, &decision.message());
        format!("{VERSION}.{}", hex::encode(tag.as_ref()))
    }

    /// Whether `seal` is this key's seal of `decision` (constant-time comparison).
    pub fn verify(
        &self,
        decision: &SealedDecision<'_>,
        seal: Option<&str>,
    ) -> Result<(), SealError> {
        let seal = seal.filter(|s| !s.is_empty()).ok_or(SealError::Missing)?;
        let tag = seal
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|hex_tag| hex::decode(hex_tag).ok())
            .ok_or(SealError::Mismatch)?;
        hmac::verify(&self.0, &decision.message(), &tag).map_err(|_| SealError::Mismatch)
    }
}

/// 32 random bytes from the system's generator, hex: a session or run token. `None` when
/// the generator fails.
pub fn random_token() -> Option<String> {
    let mut bytes = [0_u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(hex::encode(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn decision() -> SealedDecision<'static> {
        SealedDecision {
            checkpoint_uid: "0b6c5d7e-uid",
            plan_digest: "sha256digest",
            decision: "Approved",
            decided_by: "alice",
            decided_at: "2026-12-03T08:00:00Z",
            reason: "reviewed",
        }
    }

    #[test]
    fn a_seal_verifies_only_for_its_decision_and_key() {
        let key = SealKey::from_bytes(&SealKey::generate().unwrap()).unwrap();
        let seal = key.seal(&decision());
        assert!(seal.starts_with("v1."));
        assert_eq!(key.verify(&decision(), Some(&seal)), Ok(()));
        let changes: [fn(&mut SealedDecision<'static>); 6] = [
            |d| d.checkpoint_uid = "other-uid",
            |d| d.plan_digest = "other-digest",
            |d| d.decision = "Rejected",
            |d| d.decided_by = "bob",
            |d| d.decided_at = "2026-12-03T08:00:01Z",
            |d| d.reason = "reviewed!",
        ];
        for change in changes {
            let mut forged = decision();
            change(&mut forged);
            assert_eq!(
                key.verify(&forged, Some(&seal)),
                Err(SealError::Mismatch),
                "{forged:?}"
            );
        }
        let other = SealKey::from_bytes(&SealKey::generate().unwrap()).unwrap();
        assert_eq!(
            other.verify(&decision(), Some(&seal)),
            Err(SealError::Mismatch)
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let key = SealKey::from_bytes(&[7u8; KEY_LEN]).unwrap();
        let a = SealedDecision {
            decided_by: "al",
            reason: "ice",
            ..decision()
        };
        let b = SealedDecision {
            decided_by: "alice",
            reason: "",
            ..decision()
        };
        assert_ne!(key.seal(&a), key.seal(&b));
    }

    #[test]
    fn missing_malformed_and_short_inputs_are_refused() {
        let key = SealKey::from_bytes(&[7u8; KEY_LEN]).unwrap();
        assert_eq!(key.verify(&decision(), None), Err(SealError::Missing));
        assert_eq!(key.verify(&decision(), Some("")), Err(SealError::Missing));
        for bad in ["v1.zz", "v2.00", "deadbeef", "v1."] {
            assert_eq!(
                key.verify(&decision(), Some(bad)),
                Err(SealError::Mismatch),
                "{bad}"
            );
        }
        assert_eq!(
            SealKey::from_bytes(&[1u8; 16]).unwrap_err(),
            SealError::ShortKey(16)
        );
        assert_eq!(format!("{key:?}"), "SealKey(..)");
    }
}
