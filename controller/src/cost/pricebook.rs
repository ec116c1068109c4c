//! The embedded AWS price book: `controller/data/aws-prices.csv`, compiled into the binary
//! with `include_str!` and parsed once into an index.
//!
//! One row per price. Columns: `service,region,key,unit,usd,source,observed`.
//! - `service`: the pricer's namespace (`ec2`, `ebs`, `rds`, `elb`, `vpc`, ...).
//! - `region`: an AWS region code, or `global` for prices that do not depend on region
//!   (Route 53 hosted zones, CloudFront). A regional lookup falls back to `global`.
//! - `key`: the dimension, e.g. `instance:t3.micro` or `gp3:iops`.
//! - `unit`: what one unit of `usd` buys (`hour`, `GB-month`, `1M requests`, ...).
//! - `usd`: the on-demand list price in USD, as written by AWS (a decimal string).
//! - `source`: where the number was read (a URL or a document title).
//! - `observed`: the date the source showed that price (YYYY-MM-DD).
//!
//! Lines starting with `#` are comments; `# version: <v>` names the book's version.
//! Fields may be wrapped in double quotes (to contain commas); quotes inside fields are
//! not supported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use rust_decimal::Decimal;

use super::error::CostError;

/// The CSV text, embedded at build time.
const PRICE_BOOK_CSV: &str = include_str!("../../data/aws-prices.csv");

/// One price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    /// Pricer namespace, e.g. `ec2`.
    pub service: &'static str,
    /// Region code or `global`.
    pub region: &'static str,
    /// Dimension key, e.g. `instance:t3.micro`.
    pub key: &'static str,
    /// Unit of the price.
    pub unit: &'static str,
    /// USD per unit.
    pub usd: Decimal,
    /// Where the price was read.
    pub source: &'static str,
    /// When the source showed it.
    pub observed: &'static str,
}

type Index = HashMap<&'static str, HashMap<&'static str, HashMap<&'static str, PriceRow>>>;

/// The parsed, indexed price book.
#[derive(Debug)]
pub struct PriceBook {
    version: &'static str,
    rows: usize,
    index: Index,
}

impl PriceBook {
    /// The version string from the `# version:` comment.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// Number of price rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the book has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The price of `key` for `service` in `region`, falling back to the `global` region.
    pub fn get(&self, service: &str, region: &str, key: &str) -> Option<&PriceRow> {
        let by_region = self.index.get(service)?;
        by_region
            .get(region)
            .and_then(|keys| keys.get(key))
            .or_else(|| by_region.get("global").and_then(|keys| keys.get(key)))
    }

    /// Every row, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = &PriceRow> {
        self.index
            .values()
            .flat_map(|regions| regions.values())
            .flat_map(|keys| keys.values())
    }

    /// Parses a price book from CSV text (the embedded one, or a test's).
    pub fn parse(text: &'static str) -> Result<PriceBook, CostError> {
        let mut version = "unversioned";
        let mut index: Index = HashMap::new();
        let mut rows = 0usize;
        let mut saw_header = false;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(v) = comment.trim().strip_prefix("version:") {
                    version = v.trim();
                }
                continue;
            }
            let fields = split_csv_line(line).map_err(|message| CostError::PriceBook {
                line: line_no,
                message,
            })?;
            if !saw_header {
                let expected = [
                    "service", "region", "key", "unit", "usd", "source", "observed",
                ];
                if fields != expected {
                    return Err(CostError::PriceBook {
                        line: line_no,
                        message: format!("the header must be `{}`", expected.join(",")),
                    });
                }
                saw_header = true;
                continue;
            }
            let row = parse_row(&fields).map_err(|message| CostError::PriceBook {
                line: line_no,
                message,
            })?;
            let slot = index
                .entry(row.service)
                .or_default()
                .entry(row.region)
                .or_default();
            if slot.contains_key(row.key) {
                return Err(CostError::PriceBook {
                    line: line_no,
                    message: format!(
                        "duplicate price for {} {} {}",
                        row.service, row.region, row.key
                    ),
                });
            }
            slot.insert(row.key, row);
            rows += 1;
        }
        if !saw_header {
            return Err(CostError::PriceBook {
                line: 1,
                message: "no header row".to_string(),
            });
        }
        Ok(PriceBook {
            version,
            rows,
            index,
        })
    }
}

