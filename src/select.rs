//! Lists of classes on the command line (`--classes`, `--plot-classes`): indices, ranges
//! `A-B` (both ends included) and labels (exact first, then ignoring ASCII case).

use crate::error::{Error, Result};

/// The classes `items` names, in the order given (a range in its order), each below `classes`.
/// `option` names the flag in errors.
pub fn resolve(
    option: &str,
    items: &[String],
    labels: &[String],
    classes: usize,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for item in items {
        let s = item.trim();
        let exists = |k: usize| {
            if k < classes {
                Ok(k)
            } else {
                Err(Error::Invalid(format!(
                    "{option}: class {k} does not exist (the head has {classes}: 0-{})",
                    classes.saturating_sub(1)
                )))
            }
        };
        if let Ok(k) = s.parse::<usize>() {
            out.push(exists(k)?);
        } else if let Some((a, b)) = range(s) {
            if a > b {
                return Err(Error::Invalid(format!(
                    "{option}: the range {s} is empty; write it low-high"
                )));
            }
            exists(b)?;
            out.extend(a..=b);
        } else {
            out.push(label(option, s, labels)?);
        }
    }
    Ok(out)
}

/// `A-B` of two indices, unless a label reads so.
fn range(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn label(option: &str, s: &str, labels: &[String]) -> Result<usize> {
    labels
        .iter()
        .position(|l| l == s)
        .or_else(|| labels.iter().position(|l| l.eq_ignore_ascii_case(s)))
        .ok_or_else(|| {
            let why = if labels.is_empty() {
                " (the head has no labels; pass --labels FILE to name classes)"
            } else {
                ""
            };
            Error::Invalid(format!(
                "{option}: `{}` is neither a class index, a range A-B nor a label{why}",
                crate::text::short(s, 60)
            ))
        })
}

/// `--classes`: the distinct classes named, ascending (the order rows are read and reported).
pub fn classes(items: &[String], labels: &[String], classes: usize) -> Result<Vec<usize>> {
    let mut ids = resolve("--classes", items, labels, classes)?;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(Error::Invalid("--classes names no class".into()));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn indices_ranges_and_labels() {
        let labels = s(&["tench", "great white shark", "black-and-tan", "Ostrich"]);
        let got = classes(&s(&["3", "0-1", "black-and-tan", "ostrich"]), &labels, 4).unwrap();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(
            resolve("--x", &s(&["2-3", "0"]), &labels, 4).unwrap(),
            vec![2, 3, 0]
        );
        for (bad, says) in [
            ("4", "class 4 does not exist (the head has 4: 0-3)"),
            ("2-9", "class 9 does not exist"),
            ("3-1", "the range 3-1 is empty"),
            ("goldfish", "`goldfish` is neither"),
        ] {
            let e = classes(&s(&[bad]), &labels, 4).unwrap_err().to_string();
            assert!(e.contains(says) && e.starts_with("--classes"), "{bad}: {e}");
        }
        let e = classes(&s(&["x"]), &[], 4).unwrap_err().to_string();
        assert!(e.contains("no labels"), "{e}");
    }
}
