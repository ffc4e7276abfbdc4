//! The verdict: each of the study's claims as one row, its statistic on the real head beside
//! what the same statistic reads when the claim is false (Gaussian rows) and when it holds (ALD
//! rows), and what follows, worded by a fixed rule (docs/DESIGN.md 2.6).
//!
//! Shares of classes are judged against the binomial band of a 5 % test: under a true null, at
//! most about 5 % of classes reject it, and the 99.9 % upper quantile of Bin(n, 0.05)/n is the
//! most a calibrated test can plausibly give. Head-level statistics (median R², ALD-win shares by
//! depth) are judged by whether they fall inside the 95 % interval of replicate heads.

use std::fmt::Write as _;

use statrs::distribution::{Binomial, DiscreteCDF};

use crate::bootstrap::{Bootstrap, HeadTests, Interval};
use crate::tree::TreeDigest;

/// What a statistic reads on one kind of rows: a single head's value, or an interval over
/// replicate heads.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Reading {
    Value { value: f64 },
    Interval { median: f64, lo: f64, hi: f64 },
}

impl Reading {
    fn value(value: f64) -> Self {
        Reading::Value { value }
    }

    fn interval(i: Interval) -> Self {
        Reading::Interval {
            median: i.median,
            lo: i.lo,
            hi: i.hi,
        }
    }

    fn centre(&self) -> f64 {
        match *self {
            Reading::Value { value } => value,
            Reading::Interval { median, .. } => median,
        }
    }

    fn contains(&self, x: f64) -> bool {
        match *self {
            Reading::Value { value } => x == value,
            Reading::Interval { lo, hi, .. } => x >= lo && x <= hi,
        }
    }

    pub fn render(&self, pct: bool) -> String {
        let f = |x: f64| fmt(x, pct);
        match *self {
            Reading::Value { value } => f(value),
            Reading::Interval { median, lo, hi } => format!("{} [{}, {}]", f(median), f(lo), f(hi)),
        }
    }
}

fn fmt(x: f64, pct: bool) -> String {
    if !x.is_finite() {
        "—".into()
    } else if pct {
        format!("{:.1} %", 100.0 * x)
    } else {
        format!("{x:.4}")
    }
}

/// One claim of the study, tested.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Claim {
    pub claim: String,
    pub statistic: String,
    /// The value on the real head (and, for shares of nodes, its 95 % binomial interval).
    pub observed: Reading,
    pub under_gauss: Option<Reading>,
    pub under_ald: Option<Reading>,
    /// `supported`, `partly`, `not supported`, `uninformative` or `untested`.
    pub outcome: String,
    pub follows: String,
    /// Shares are printed as percentages.
    #[serde(skip)]
    pub percent: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    pub replicates: usize,
    pub seed: Option<u64>,
    pub tree_replicates: usize,
    pub classes_tested: usize,
    /// The most a calibrated 5 % test rejects among this many classes (99.9 % binomial quantile).
    pub null_band: f64,
    pub claims: Vec<Claim>,
}

/// The 99.9 % upper quantile of Bin(n, 0.05), as a share of n.
pub fn null_band(n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    match Binomial::new(0.05, n as u64) {
        Ok(b) => b.inverse_cdf(0.999) as f64 / n as f64,
        Err(_) => f64::NAN,
    }
}