fn parse_row(fields: &[&'static str]) -> Result<PriceRow, String> {
    let [service, region, key, unit, usd, source, observed] = fields else {
        return Err(format!("expected 7 fields, found {}", fields.len()));
    };
    for (name, value) in [
        ("service", service),
        ("region", region),
        ("key", key),
        ("unit", unit),
        ("source", source),
    ] {
        if value.is_empty() {
            return Err(format!("the {name} field is empty"));
        }
    }
    let usd: Decimal = usd
        .parse()
        .map_err(|e| format!("usd `{usd}` is not a decimal number: {e}"))?;
    if usd.is_sign_negative() {
        return Err(format!("usd `{usd}` is negative"));
    }
    if !is_iso_date(observed) {
        return Err(format!("observed `{observed}` is not a YYYY-MM-DD date"));
    }
    Ok(PriceRow {
        service,
        region,
        key,
        unit,
        usd,
        source,
        observed,
    })
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Splits one CSV line into borrowed fields. Supports `"quoted, fields"` without
/// embedded quotes.
fn split_csv_line(line: &'static str) -> Result<Vec<&'static str>, String> {
    let mut fields = Vec::with_capacity(7);
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| "unterminated quoted field".to_string())?;
            fields.push(&quoted[..end]);
            let after = &quoted[end + 1..];
            if after.is_empty() {
                return Ok(fields);
            }
            rest = after
                .strip_prefix(',')
                .ok_or_else(|| "a quoted field must be followed by a comma".to_string())?;
        } else {
            match rest.find(',') {
                Some(i) => {
                    fields.push(rest[..i].trim());
                    rest = &rest[i + 1..];
                }
                None => {
                    fields.push(rest.trim());
                    return Ok(fields);
                }
            }
        }
    }
}

/// Errors of loading the price book with a price cache on top.
#[derive(Debug, thiserror::Error)]
pub enum PriceBookError {
    /// Reading a cache file failed.
    #[error(
        "cannot read the price cache {path}: {source}; pass a file written by `tollgate pricebook refresh`"
    )]
    ReadCache {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A cache file is malformed.
    #[error(
        "the price cache {path} is invalid at line {line}: {message}; regenerate it with `tollgate pricebook refresh --out {path}`"
    )]
    Cache {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The embedded book is invalid (a build-time data bug).
    #[error(transparent)]
    Embedded(#[from] CostError),
}

/// The columns of a price book and of a price cache.
pub const HEADER: &str = "service,region,key,unit,usd,source,observed";

static BOOK: OnceLock<Result<PriceBook, (usize, String)>> = OnceLock::new();

/// The embedded price book, parsed on first use.
pub fn embedded() -> Result<&'static PriceBook, CostError> {
    let parsed = BOOK.get_or_init(|| {
        PriceBook::parse(PRICE_BOOK_CSV).map_err(|e| match e {
            CostError::PriceBook { line, message } => (line, message),
            other => (0, other.to_string()),
        })
    });
    match parsed {
        Ok(book) => Ok(book),
        Err((line, message)) => Err(CostError::PriceBook {
            line: *line,
            message: message.clone(),
        }),
    }
}

