//! EBS volumes (standalone and instance block devices), S3 buckets, EFS, ECR and AWS
//! Backup vaults.

use rust_decimal::Decimal;

use super::{Outcome, Priced, PricerInput};
use crate::cost::estimate::Component;
use crate::cost::plan_view::Attrs;

/// gp3 includes 3,000 IOPS and 125 MiB/s; more is billed.
const GP3_FREE_IOPS: Decimal = Decimal::from_parts(3000, 0, 0, false, 0);
const GP3_FREE_THROUGHPUT: Decimal = Decimal::from_parts(125, 0, 0, false, 0);
/// io2 IOPS tiers: up to 32,000; 32,001–64,000; above 64,000.
const IO2_TIER1: Decimal = Decimal::from_parts(32000, 0, 0, false, 0);
const IO2_TIER2: Decimal = Decimal::from_parts(64000, 0, 0, false, 0);

/// A volume's price-determining settings.
pub(crate) struct Volume<'s> {
    pub volume_type: &'s str,
    pub size_gb: Decimal,
    pub iops: Option<Decimal>,
    pub throughput: Option<Decimal>,
}

/// Components of one EBS volume; `label` prefixes names (e.g. `root_block_device: `).
pub(crate) fn volume_components(
    ctx: &PricerInput<'_, '_>,
    label: &str,
    v: &Volume<'_>,
) -> Result<Vec<Component>, String> {
    let t = v.volume_type;
    let storage_name = match t {
        "gp2" | "gp3" => format!("{label}Storage (general purpose SSD, {t})"),
        "io1" | "io2" => format!("{label}Storage (provisioned IOPS SSD, {t})"),
        "st1" => format!("{label}Storage (throughput optimized HDD, st1)"),
        "sc1" => format!("{label}Storage (cold HDD, sc1)"),
        "standard" => format!("{label}Storage (magnetic)"),
        other => format!("{label}Storage ({other})"),
    };
    let mut out = vec![ctx.fixed(storage_name, "ebs", &format!("{t}:storage"), v.size_gb)?];
    match t {
        "gp3" => {
            let iops = v.iops.unwrap_or(GP3_FREE_IOPS);
            if iops > GP3_FREE_IOPS {
                out.push(ctx.fixed(
                    format!("{label}Provisioned IOPS (above 3,000)"),
                    "ebs",
                    "gp3:iops",
                    iops - GP3_FREE_IOPS,
                )?);
            }
            let throughput = v.throughput.unwrap_or(GP3_FREE_THROUGHPUT);
            if throughput > GP3_FREE_THROUGHPUT {
                out.push(ctx.fixed(
                    format!("{label}Provisioned throughput (above 125 MiB/s)"),
                    "ebs",
                    "gp3:throughput",
                    throughput - GP3_FREE_THROUGHPUT,
                )?);
            }
        }
        "io1" => {
            let iops = v
                .iops
                .ok_or_else(|| format!("{label}iops is not set for io1"))?;
            out.push(ctx.fixed(format!("{label}Provisioned IOPS"), "ebs", "io1:iops", iops)?);
        }
        "io2" => {
            let iops = v
                .iops
                .ok_or_else(|| format!("{label}iops is not set for io2"))?;
            let tier1 = iops.min(IO2_TIER1);
            out.push(ctx.fixed(
                format!("{label}Provisioned IOPS (up to 32,000)"),
                "ebs",
                "io2:iops-tier1",
                tier1,
            )?);
            if iops > IO2_TIER1 {
                out.push(ctx.fixed(
                    format!("{label}Provisioned IOPS (32,001-64,000)"),
                    "ebs",
                    "io2:iops-tier2",
                    iops.min(IO2_TIER2) - IO2_TIER1,
                )?);
            }
            if iops > IO2_TIER2 {
                out.push(ctx.fixed(
                    format!("{label}Provisioned IOPS (above 64,000)"),
                    "ebs",
                    "io2:iops-tier3",
                    iops - IO2_TIER2,
                )?);
            }
        }
        "standard" => {
            out.push(ctx.usage_based(
                format!("{label}I/O requests"),
                "ebs",
                "standard:io",
                "monthly_standard_io_requests",
                Decimal::from(1_000_000),
            )?);
        }
        _ => {}
    }
    Ok(out)
}

/// `aws_ebs_volume`: `type` defaults to gp2, `size` is required (a size taken from a
/// snapshot is not resolved), gp3 IOPS/throughput above the included baseline are billed.
pub(crate) fn ebs_volume(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let volume_type = ctx.opt_str(&a, "type")?.unwrap_or("gp2");
    let size_gb = match ctx.opt_number(&a, "size")? {
        Some(s) => s,
        None => {
            return Err(
                "size is not set (a size inherited from snapshot_id is not resolved)".into(),
            );
        }
    };
    let v = Volume {
        volume_type,
        size_gb,
        iops: ctx.opt_number(&a, "iops")?,
        throughput: ctx.opt_number(&a, "throughput")?,
    };
    Ok(Outcome::Components(volume_components(ctx, "", &v)?))
}