/// Wilson's 95 % interval for `k` successes in `n`.
pub fn wilson(k: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval {
            median: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let (z, nf) = (1.959_963_984_540_054, n as f64);
    let p = k as f64 / nf;
    let denom = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / denom;
    Interval {
        median: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    }
}

/// `x ≤ band`, or unknown (NaN): no evidence the test is off.
fn below(x: f64, band: f64) -> bool {
    x.is_nan() || x <= band
}

/// Rule for a share of classes that reject a null: above the band or not, most or some.
fn rejecting_share(
    share: f64,
    band: f64,
    under_gauss: f64,
    n: usize,
    what: &str,
    calibrated: bool,
) -> (String, String) {
    if !share.is_finite() {
        return ("untested".into(), "no class could be tested".into());
    }
    let count = (share * n as f64).round() as usize;
    let warn = if calibrated {
        String::new()
    } else {
        " — but rows where the null holds reach the same share: this test is not calibrated here"
            .to_owned()
    };
    // A share counts only above the calibrated band and above what Gaussian rows (the claim
    // false) plausibly give.
    let gauss_band = upper_band(n, under_gauss);
    if share <= band.max(gauss_band) {
        let why = if gauss_band > band {
            format!(
                "no more than Gaussian rows plausibly give (≤ {})",
                fmt(gauss_band, true)
            )
        } else {
            format!(
                "no more than a calibrated 5 % test gives when the null holds (≤ {})",
                fmt(band, true)
            )
        };
        (
            "not supported".into(),
            format!("{what} for {count} of {n} classes, {why}{warn}"),
        )
    } else if share >= 0.5 {
        (
            "supported".into(),
            format!("{what} for most classes ({count} of {n}){warn}"),
        )
    } else {
        (
            "partly".into(),
            format!(
                "{what} for a minority of classes ({count} of {n}); the others are not told \
                 apart{warn}"
            ),
        )
    }
}

/// The 99.9 % upper quantile of Bin(n, rate), as a share of n (0 for a rate of 0 or NaN).
fn upper_band(n: usize, rate: f64) -> f64 {
    if n == 0 || rate.is_nan() || rate <= 0.0 {
        return 0.0;
    }
    match Binomial::new(rate.min(1.0), n as u64) {
        Ok(b) => b.inverse_cdf(0.999) as f64 / n as f64,
        Err(_) => 0.0,
    }
}

/// Rule for a head-level statistic against the two nulls' intervals.
fn between_nulls(obs: Reading, gauss: Reading, ald: Reading) -> (String, String) {
    let x = obs.centre();
    if !x.is_finite() {
        return ("untested".into(), "no value on the real head".into());
    }
    // A statistic that reads the same whether the claim is false or true says nothing, wherever
    // the real head falls.
    let apart = match (gauss, ald) {
        (Reading::Interval { lo: a, hi: b, .. }, Reading::Interval { lo: c, hi: d, .. }) => {
            b < c || d < a
        }
        (g, a) => g.centre() != a.centre(),
    };
    if !apart {
        return (
            "uninformative".into(),
            "Gaussian rows (the claim false) and ALD rows (the claim true) give the same value: \
             this statistic cannot tell them apart"
                .into(),
        );
    }
    let (in_g, in_a) = match obs {
        Reading::Interval { lo, hi, .. } => {
            let overlaps = |r: Reading| match r {
                Reading::Interval { lo: a, hi: b, .. } => lo <= b && a <= hi,
                Reading::Value { value } => value >= lo && value <= hi,
            };
            (overlaps(gauss), overlaps(ald))
        }
        Reading::Value { .. } => (gauss.contains(x), ald.contains(x)),
    };
    match (in_g, in_a) {
        (true, true) => (
            "uninformative".into(),
            "Gaussian and ALD rows both give this value: it cannot tell them apart".into(),
        ),
        (true, false) => (
            "not supported".into(),
            "Gaussian rows give this value and ALD rows do not".into(),
        ),
        (false, true) => (
            "supported".into(),
            "ALD rows give this value and Gaussian rows do not".into(),
        ),
        (false, false) => {
            let (dg, da) = ((x - gauss.centre()).abs(), (x - ald.centre()).abs());
            if dg < da {
                (
                    "not supported".into(),
                    "outside both nulls, and nearer what Gaussian rows give than ALD rows".into(),
                )
            } else {
                (
                    "partly".into(),
                    "outside both nulls, and nearer what ALD rows give than Gaussian rows".into(),
                )
            }
        }
    }
}

/// What every claim is judged with: the real head's tests, the witness heads', and the band.
struct Judge<'a> {
    boot: &'a Bootstrap,
    obs: &'a HeadTests,
    n: usize,
    band: f64,
}

