//! The one way a string that is not a Terraform name becomes HCL text: a quoted template
//! whose every character is literal.
//!
//! Never hcl-rs's own string escaping for this. `hcl::Expression::String` escapes through
//! `hcl_primitives::template::escape_markers` (hcl-primitives 0.1.13, the newest release),
//! which skips the character after every `$` or `%`: in `%%{%${path.cwd}` the second marker
//! is left as it is and Terraform evaluates `${path.cwd}`; `$${$%{ if false }…` runs a
//! template directive. Project inputs no longer reach HCL at all (they travel as JSON
//! variables, see the parent module); what remains (backend settings, catalog metadata,
//! constants) goes through [`quoted`], which real Terraform and OpenTofu read back
//! exactly for every string up to length 5 over `$ % { } x` (`tests/render_terraform.rs`).

use std::fmt::Write as _;

use hcl::expr::{Expression, TemplateExpr};

/// `text` as an HCL quoted-string expression that Terraform reads as exactly `text`.
///
/// hcl-rs writes a [`TemplateExpr::QuotedString`] verbatim between the quotes, so the
/// escaping here is the only escaping.
pub fn quoted(text: &str) -> Expression {
    Expression::TemplateExpr(Box::new(TemplateExpr::QuotedString(escape(text))))
}

/// The body of an HCL quoted template that evaluates to `text`.
///
/// Template markers: every `$` or `%` immediately followed by `{` in `text` is doubled (a
/// plain left-to-right scan of the raw input: `$${` becomes `$$${`, read back as `$` then
/// the escaped `${`). Quoted-string escapes: `\` and `"`, newline, carriage return, tab,
/// and every other control character as `\uXXXX`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_after_markers_are_escaped_too() {
        // The inputs that hcl-primitives' escaper left live (issue: file read via a Project).
        assert_eq!(escape("%%{%${path.cwd}"), "%%%{%$${path.cwd}");
        assert_eq!(escape("$${$%{ if false }"), "$$${$%%{ if false }");
        assert_eq!(
            escape("%%{ if true }y%%{ endif }"),
            "%%%{ if true }y%%%{ endif }"
        );
        assert_eq!(escape("$${$${x}"), "$$${$$${x}");
    }

    #[test]
    fn lone_markers_and_braces_are_left_alone() {
        assert_eq!(escape("$ % { } $$ %% }{ x$"), "$ % { } $$ %% }{ x$");
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a\"b\\c\nd\re\tf\u{0}g\u{7f}h\u{85}ü"),
            "a\\\"b\\\\c\\nd\\re\\tf\\u0000g\\u007fh\\u0085ü"
        );
    }

    #[test]
    fn quoted_is_written_verbatim_by_hcl_rs() {
        let body = hcl::Body::builder()
            .add_attribute(("v", quoted("%%{%${path.cwd}")))
            .build();
        assert_eq!(
            hcl::to_string(&body).ok().as_deref(),
            Some("v = \"%%%{%$${path.cwd}\"\n")
        );
    }
}
