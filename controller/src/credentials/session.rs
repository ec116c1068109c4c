//! STS role session names: CloudTrail shows them for every call Terraform makes, so they say
//! which Project acted and for which plan.

use sha2::{Digest, Sha256};

/// STS's limit on `RoleSessionName`.
pub const MAX_LEN: usize = 64;

/// `<namespace>.<project>.<tag>` (the tag is the plan id, or what the run is for), within
/// STS's 64 characters and `[\w+=,.@-]`. Longer names are cut, and 8 hex digits of
/// sha256(`namespace/project`) keep two cut names apart.
pub fn session_name(namespace: &str, project: &str, tag: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let (namespace, project, tag) = (clean(namespace), clean(project), clean(tag));
    let tag: String = tag.chars().take(24).collect();
    let full = format!("{namespace}.{project}.{tag}");
    if full.len() <= MAX_LEN {
        return full;
    }
    let hash = hex::encode(Sha256::digest(format!("{namespace}/{project}").as_bytes()));
    // ns.proj.hash8.tag: share what is left between namespace and project.
    let room = MAX_LEN - tag.len() - 8 - 3;
    let ns_len = namespace.len().min(room / 2);
    let project_len = project.len().min(room - ns_len);
    format!(
        "{}.{}.{}.{tag}",
        &namespace[..ns_len],
        &project[..project_len],
        &hash[..8]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        (2..=MAX_LEN).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    }

    #[test]
    fn short_names_read_as_they_are() {
        assert_eq!(
            session_name("team-a", "shop", "plan-0123456789abcdef"),
            "team-a.shop.plan-0123456789abcdef"
        );
    }

    #[test]
    fn long_names_fit_and_stay_apart() {
        let ns = "n".repeat(63);
        let a = session_name(&ns, &"p".repeat(63), "plan-0123456789abcdef");
        let b = session_name(
            &ns,
            &format!("{}q", "p".repeat(62)),
            "plan-0123456789abcdef",
        );
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with(".plan-0123456789abcdef"), "{a}");
        assert!(valid(&session_name("a", "b", &"t/x y".repeat(20))));
    }
}