impl Judge<'_> {
    /// A claim read as a share of classes rejecting a null, beside the witness heads' shares.
    fn share_claim(
        &self,
        (claim, statistic, what): (&str, &str, &str),
        get: impl Fn(&HeadTests) -> f64,
        calibrated: bool,
    ) -> Claim {
        let (wg, wa) = (&self.boot.witness_gauss, &self.boot.witness_ald);
        let (outcome, follows) =
            rejecting_share(get(self.obs), self.band, get(wg), self.n, what, calibrated);
        Claim {
            claim: claim.into(),
            statistic: statistic.into(),
            observed: Reading::value(get(self.obs)),
            under_gauss: Some(Reading::value(get(wg))),
            under_ald: Some(Reading::value(get(wa))),
            outcome,
            follows,
            percent: true,
        }
    }

    fn ald_rather_than_gauss(&self) -> Claim {
        let calibrated = below(self.boot.witness_gauss.share_reject_gauss(), self.band);
        self.share_claim(
            (
                "each class follows an ALD rather than a Gaussian",
                "share of classes with q_boot_gauss < 0.05",
                "the Gaussian is rejected (the ALD fits better than it does on Gaussian rows)",
            ),
            HeadTests::share_reject_gauss,
            calibrated,
        )
    }

    /// Adequacy: the share the KS test rejects is what must stay within the band; a KS test that
    /// passes Gaussian rows as well has no power to tell adequacy.
    fn ald_adequate(&self) -> Claim {
        let (band, wg, wa) = (self.band, &self.boot.witness_gauss, &self.boot.witness_ald);
        let rejected = |t: &HeadTests| 1.0 - t.share_ks_adequate();
        let (r, power) = (rejected(self.obs), rejected(wg));
        let (outcome, mut follows) = if !r.is_finite() {
            ("untested", "no class could be tested".to_owned())
        } else if r <= band {
            let why = format!(
                "the KS test rejects the fitted ALD for no more classes than a calibrated 5 % \
                 test does on ALD rows (≤ {})",
                fmt(band, true)
            );
            if below(power, band) {
                let weak = format!(
                    "{why} — but it passes Gaussian rows as well ({} rejected): no power at this \
                     row length",
                    fmt(power, true)
                );
                ("uninformative", weak)
            } else if power < 0.5 {
                let weak = format!(
                    "{why} — with little power at this row length: it rejects only {} of \
                     Gaussian rows",
                    fmt(power, true)
                );
                ("supported", weak)
            } else {
                ("supported", why)
            }
        } else if r < 0.5 {
            let why = format!(
                "the fitted ALD is rejected (KS) for {} of classes",
                fmt(r, true)
            );
            ("partly", why)
        } else {
            let why = format!(
                "the fitted ALD is rejected (KS) for most classes ({})",
                fmt(r, true)
            );
            ("not supported", why)
        };
        if !below(rejected(wa), band) {
            follows.push_str(" — but ALD rows are rejected as often: not calibrated here");
        }
        Claim {
            claim: "the fitted ALD is adequate".into(),
            statistic: "share of classes with q_boot_ks ≥ 0.05".into(),
            observed: Reading::value(self.obs.share_ks_adequate()),
            under_gauss: Some(Reading::value(wg.share_ks_adequate())),
            under_ald: Some(Reading::value(wa.share_ks_adequate())),
            outcome: outcome.into(),
            follows,
            percent: true,
        }
    }

    /// A head-level statistic beside its intervals over replicate heads.
    fn head_level(
        claim: String,
        statistic: &str,
        observed: Reading,
        (gauss, ald): (&[f64], &[f64]),
        percent: bool,
    ) -> Claim {
        let (g, a) = (
            Reading::interval(Interval::of(gauss)),
            Reading::interval(Interval::of(ald)),
        );
        let (outcome, follows) = between_nulls(observed, g, a);
        Claim {
            claim,
            statistic: statistic.into(),
            observed,
            under_gauss: Some(g),
            under_ald: Some(a),
            outcome,
            follows,
            percent,
        }
    }

    fn study_r2(&self) -> Vec<Claim> {
        let (obs, boot) = (self.obs, self.boot);
        [
            ("positive", obs.median_r2_pos, &boot.median_r2_pos),
            ("negative", obs.median_r2_neg, &boot.median_r2_neg),
        ]
        .into_iter()
        .map(|(part, observed, null)| {
            Self::head_level(
                format!("the study's R² supports the ALD ({part} part)"),
                &format!(
                    "median seed R² ({part} part); nulls: median [95 % interval] over replicate \
                     heads"
                ),
                Reading::value(observed),
                (&null.gauss, &null.ald),
                false,
            )
        })
        .collect()
    }

    fn parts_by_depth(&self, trees: &TreeDigest) -> Vec<Claim> {
        let Some(null) = self.boot.trees.as_ref() else {
            return Vec::new();
        };
        fn at(v: &[Vec<f64>], d: usize) -> &[f64] {
            v.get(d).map_or(&[], |x| &x[..])
        }
        trees
            .ald_wins_by_depth()
            .into_iter()
            .enumerate()
            .skip(1)
            .filter(|(_, (_, nodes))| *nodes > 0)
            .map(|(d, (wins, nodes))| {
                Self::head_level(
                    format!("the parts follow an ALD again (depth {d}, {nodes} nodes)"),
                    "share of nodes the ALD wins by AIC; observed with its 95 % binomial interval",
                    Reading::interval(wilson(wins, nodes)),
                    (at(&null.gauss, d), at(&null.ald, d)),
                    true,
                )
            })
            .collect()
    }

    /// The asymptotic tests, with their calibration read off the witness heads where their null
    /// holds (Laplace rows for the LRT; Gaussian rows, where Vuong's test must not reject).
    fn asymptotic(&self) -> Vec<Claim> {
        let (wg, wl) = (&self.boot.witness_gauss, &self.boot.witness_laplace);
        let tests = [
            (
                (
                    "the asymmetry is real (κ ≠ 1; LRT against the Laplace, χ²(1))",
                    "share of classes with p_lrt_laplace < 0.05",
                    "the Laplace (κ = 1) is rejected",
                ),
                HeadTests::share_lrt as fn(&HeadTests) -> f64,
                wl.share_lrt(),
                "on Laplace rows it rejects",
                "calibrated at this row length",
                "NOT calibrated at this row length (μ̂ is an order statistic): rely on the bootstrap",
            ),
            (
                (
                    "each class follows an ALD rather than a Gaussian (Vuong, asymptotic)",
                    "share of classes with p_vuong_gauss < 0.05",
                    "Vuong's test prefers the ALD",
                ),
                HeadTests::share_vuong,
                wg.share_vuong(),
                "on Gaussian rows it rejects",
                "no more than 5 % (conservative there), so a rejection counts",
                "NOT calibrated at this row length: rely on p_boot_gauss",
            ),
        ];
        tests
            .into_iter()
            .map(|(words, get, size, on_null, good, bad)| {
                let calibrated = below(size, self.band);
                let mut c = self.share_claim(words, get, calibrated);
                let verdict = if calibrated { good } else { bad };
                c.follows = format!("{}; {on_null} {}: {verdict}", c.follows, fmt(size, true));
                c
            })
            .collect()
    }
}