/// A block device of an instance (`root_block_device` or `ebs_block_device`).
pub(crate) fn block_device<'a>(
    ctx: &PricerInput<'_, 'a>,
    block: &str,
    a: &Attrs<'a>,
    default_size: Option<Decimal>,
) -> Result<Volume<'a>, String> {
    let volume_type = ctx.nested_str(a, block, "volume_type")?.unwrap_or("gp2");
    let size_gb = match (ctx.nested_number(a, block, "volume_size")?, default_size) {
        (Some(s), _) => s,
        (None, Some(d)) => d,
        (None, None) => {
            return Err(format!(
                "{block}.volume_size is not set (a size inherited from a snapshot is not resolved)"
            ));
        }
    };
    Ok(Volume {
        volume_type,
        size_gb,
        iops: ctx.nested_number(a, block, "iops")?,
        throughput: ctx.nested_number(a, block, "throughput")?,
    })
}

/// `aws_s3_bucket`: everything is usage-based (Standard storage class, first-50-TB tier).
pub(crate) fn s3_bucket(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![
        ctx.usage_based(
            "Standard storage",
            "s3",
            "standard:storage",
            "storage_gb",
            Decimal::ONE,
        )?,
        ctx.usage_based(
            "PUT, COPY, POST, LIST requests",
            "s3",
            "standard:put-requests",
            "monthly_put_requests",
            Decimal::from(1000),
        )?,
        ctx.usage_based(
            "GET, SELECT and other requests",
            "s3",
            "standard:get-requests",
            "monthly_get_requests",
            Decimal::from(1000),
        )?,
    ]))
}

/// `aws_efs_file_system`: storage from the usage file (`storage_gb` in Standard or One
/// Zone, `infrequent_access_storage_gb`), plus provisioned throughput when
/// `throughput_mode = "provisioned"`. Elastic throughput (per GB transferred) is not priced.
pub(crate) fn efs_file_system(ctx: &PricerInput<'_, '_>) -> Priced {
    let a = ctx.attrs();
    let one_zone = ctx.opt_str(&a, "availability_zone_name")?.is_some();
    let (standard, ia, class) = if one_zone {
        (
            "storage:one-zone",
            "storage:one-zone-infrequent-access",
            "One Zone",
        )
    } else {
        ("storage:standard", "storage:infrequent-access", "Standard")
    };
    let mode = ctx.opt_str(&a, "throughput_mode")?.unwrap_or("bursting");
    let mut storage = ctx.usage_based(
        format!("Storage ({class})"),
        "efs",
        standard,
        "storage_gb",
        Decimal::ONE,
    )?;
    if mode == "elastic" {
        storage = storage
            .assuming("elastic throughput is billed per GB read and written, which is not priced");
    }
    let mut out = vec![
        storage,
        ctx.usage_based(
            format!("Storage ({class}-Infrequent Access)"),
            "efs",
            ia,
            "infrequent_access_storage_gb",
            Decimal::ONE,
        )?,
    ];
    match mode {
        "bursting" | "elastic" => {}
        "provisioned" => {
            let mibps = ctx
                .opt_number(&a, "provisioned_throughput_in_mibps")?
                .ok_or("provisioned_throughput_in_mibps is not set")?;
            out.push(
                ctx.fixed(
                    format!("Provisioned throughput ({} MiB/s)", mibps.normalize()),
                    "efs",
                    "throughput:provisioned",
                    mibps,
                )?
                .assuming("the throughput Standard storage includes (50 KiB/s per GiB) is not deducted: an upper bound"),
            );
        }
        other => return Err(format!("throughput_mode `{other}` is not an EFS mode")),
    }
    Ok(Outcome::Components(out))
}

/// `aws_ecr_repository`: image storage from the usage file (`storage_gb`).
pub(crate) fn ecr_repository(ctx: &PricerInput<'_, '_>) -> Priced {
    Ok(Outcome::Components(vec![ctx.usage_based(
        "Image storage",
        "ecr",
        "storage",
        "storage_gb",
        Decimal::ONE,
    )?]))
}

