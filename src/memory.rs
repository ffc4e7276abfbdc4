//! The memory a run will hold, estimated from the head's shape and the options before any of it
//! is allocated, and checked against what the machine (or its cgroup) has left. A run that would
//! not fit is refused at once with the options that change it, instead of swapping for minutes
//! and then being killed with its output half-made.

use crate::analysis::ClassResult;
use crate::backend::{RowSummary, SegmentStats};
use crate::error::{Error, Result};
use crate::tree::{Node, Shape, SplitOptions};

/// Bytes this process may still allocate: `ALDFIT_MEMORY_LIMIT` (e.g. `512M`, `4G`) if set,
/// else the smaller of the kernel's `MemAvailable` and the cgroup's limit less its usage.
/// `None` where neither can be read (then nothing is refused).
pub fn available() -> Option<u64> {
    if let Ok(s) = std::env::var("ALDFIT_MEMORY_LIMIT") {
        return parse_size(&s);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let cgroup =
        read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `123`, `64K`, `512M`, `4G`, `1T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (digits, shift) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 10),
        'M' | 'm' => (&s[..s.len() - 1], 20),
        'G' | 'g' => (&s[..s.len() - 1], 30),
        'T' | 't' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// `1.5 GB`, `300 MB`, `12 KB` (powers of 1024, as `free -h`).
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else if v < 10.0 {
        format!("{v:.1} {}", units[u])
    } else {
        format!("{v:.0} {}", units[u])
    }
}

/// Refuses `need` bytes for `what` when more than 90 % of what is available; `advice` says
/// which options lower it.
pub fn check(need: u64, what: &str, advice: &str) -> Result<()> {
    let Some(avail) = available() else {
        return Ok(());
    };
    if need as f64 <= 0.9 * avail as f64 {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{what} needs about {} of memory but {} is available; {advice} (ALDFIT_MEMORY_LIMIT \
         overrides what is available)",
        human(need),
        human(avail)
    )))
}

/// `a × b` in bytes, saturating: an estimate past u64 is simply too big.
fn times(a: usize, b: usize) -> u64 {
    (a as u64).saturating_mul(b as u64)
}

/// What the per-class analysis holds for a head of `classes` × `cols` read in chunks of
/// `chunk_rows`: every class's results, one chunk (rows, the backend's copy, sort scratch and
/// summaries), the pooled fit's copy of every weight, and the bootstrap's per-class tests.
pub fn analysis_bytes(
    classes: usize,
    cols: usize,
    chunk_rows: usize,
    pooled: bool,
    bootstrap: bool,
) -> u64 {
    let results = times(classes, std::mem::size_of::<ClassResult>());
    let chunk = times(chunk_rows, cols.saturating_mul(4 * 3))
        .saturating_add(times(chunk_rows, std::mem::size_of::<RowSummary>()));
    let pool = if pooled {
        times(classes, cols.saturating_mul(8))
    } else {
        0
    };
    // Four heads' tests (observed and three witnesses), six f64 a class each, and the counts.
    let bootstrap = if bootstrap {
        times(classes, 4 * 6 * 8 + 32)
    } else {
        0
    };
    results
        .saturating_add(chunk)
        .saturating_add(pool)
        .saturating_add(bootstrap)
}

/// The most nodes one class's tree can have. Each split makes two non-empty parts of its node,
/// so a tree has fewer than 2·cols nodes; a node splits only at depth < the limit and with at
/// least `min_size` values, so a level has at most cols / min_size split nodes, and a chain
/// two.
pub fn max_nodes(cols: usize, opts: &SplitOptions) -> usize {
    let m = opts.min_size.max(1);
    let limit = opts.depth_limit();
    let per_level = cols / m;
    let split = (0..limit)
        .map(|d| {
            let shape = match opts.shape {
                Shape::Full if d < 63 => 1usize << d,
                Shape::Full => usize::MAX,
                Shape::Chains => 1 + usize::from(d > 0),
            };
            shape.min(per_level)
        })
        .fold(0usize, usize::saturating_add);
    let split = split.min(cols.saturating_sub(1));
    1 + 2 * split
}

/// What the split trees of a head hold while they grow: one chunk of `chunk_rows` classes' trees
/// at a time (each node with its path, one character a level, and each class's feature order),
/// the chunk's widest level (each pending node's segment, statistics and path), and the digest
/// the summary keeps of every class (the trees themselves stream to their files).
pub fn tree_bytes(classes: usize, cols: usize, chunk_rows: usize, opts: &SplitOptions) -> u64 {
    let nodes = max_nodes(cols, opts);
    let depth = opts.depth_limit().min(nodes);
    // A path string's heap block: its characters rounded up, plus the allocator's header.
    let path = depth.div_ceil(2).div_ceil(16) * 16 + 16;
    let per_node = std::mem::size_of::<Node>() + path;
    let per_class = times(nodes, per_node)
        .saturating_add(times(cols, 4))
        .saturating_add(64);
    let widest = match opts.shape {
        Shape::Full => 2 * (cols / opts.min_size.max(1)).max(1),
        Shape::Chains => 2,
    }
    .min(nodes);
    let pending = std::mem::size_of::<SegmentStats>() + 64 + path;
    let chunk = chunk_rows.min(classes);
    per_class
        .saturating_mul(chunk as u64)
        .saturating_add(times(chunk, widest.saturating_mul(pending)))
        .saturating_add(times(classes, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(human(1536 << 20), "1.5 GB");
        assert_eq!(human(300 << 20), "300 MB");
    }

    #[test]
    fn node_bounds_follow_the_shape() {
        let chains = SplitOptions::default();
        // The study's chains: the root, then two chains of at most depth_limit − 1 splits.
        assert_eq!(max_nodes(1280, &chains), 1 + 2 * (1 + 2 * 47));
        // Rows shorter than --min-size are never split.
        assert_eq!(max_nodes(2, &chains), 1);
        // 39 values: at most one node a level has 20, and each split sheds one at least.
        assert_eq!(max_nodes(39, &chains), 1 + 2 * 38);
        let full = SplitOptions {
            shape: Shape::Full,
            min_size: 2,
            ..chains
        };
        assert_eq!(max_nodes(1280, &full), 2 * 1280 - 1);
        let shallow = SplitOptions {
            max_depth: Some(3),
            ..full
        };
        assert_eq!(max_nodes(1280, &shallow), 1 + 2 * (1 + 2 + 4));
    }
}
