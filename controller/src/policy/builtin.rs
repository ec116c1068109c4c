//! The built-in compliance pack, embedded in the binary (rationale and controls per rule in
//! docs/policy.md).

use super::PolicySource;

/// `(file, Rego text)` of every built-in policy.
pub const BUILTIN_PACK: &[(&str, &str)] = &[
    ("lib.rego", include_str!("../../policies/builtin/lib.rego")),
    ("s3.rego", include_str!("../../policies/builtin/s3.rego")),
    ("ebs.rego", include_str!("../../policies/builtin/ebs.rego")),
    ("rds.rego", include_str!("../../policies/builtin/rds.rego")),
    (
        "network.rego",
        include_str!("../../policies/builtin/network.rego"),
    ),
    (
        "governance.rego",
        include_str!("../../policies/builtin/governance.rego"),
    ),
];

/// The pack as policy sources named `builtin/<file>`.
pub(super) fn builtin_sources() -> Vec<PolicySource> {
    BUILTIN_PACK
        .iter()
        .map(|(file, text)| PolicySource {
            origin: format!("builtin/{file}"),
            text: (*text).to_owned(),
        })
        .collect()
}