/// `aws_backup_vault`: the recovery points it stores, from the usage file: `storage_gb`
/// (warm) and `cold_storage_gb` at AWS Backup's general prices (EBS, EFS, RDS, …), and
/// DynamoDB (`dynamodb_storage_gb`, `dynamodb_cold_storage_gb`) and S3
/// (`s3_storage_gb`) backups at their own prices when given. Plans and selections are
/// free: what they back up is billed here.
pub(crate) fn backup_vault(ctx: &PricerInput<'_, '_>) -> Priced {
    let mut out = vec![
        ctx.usage_based(
            "Warm backup storage",
            "backup",
            "storage:warm",
            "storage_gb",
            Decimal::ONE,
        )?,
        ctx.usage_based(
            "Cold backup storage",
            "backup",
            "storage:cold",
            "cold_storage_gb",
            Decimal::ONE,
        )?,
    ];
    for (name, key, usage_key) in [
        (
            "DynamoDB warm backup storage",
            "storage:dynamodb:warm",
            "dynamodb_storage_gb",
        ),
        (
            "DynamoDB cold backup storage",
            "storage:dynamodb:cold",
            "dynamodb_cold_storage_gb",
        ),
        ("S3 backup storage", "storage:s3:warm", "s3_storage_gb"),
    ] {
        if ctx.usage_value(usage_key).is_some() {
            out.push(ctx.usage_based(name, "backup", key, usage_key, Decimal::ONE)?);
        }
    }
    Ok(Outcome::Components(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use crate::cost::usage::Usage;

    #[test]
    fn gp2_volume() {
        // us-east-1 gp2 $0.10/GB-month (ebs,us-east-1,gp2:storage).
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "gp2", "size": 10}),
        ));
        assert_eq!(total(&c), d("1.00"));
    }

    #[test]
    fn default_type_is_gp2() {
        let c = components(price_after("aws_ebs_volume", json!({"size": 10})));
        assert!(c[0].name.contains("gp2"));
    }

    #[test]
    fn gp3_with_extra_iops_and_throughput() {
        // us-east-1 gp3: $0.08/GB-month, $0.005/IOPS-month above 3,000,
        // $0.04/MiBps-month above 125 (ebs,us-east-1,gp3:*).
        // 40 GB × 0.08 = 3.20; (4000-3000) × 0.005 = 5.00; (130-125) × 0.04 = 0.20.
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "gp3", "size": 40, "iops": 4000, "throughput": 130}),
        ));
        assert_eq!(find(&c, "Storage").monthly_cost, d("3.2"));
        assert_eq!(find(&c, "IOPS").monthly_cost, d("5"));
        assert_eq!(find(&c, "throughput").monthly_cost, d("0.2"));
        assert_eq!(total(&c), d("8.40"));
    }

    #[test]
    fn gp3_baseline_is_free() {
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "gp3", "size": 100, "iops": 3000, "throughput": 125}),
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(total(&c), d("8.00"));
    }

    #[test]
    fn io1_volume() {
        // us-east-1 io1: $0.125/GB-month, $0.065/IOPS-month. 30 × 0.125 + 300 × 0.065 = 3.75 + 19.50.
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "io1", "size": 30, "iops": 300}),
        ));
        assert_eq!(total(&c), d("23.25"));
    }

    #[test]
    fn io2_first_tier() {
        // us-east-1 io2: $0.125/GB-month, $0.065/IOPS-month up to 32,000 IOPS.
        // 100 GB × 0.125 = 12.50; 10,000 × 0.065 = 650.
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "io2", "size": 100, "iops": 10000}),
        ));
        assert_eq!(total(&c), d("662.5"));
    }

    #[test]
    fn io2_higher_tiers_need_their_own_rows() {
        // The book has no sourced price for io2 IOPS above 32,000: reported, not guessed.
        let err = price_after(
            "aws_ebs_volume",
            json!({"type": "io2", "size": 100, "iops": 40000}),
        )
        .unwrap_err();
        assert_eq!(err, "no price for ebs io2:iops-tier2 in us-east-1");
    }

    #[test]
    fn hdd_and_magnetic() {
        // st1 $0.045, sc1 $0.015, standard $0.05/GB-month + $0.05 per 1M I/O (us-east-1).
        assert_eq!(
            total(&components(price_after(
                "aws_ebs_volume",
                json!({"type": "st1", "size": 40})
            ))),
            d("1.80")
        );
        assert_eq!(
            total(&components(price_after(
                "aws_ebs_volume",
                json!({"type": "sc1", "size": 50})
            ))),
            d("0.75")
        );
        let c = components(price_after(
            "aws_ebs_volume",
            json!({"type": "standard", "size": 20}),
        ));
        assert_eq!(total(&c), d("1.00"));
        let io = find(&c, "I/O");
        assert!(io.usage_based);
        assert_eq!(io.monthly_quantity, d("0"));
        let usage = Usage::none().with_type_default(
            "aws_ebs_volume",
            "monthly_standard_io_requests",
            d("3000000"),
        );
        let c = components(price_after_in(
            "aws_ebs_volume",
            json!({"type": "standard", "size": 20}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "I/O").monthly_cost, d("0.15"));
    }

    #[test]
    fn unknown_size_is_unpriced() {
        let p = plan(
            "aws_ebs_volume",
            json!({"type": "gp3"}),
            json!({"size": true}),
            json!({"type": {"constant_value": "gp3"}, "size": {"references": ["var.size"]}}),
        );
        let err = price_plan(&p, "us-east-1", &Usage::none()).unwrap_err();
        assert_eq!(err, "size is unknown until apply");
    }

    #[test]
    fn unknown_type_not_configured_defaults() {
        let p = plan(
            "aws_ebs_volume",
            json!({"size": 10}),
            json!({"type": true, "iops": true, "throughput": true}),
            json!({"size": {"constant_value": 10}}),
        );
        let c = components(price_plan(&p, "us-east-1", &Usage::none()));
        assert_eq!(total(&c), d("1.00"));
    }

    #[test]
    fn s3_bucket_is_usage_based() {
        // us-east-1 S3 Standard $0.023/GB-month (first 50 TB), PUT $0.005/1k, GET $0.0004/1k.
        let c = components(price_after("aws_s3_bucket", json!({"bucket": "b"})));
        assert!(c.iter().all(|c| c.usage_based));
        assert_eq!(total(&c), d("0"));
        let usage = Usage::none()
            .with_type_default("aws_s3_bucket", "storage_gb", d("10000"))
            .with_type_default("aws_s3_bucket", "monthly_put_requests", d("10000"))
            .with_type_default("aws_s3_bucket", "monthly_get_requests", d("100000"));
        let c = components(price_after_in(
            "aws_s3_bucket",
            json!({}),
            "us-east-1",
            &usage,
        ));
        // 10,000 × 0.023 = 230; 10 × 0.005 = 0.05; 100 × 0.0004 = 0.04.
        assert_eq!(total(&c), d("230.09"));
    }

    #[test]
    fn efs_storage_and_provisioned_throughput() {
        // us-east-1 EFS Standard $0.30/GB-month × 50 = 15; IA $0.025 × 200 = 5;
        // provisioned throughput $6.00/MiBps-month × 10 = 60.
        let usage = Usage::none()
            .with_type_default("aws_efs_file_system", "storage_gb", d("50"))
            .with_type_default(
                "aws_efs_file_system",
                "infrequent_access_storage_gb",
                d("200"),
            );
        let c = components(price_after_in(
            "aws_efs_file_system",
            json!({"throughput_mode": "provisioned", "provisioned_throughput_in_mibps": 10}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "Storage (Standard)").monthly_cost, d("15"));
        assert_eq!(find(&c, "Infrequent Access").monthly_cost, d("5"));
        assert_eq!(find(&c, "Provisioned throughput").monthly_cost, d("60"));
        // One Zone: $0.16 × 50 = 8.
        let c = components(price_after_in(
            "aws_efs_file_system",
            json!({"availability_zone_name": "us-east-1a"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(find(&c, "Storage (One Zone)").monthly_cost, d("8"));
    }

    #[test]
    fn ecr_storage_is_usage_based() {
        // $0.10/GB-month × 25 = 2.50.
        let usage = Usage::none().with_type_default("aws_ecr_repository", "storage_gb", d("25"));
        let c = components(price_after_in(
            "aws_ecr_repository",
            json!({"name": "app"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("2.5"));
        assert!(c[0].usage_based);
    }

    #[test]
    fn backup_vault_storage_comes_from_the_usage_file() {
        // us-east-1 (processed/backup.json, 2025-11-10): 500 GB warm × $0.05 = 25, 1,000
        // GB cold × $0.01 = 10, DynamoDB 200 GB × $0.10 = 20.
        let usage = Usage::none()
            .with_type_default("aws_backup_vault", "storage_gb", d("500"))
            .with_type_default("aws_backup_vault", "cold_storage_gb", d("1000"))
            .with_type_default("aws_backup_vault", "dynamodb_storage_gb", d("200"));
        let c = components(price_after_in(
            "aws_backup_vault",
            json!({"name": "vault"}),
            "us-east-1",
            &usage,
        ));
        assert_eq!(total(&c), d("55"));
        assert_eq!(c.len(), 3);
        // Without usage: two $0 components, each saying the usage file gave nothing.
        let c = components(price_after("aws_backup_vault", json!({"name": "vault"})));
        assert_eq!(total(&c), d("0"));
        assert!(c.iter().all(|c| {
            c.usage_based
                && c.assumptions
                    .iter()
                    .any(|a| a.starts_with("usage file gives no"))
        }));
    }
}
