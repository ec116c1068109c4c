//! Writing the price cache file that `--price-cache` loads on top of the embedded book.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{CacheRow, RefreshError, Refreshed};
use crate::cost::{PRICE_BOOK_HEADER as HEADER, csv_line};

/// The cache file text: comments, `# version: cache:<date>`, the header, sorted rows.
pub fn cache_csv(refreshed: &Refreshed) -> String {
    let mut out = String::new();
    out.push_str(
        "# tollgate AWS price cache, written by `tollgate pricebook refresh` from the AWS Price List API.\n",
    );
    out.push_str(
        "# Rows override the embedded price book for the same service, region and key (see docs/cost.md).\n",
    );
    out.push_str(&format!("# version: cache:{}\n", refreshed.observed));
    out.push_str(HEADER);
    out.push('\n');
    let mut rows: Vec<&CacheRow> = refreshed.rows.iter().collect();
    rows.sort_by(|a, b| (&a.service, &a.region, &a.key).cmp(&(&b.service, &b.region, &b.key)));
    for row in rows {
        out.push_str(&csv_line([
            &row.service,
            &row.region,
            &row.key,
            &row.unit,
            &row.usd.to_string(),
            &row.source,
            &row.observed,
        ]));
    }
    out
}

/// Writes the cache atomically: a temporary file in the same directory, then a rename.
pub fn write_cache(path: &Path, refreshed: &Refreshed) -> Result<(), RefreshError> {
    let text = cache_csv(refreshed);
    let err = |source| RefreshError::WriteCache {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "price-cache.csv".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}