fn csv_field(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if clean.contains(',') {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

/// One CSV line of a price book or cache: a field with a comma is quoted; double quotes
/// and line breaks inside a field become `'` and a space.
pub fn csv_line(fields: [&str; 7]) -> String {
    let mut line = fields.map(csv_field).join(",");
    line.push('\n');
    line
}

/// Books built from a cache, by cache text: a book is built (and its text kept) once per
/// distinct cache content, so loading the same cache again costs nothing.
static WITH_CACHE: OnceLock<Mutex<HashMap<String, &'static PriceBook>>> = OnceLock::new();

/// The embedded price book, or the embedded book with the rows of `cache` on top (a row
/// of the cache replaces the embedded row with the same service, region and key, or adds
/// one). The version is then `<embedded>+cache:<date>`.
pub fn load(cache: Option<&Path>) -> Result<&'static PriceBook, PriceBookError> {
    let embedded = embedded()?;
    let Some(path) = cache else {
        return Ok(embedded);
    };
    let text = std::fs::read_to_string(path).map_err(|source| PriceBookError::ReadCache {
        path: path.to_path_buf(),
        source,
    })?;
    let books = WITH_CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(book) = books.lock().ok().and_then(|b| b.get(&text).copied()) {
        return Ok(book);
    }
    let book = merge(embedded, &text).map_err(|(line, message)| PriceBookError::Cache {
        path: path.to_path_buf(),
        line,
        message,
    })?;
    if let Ok(mut b) = books.lock() {
        b.insert(text, book);
    }
    Ok(book)
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn merge(embedded: &PriceBook, cache_text: &str) -> Result<&'static PriceBook, (usize, String)> {
    let cache = PriceBook::parse(leak(cache_text.to_string())).map_err(|e| match e {
        CostError::PriceBook { line, message } => (line, message),
        other => (0, other.to_string()),
    })?;
    let version = match cache.version() {
        "unversioned" => "cache".to_string(),
        v if v.starts_with("cache:") => v.to_string(),
        v => format!("cache:{v}"),
    };
    let mut rows: BTreeMap<(&str, &str, &str), [String; 7]> = BTreeMap::new();
    for book in [embedded, &cache] {
        for r in book.rows() {
            rows.insert(
                (r.service, r.region, r.key),
                [
                    r.service.to_string(),
                    r.region.to_string(),
                    r.key.to_string(),
                    r.unit.to_string(),
                    r.usd.to_string(),
                    r.source.to_string(),
                    r.observed.to_string(),
                ],
            );
        }
    }
    let mut text = format!("# version: {}+{version}\n{HEADER}\n", embedded.version());
    for fields in rows.values() {
        text.push_str(&csv_line([
            &fields[0], &fields[1], &fields[2], &fields[3], &fields[4], &fields[5], &fields[6],
        ]));
    }
    let merged = PriceBook::parse(leak(text)).map_err(|e| (0, e.to_string()))?;
    Ok(Box::leak(Box::new(merged)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SMALL: &str = "# version: test-1\nservice,region,key,unit,usd,source,observed\nec2,us-east-1,instance:t3.micro,hour,0.0104,\"AWS, page\",2026-01-19\nroute53,global,zone,month,0.50,https://aws.amazon.com/route53/pricing/,2026-01-01\n";

    #[test]
    fn parses_rows_quotes_and_version() {
        let book = PriceBook::parse(SMALL).unwrap();
        assert_eq!(book.version(), "test-1");
        assert_eq!(book.len(), 2);
        let row = book.get("ec2", "us-east-1", "instance:t3.micro").unwrap();
        assert_eq!(row.usd, Decimal::new(104, 4));
        assert_eq!(row.source, "AWS, page");
    }

    #[test]
    fn falls_back_to_global() {
        let book = PriceBook::parse(SMALL).unwrap();
        assert!(book.get("route53", "eu-west-1", "zone").is_some());
        assert!(book.get("ec2", "eu-west-1", "instance:t3.micro").is_none());
    }

    #[test]
    fn rejects_bad_rows() {
        let bad_price =
            "service,region,key,unit,usd,source,observed\nec2,r,k,hour,abc,s,2026-01-01\n";
        let err = PriceBook::parse(bad_price).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let dup = "service,region,key,unit,usd,source,observed\nec2,r,k,hour,1,s,2026-01-01\nec2,r,k,hour,1,s,2026-01-01\n";
        assert!(
            PriceBook::parse(dup)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
        let no_date = "service,region,key,unit,usd,source,observed\nec2,r,k,hour,1,s,yesterday\n";
        assert!(PriceBook::parse(no_date).is_err());
        let no_source = "service,region,key,unit,usd,source,observed\nec2,r,k,hour,1,,2026-01-01\n";
        assert!(PriceBook::parse(no_source).is_err());
    }

    #[test]
    fn embedded_book_is_valid_and_sourced() {
        let book = embedded().unwrap();
        assert!(book.len() > 100, "only {} rows", book.len());
        assert_ne!(book.version(), "unversioned");
        for row in book.rows() {
            assert!(!row.source.is_empty(), "{row:?}");
            assert!(row.observed.starts_with("20"), "{row:?}");
        }
    }

    /// The regions the book promises prices for: every price in us-east-1 (instance hours,
    /// storage, requests, capacity units, …) must be in each of them too, so a resource
    /// priced in one supported region is priced in all.
    #[test]
    fn embedded_book_prices_every_dimension_in_every_supported_region() {
        let book = embedded().unwrap();
        // Instance catalogues are excepted: AWS sells each instance type in some regions only
        // (the generated rows take every type from AWS's files; see `instance_catalogue`).
        let reference: Vec<&PriceRow> = book
            .rows()
            .filter(|r| r.region == "us-east-1" && !is_instance_catalogue(r))
            .collect();
        assert!(
            reference.len() > 40,
            "only {} us-east-1 rows",
            reference.len()
        );
        let missing: Vec<String> = [
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-1",
        ]
        .iter()
        .flat_map(|region| {
            reference
                .iter()
                .filter(|r| book.get(r.service, region, r.key).is_none())
                .map(move |r| format!("{} {} {region}", r.service, r.key))
        })
        // AWS's own mq.json has no EU (Ireland) price for ActiveMQ's EFS storage (nor had
        // its February 2025 version): such a broker is unpriced, saying so.
        .filter(|m| m != "mq storage:efs eu-west-1")
        .collect();
        assert!(missing.is_empty(), "missing: {missing:?}");
    }

    fn is_instance_catalogue(row: &PriceRow) -> bool {
        matches!(row.service, "ec2" | "elasticache")
            || (matches!(row.service, "rds" | "docdb") && row.key.starts_with("instance"))
            || (row.service == "msk" && row.key.starts_with("broker:"))
            || (row.service == "redshift" && row.key.starts_with("node:"))
            || (row.service == "opensearch" && row.key.starts_with("instance:"))
            || (row.service == "mq" && row.key.starts_with("broker:"))
    }

    /// The generated catalogue holds every commercial region of AWS's price files, with
    /// previous generations (m3, r3) as well as current ones.
    #[test]
    fn instance_catalogue_covers_every_commercial_region() {
        let book = embedded().unwrap();
        let mut regions: BTreeMap<&str, usize> = BTreeMap::new();
        for row in book.rows().filter(|r| r.service == "ec2") {
            *regions.entry(row.region).or_default() += 1;
        }
        assert_eq!(regions.len(), 34, "{regions:?}");
        assert!(regions.values().all(|n| *n > 150), "{regions:?}");
        for (service, region, key) in [
            ("ec2", "us-east-1", "instance:m3.medium"),
            ("ec2", "eu-west-1", "instance:r3.large"),
            ("ec2", "ap-northeast-1", "instance:c7i.large"),
            ("ec2", "sa-east-1", "instance:i4i.large"),
            ("ec2", "ap-south-1", "instance:g5.xlarge"),
            (
                "rds",
                "eu-west-2",
                "instance-multi-az:postgres:db.r6g.large",
            ),
            (
                "rds",
                "ca-central-1",
                "instance:aurora-postgresql:db.r6g.large",
            ),
            (
                "elasticache",
                "ap-southeast-2",
                "valkey-node:cache.r7g.large",
            ),
        ] {
            assert!(
                book.get(service, region, key).is_some(),
                "{service} {region} {key}"
            );
        }
    }

    #[test]
    fn a_bad_cache_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(
            &path,
            format!("{HEADER}\nec2,us-east-1,k,hour,abc,s,2026-01-01\n"),
        )
        .unwrap();
        let err = load(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("pricebook refresh"),
            "{err}"
        );
        let missing = load(Some(&dir.path().join("none.csv")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read the price cache"), "{missing}");
    }
}