/// Builds the verdict from a head's bootstrap and, with split trees, its trees.
pub fn build(boot: &Bootstrap, trees: Option<&TreeDigest>) -> Verdict {
    let obs = &boot.observed;
    let n = obs.p_gauss.iter().filter(|p| p.is_finite()).count();
    let judge = Judge {
        boot,
        obs,
        n,
        band: null_band(n),
    };
    let mut claims = vec![judge.ald_rather_than_gauss(), judge.ald_adequate()];
    // With B < 20 no bootstrap p-value can fall below 0.05: those claims cannot be decided.
    if 1.0 / (boot.replicates as f64 + 1.0) >= 0.05 {
        for c in &mut claims {
            c.outcome = "untested".into();
            c.follows = format!(
                "B = {} replicates cannot give a p-value below 0.05 (the smallest is 1/(B + 1)): \
                 run --bootstrap 99 or more",
                boot.replicates
            );
        }
    }
    claims.extend(judge.study_r2());
    if let Some(trees) = trees {
        claims.extend(judge.parts_by_depth(trees));
    }
    claims.extend(judge.asymptotic());
    Verdict {
        replicates: boot.replicates,
        seed: Some(boot.seed),
        tree_replicates: boot.trees.as_ref().map_or(0, |t| t.replicates),
        classes_tested: n,
        null_band: judge.band,
        claims,
    }
}

