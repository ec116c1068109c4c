//! Human renderings of an [`Estimate`]: a terminal table and Markdown. Both show the
//! same numbers as the JSON, rounded to cents for display.

use std::fmt::Write as _;

use rust_decimal::{Decimal, RoundingStrategy};

use super::estimate::{Component, Estimate};

/// `$1,234.56`, `-$3.00`.
pub(crate) fn money(d: Decimal) -> String {
    let rounded = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let text = format!("{:.2}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}${grouped}.{frac}", if negative { "-" } else { "" })
}

/// `+$1.00`, `-$1.00`, `$0.00`.
pub(crate) fn signed_money(d: Decimal) -> String {
    let m = money(d);
    if m.starts_with('-') || m == "$0.00" {
        m
    } else {
        format!("+{m}")
    }
}

fn quantity(d: Decimal) -> String {
    let rounded = d.round_dp(4).normalize();
    rounded.to_string()
}

fn unit_price(d: Decimal) -> String {
    format!("${}", d.normalize())
}

fn component_label(c: &Component) -> String {
    if c.usage_based {
        format!("{} *", c.name)
    } else {
        c.name.clone()
    }
}

const USAGE_NOTE: &str =
    "* usage-dependent: quantity from the usage file (0 when the usage file gives none)";

/// A plain-text table.
pub(crate) fn table(e: &Estimate) -> String {
    let mut rows: Vec<[String; 7]> = Vec::new();
    rows.push([
        "RESOURCE / COMPONENT".into(),
        "ACTION".into(),
        "QUANTITY".into(),
        "UNIT".into(),
        "UNIT PRICE".into(),
        "MONTHLY".into(),
        "DELTA".into(),
    ]);
    let mut any_usage = false;
    for r in &e.resources {
        rows.push([
            r.address.clone(),
            r.action.clone(),
            String::new(),
            String::new(),
            String::new(),
            money(r.monthly_cost),
            signed_money(r.delta_monthly_cost),
        ]);
        let shown = if r.components.is_empty() {
            &r.previous_components
        } else {
            &r.components
        };
        let prefix = if r.components.is_empty() && !r.previous_components.is_empty() {
            "  (was) "
        } else {
            "  "
        };
        for c in shown {
            any_usage |= c.usage_based;
            rows.push([
                format!("{prefix}{}", component_label(c)),
                String::new(),
                quantity(c.monthly_quantity),
                c.unit.clone(),
                unit_price(c.unit_price),
                money(c.monthly_cost),
                String::new(),
            ]);
        }
    }
    rows.push([
        "TOTAL".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        money(e.total_monthly_cost),
        signed_money(e.delta_monthly_cost),
    ]);
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Monthly cost estimate ({}, {}, price book {})",
        e.currency, e.region, e.price_book_version
    );
    let _ = writeln!(
        out,
        "Previous {}  New {}  Delta {}",
        money(e.previous_monthly_cost),
        money(e.total_monthly_cost),
        signed_money(e.delta_monthly_cost)
    );
    out.push('\n');
    for (i, row) in rows.iter().enumerate() {
        if i == rows.len() - 1 {
            let total_width: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(out, "{}", "-".repeat(total_width));
        }
        let mut line = String::new();
        for (j, (cell, w)) in row.iter().zip(widths.iter()).enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            // Text columns left-aligned, numbers right-aligned.
            if j == 0 || j == 1 || j == 3 {
                let _ = write!(line, "{cell:<w$}");
            } else {
                let _ = write!(line, "{cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if any_usage {
        let _ = writeln!(out, "\n{USAGE_NOTE}");
    }
    if !e.unpriced.is_empty() {
        let _ = writeln!(
            out,
            "\nNot priced ({}), not in the totals:",
            e.unpriced.len()
        );
        for u in &e.unpriced {
            let _ = writeln!(out, "  {} ({}): {}", u.address, u.action, u.reason);
        }
        if let Some(hint) = refresh_hint(e) {
            let _ = writeln!(out, "{hint}");
        }
    }
    if !e.free.is_empty() {
        let _ = writeln!(out, "\nFree: {} resource(s)", e.free.len());
    }
    out
}

/// What to do when the price book lacks rows for the plan's region (an operator with AWS
/// access can fill them; nobody should type prices in by hand).
fn refresh_hint(e: &Estimate) -> Option<String> {
    let regions: std::collections::BTreeSet<&str> = e
        .unpriced
        .iter()
        .filter(|u| u.reason.contains("no price for "))
        .filter_map(|u| u.reason.rsplit_once(" in ").map(|(_, region)| region))
        .collect();
    if regions.is_empty() {
        return None;
    }
    let flags: Vec<String> = regions.iter().map(|r| format!("--region {r}")).collect();
    Some(format!(
        "Missing prices can be fetched where the AWS Price List API is reachable: `tollgate pricebook refresh {} --out prices.csv`, then pass `--price-cache prices.csv`.",
        flags.join(" ")
    ))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A Markdown report.
pub(crate) fn markdown(e: &Estimate) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Monthly cost estimate\n");
    let _ = writeln!(out, "| | Monthly ({}) |", e.currency);
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(out, "| Previous | {} |", money(e.previous_monthly_cost));
    let _ = writeln!(out, "| New | {} |", money(e.total_monthly_cost));
    let _ = writeln!(
        out,
        "| **Delta** | **{}** |",
        signed_money(e.delta_monthly_cost)
    );
    let _ = writeln!(
        out,
        "\nRegion `{}`, price book `{}`. On-demand list prices, 730 hours a month.\n",
        e.region, e.price_book_version
    );
    if !e.resources.is_empty() {
        let _ = writeln!(out, "| Resource | Action | Previous | New | Delta |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for r in &e.resources {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                md_escape(&r.address),
                r.action,
                money(r.previous_monthly_cost),
                money(r.monthly_cost),
                signed_money(r.delta_monthly_cost)
            );
        }
        let _ = writeln!(out, "\n<details><summary>Components</summary>\n");
        let _ = writeln!(
            out,
            "| Resource | Component | Quantity | Unit | Unit price | Monthly |"
        );
        let _ = writeln!(out, "|---|---|---:|---|---:|---:|");
        let mut any_usage = false;
        for r in &e.resources {
            let (shown, was) = if r.components.is_empty() {
                (&r.previous_components, " (was)")
            } else {
                (&r.components, "")
            };
            for c in shown {
                any_usage |= c.usage_based;
                let _ = writeln!(
                    out,
                    "| `{}`{} | {} | {} | {} | {} | {} |",
                    md_escape(&r.address),
                    was,
                    md_escape(&component_label(c)),
                    quantity(c.monthly_quantity),
                    md_escape(&c.unit),
                    unit_price(c.unit_price),
                    money(c.monthly_cost)
                );
            }
        }
        if any_usage {
            let _ = writeln!(out, "\n{USAGE_NOTE}");
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    if !e.unpriced.is_empty() {
        let _ = writeln!(
            out,
            "**Not priced ({}), not in the totals:**\n",
            e.unpriced.len()
        );
        for u in &e.unpriced {
            let _ = writeln!(
                out,
                "- `{}` ({}): {}",
                md_escape(&u.address),
                u.action,
                md_escape(&u.reason)
            );
        }
        if let Some(hint) = refresh_hint(e) {
            let _ = writeln!(out, "\n{hint}");
        }
        out.push('\n');
    }
    if !e.free.is_empty() {
        let _ = writeln!(out, "{} free resource(s) not listed.", e.free.len());
    }
    out
}

/// Where each component's price comes from and what its quantity assumes.
pub(crate) fn explain(e: &Estimate) -> String {
    let mut out = format!(
        "Price book {} (region {}): where each price comes from\n",
        e.price_book_version, e.region
    );
    for r in &e.resources {
        let _ = writeln!(out, "\n{} ({})", r.address, r.action);
        let (label, components) = if r.components.is_empty() {
            (" (was)", &r.previous_components)
        } else {
            ("", &r.components)
        };
        for c in components {
            let _ = writeln!(
                out,
                "  {}{label}: {} {} x {} = {}",
                c.name,
                quantity(c.monthly_quantity),
                c.unit,
                unit_price(c.unit_price),
                money(c.monthly_cost)
            );
            match &c.price {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "    price: {} {} in {}, {} (observed {})",
                        p.service, p.key, p.region, p.source, p.observed
                    );
                }
                None => out.push_str("    price: not from the price book\n"),
            }
            for a in &c.assumptions {
                let _ = writeln!(out, "    assumes: {a}");
            }
        }
    }
    for u in &e.unpriced {
        let _ = writeln!(
            out,
            "\n{} ({}): not priced: {}",
            u.address, u.action, u.reason
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn money_formatting() {
        assert_eq!(money(Decimal::new(123456789, 2)), "$1,234,567.89");
        assert_eq!(money(Decimal::new(-5, 0)), "-$5.00");
        assert_eq!(money(Decimal::new(5, 3)), "$0.01");
        assert_eq!(money(Decimal::new(-1, 3)), "$0.00");
        assert_eq!(signed_money(Decimal::new(759, 2)), "+$7.59");
        assert_eq!(signed_money(Decimal::ZERO), "$0.00");
        assert_eq!(signed_money(Decimal::new(-759, 2)), "-$7.59");
    }
}