/// The `## Verdict` section of `summary.md`.
pub fn markdown(v: &Verdict) -> String {
    let mut s = String::from("## Verdict\n\n");
    let _ = writeln!(
        s,
        "Each claim's statistic on this head, beside what it reads on heads drawn from every class's \
         own fitted Gaussian (the claim false) and fitted ALD (the claim true), put through the same \
         tests: parametric bootstrap, B = {} replicates per class and model, seed {}{}. A calibrated \
         5 % test rejects at most {} of the {} classes tested when its null holds.\n",
        v.replicates,
        v.seed.map_or("—".to_owned(), |s| s.to_string()),
        if v.tree_replicates > 0 {
            format!(", {} replicate heads per model for the split trees", v.tree_replicates)
        } else {
            String::new()
        },
        fmt(v.null_band, true),
        v.classes_tested,
    );
    s.push_str(
        "| claim | statistic | observed | under Gaussian rows | under ALD rows | outcome | what follows |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    for c in &v.claims {
        let r = |x: &Option<Reading>| x.as_ref().map_or("—".to_owned(), |r| r.render(c.percent));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | **{}** | {} |",
            c.claim,
            c.statistic,
            c.observed.render(c.percent),
            r(&c.under_gauss),
            r(&c.under_ald),
            c.outcome,
            c.follows
        );
    }
    s.push('\n');
    s
}

/// The section when the bootstrap did not run.
pub fn markdown_off(reason: &str) -> String {
    format!(
        "## Verdict\n\nNo calibrated verdict: {reason}. The statistics below have no null beside \
         them; pass `--bootstrap B` (e.g. 99) for p-values and the verdict table.\n\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: f64, hi: f64) -> Reading {
        Reading::Interval {
            median: (lo + hi) / 2.0,
            lo,
            hi,
        }
    }

    #[test]
    fn head_level_statistics_are_judged_against_both_nulls() {
        let (g, a) = (iv(0.82, 0.84), iv(0.87, 0.89));
        let outcome = |x: f64| between_nulls(Reading::value(x), g, a).0;
        assert_eq!(outcome(0.83), "not supported");
        assert_eq!(outcome(0.88), "supported");
        assert_eq!(
            outcome(0.845),
            "not supported",
            "outside both, nearer Gaussian rows"
        );
        assert_eq!(outcome(0.86), "partly", "outside both, nearer ALD rows");
        // Nulls that overlap make any reading uninformative, even one outside both.
        let same = between_nulls(Reading::value(0.5), iv(0.99, 1.0), iv(0.98, 1.0)).0;
        assert_eq!(same, "uninformative");
        assert_eq!(between_nulls(Reading::value(f64::NAN), g, a).0, "untested");
    }

    #[test]
    fn shares_must_beat_the_band_and_what_gaussian_rows_give() {
        let band = null_band(1000);
        assert!(band > 0.05 && band < 0.08, "{band}");
        let outcome =
            |share: f64, gauss: f64| rejecting_share(share, band, gauss, 1000, "x", true).0;
        assert_eq!(outcome(0.03, 0.0), "not supported");
        assert_eq!(outcome(0.30, 0.0), "partly");
        assert_eq!(outcome(0.90, 0.0), "supported");
        // 20 % rejecting reads like Gaussian rows that reject 19 %.
        assert_eq!(outcome(0.20, 0.19), "not supported");
        assert_eq!(outcome(0.99, 0.19), "supported");
        assert_eq!(outcome(f64::NAN, 0.0), "untested");
    }

    #[test]
    fn wilson_intervals() {
        let w = wilson(50, 100);
        assert!(
            (w.lo - 0.4038).abs() < 1e-4 && (w.hi - 0.5962).abs() < 1e-4,
            "{w:?}"
        );
        let all = wilson(20, 20);
        assert_eq!(all.hi, 1.0);
        assert!((all.lo - 0.8389).abs() < 1e-4, "{all:?}");
    }
}
