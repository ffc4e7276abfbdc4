//! `aldfit bench`: a quick table of how fast each backend is on heads of given shapes, against
//! the one floor that matters for a memory-bound job, one read of the input at the device's
//! measured copy bandwidth (docs/DESIGN.md section 4). Criterion (`cargo bench`) gives the careful
//! statistics; this gives the picture in seconds.

use serde::Serialize;

use crate::ald::AldParams;
use crate::analysis::{self, Options};
use crate::backend::{self, best_time, Backend, Segment, Side};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::synth;

/// One timed stage of one backend on one shape.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub backend: String,
    pub device: String,
    /// `CLASSESxFEATURES` of the head.
    pub shape: String,
    /// `analysis` or `split` (the study's split trees; both end to end from host memory, the
    /// host-to-device copy included), or a primitive on a chunk already on the device: `sort`,
    /// `segment_stats`, `study_line`, `nll_grad`, `generate` (replicate rows drawn on the device) and
    /// `bootstrap` (replicate rows drawn, sorted and summarised: the bootstrap's unit of work).
    pub stage: String,
    /// Rows the stage covered (a primitive runs on one chunk).
    pub rows: usize,
    /// Best of the runs.
    pub seconds: f64,
    /// Input bytes (f32) over seconds.
    pub gb_per_s: f64,
    /// The floor (input bytes at the copy bandwidth) over seconds, in percent.
    pub pct_of_floor: f64,
    /// The device's copy bandwidth measured in this run, read and write counted.
    pub copy_gb_per_s: f64,
    /// Sorted keys per second (the sort only).
    pub gkeys_per_s: Option<f64>,
    /// Replicate values generated (and, for `bootstrap`, sorted and analysed) per second, in
    /// billions: the bootstrap's unit of work.
    pub gvalues_per_s: Option<f64>,
    /// The CPU backend's seconds over these, when the CPU ran the same stage in this run.
    pub speedup_vs_cpu: Option<f64>,
}

/// What a stage counts per second beside bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PerSecond {
    None,
    Keys,
    Values,
}

/// Parses `1000x1280,6625x120` into (classes, features) pairs.
pub fn parse_shapes(s: &str) -> Result<Vec<(usize, usize)>> {
    s.split(',')
        .map(|part| {
            let bad = || {
                Error::Invalid(format!(
                    "shape `{part}` is not CLASSESxFEATURES (e.g. 1000x1280)"
                ))
            };
            let (c, f) = part.trim().split_once(['x', 'X']).ok_or_else(bad)?;
            let (c, f): (usize, usize) =
                (c.parse().map_err(|_| bad())?, f.parse().map_err(|_| bad())?);
            if c == 0 || f == 0 {
                return Err(bad());
            }
            Ok((c, f))
        })
        .collect()
}

/// Times every stage of `b` on a seeded synthetic head of each shape; `runs` timings per stage,
/// the best kept, after one untimed warm-up. The copy bandwidth is measured once per backend,
/// on 256 MiB.
pub fn run(
    b: &mut dyn Backend,
    shapes: &[(usize, usize)],
    runs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Timing>> {
    let info = b.info();
    let copy = b.copy_bandwidth(256 << 20)?;
    let mut out = Vec::new();
    for &(classes, features) in shapes {
        let shape = format!("{classes}x{features}");
        if info.software && classes * features * 4 > 32 << 20 {
            progress(&format!(
                "skipping {shape} on {}: a software adapter would take hours",
                info.name
            ));
            continue;
        }
        progress(&format!("{} {shape}: making the head", info.name));
        let (values, truth) = synth::ald_head(classes, features, 42);
        let head = Head::from_f32(&shape, classes, features, &values)?;
        let mut push = |stage: &str, rows: usize, seconds: f64, per_s: PerSecond| {
            let per = (rows * features) as f64 / seconds / 1e9;
            let bytes = (rows * features * 4) as f64;
            out.push(Timing {
                backend: info.name.clone(),
                device: info.device.clone(),
                shape: shape.clone(),
                stage: stage.into(),
                rows,
                seconds,
                gb_per_s: bytes / seconds / 1e9,
                pct_of_floor: 100.0 * bytes / copy / seconds,
                copy_gb_per_s: copy / 1e9,
                gkeys_per_s: (per_s == PerSecond::Keys).then_some(per),
                gvalues_per_s: (per_s == PerSecond::Values).then_some(per),
                speedup_vs_cpu: None,
            });
        };

        // The per-class analysis, then the same with the study's joint fit (a second, global
        // sort of every weight on the host, whatever the backend).
        for (stage, pooled) in [("analysis", false), ("analysis+joint", true)] {
            progress(&format!("{} {shape}: {stage}", info.name));
            let opts = Options {
                pooled,
                ..Options::default()
            };
            let mut once = || -> Result<()> {
                analysis::analyse(&head, &[], b, &opts, &mut |_| {})?;
                b.synchronize()
            };
            once()?;
            push(stage, classes, best_time(runs, once)?, PerSecond::None);
        }

        progress(&format!("{} {shape}: split trees", info.name));
        let split = crate::tree::SplitOptions::default();
        let mut trees = || -> Result<()> {
            crate::tree::split_head(&head, &[], b, &split, &mut |_| {})?;
            b.synchronize()
        };
        trees()?;
        push("split", classes, best_time(runs, trees)?, PerSecond::None);

        // The primitives on one chunk that stays on the device.
        let rows = b.max_chunk_rows(features).clamp(1, classes);
        let chunk = &values[..rows * features];
        let segs: Vec<Segment> = (0..rows).map(|r| Segment::new(r, 0, features)).collect();
        b.upload(chunk, features)?;
        progress(&format!("{} {shape}: primitives", info.name));
        let mut sort = || -> Result<()> {
            b.sort_uploaded(false)?;
            b.synchronize()
        };
        sort()?;
        push("sort", rows, best_time(runs, sort)?, PerSecond::Keys);
        let t = best_time(runs, || b.segment_stats(&segs).map(|_| ()))?;
        push("segment_stats", rows, t, PerSecond::None);
        let zeros = vec![0f32; rows];
        let neg_end = b.partition_points(&segs, &zeros, false)?;
        let pos_start = b.partition_points(&segs, &zeros, true)?;
        let (pos, neg) = backend::sides(features, &neg_end, &pos_start);
        let t = best_time(runs, || {
            b.study_line(&pos, Side::Positive)?;
            b.study_line(&neg, Side::Negative).map(|_| ())
        })?;
        push("study_line", rows, t, PerSecond::None);
        let params: Vec<AldParams> = truth[..rows].to_vec();
        b.nll_grad_uploaded(&params)?;
        let t = best_time(runs, || b.nll_grad_uploaded(&params).map(|_| ()))?;
        push("nll_grad", rows, t, PerSecond::None);

        // The bootstrap's unit of work on one chunk of replicate rows (Gaussian and ALD rows
        // mixed): drawn on the device, then drawn, sorted and summarised.
        progress(&format!("{} {shape}: bootstrap", info.name));
        let reps = crate::bootstrap::bench_rows(&params);
        let mut generate = || -> Result<()> {
            b.generate(&reps, features, 7)?;
            b.synchronize()
        };
        generate()?;
        push(
            "generate",
            rows,
            best_time(runs, generate)?,
            PerSecond::Values,
        );
        let mut boot = || -> Result<()> {
            b.summarise_generated(&reps, features, 7)?;
            b.synchronize()
        };
        boot()?;
        push("bootstrap", rows, best_time(runs, boot)?, PerSecond::Values);
    }
    Ok(out)
}

/// Fills in each timing's speed-up over the CPU backend's timing of the same shape and stage.
pub fn add_speedups(timings: &mut [Timing]) {
    let cpu: Vec<(String, String, usize, f64)> = timings
        .iter()
        .filter(|t| t.backend == "cpu")
        .map(|t| (t.shape.clone(), t.stage.clone(), t.rows, t.seconds))
        .collect();
    for t in timings.iter_mut() {
        t.speedup_vs_cpu = cpu
            .iter()
            .find(|(shape, stage, rows, _)| {
                *shape == t.shape && *stage == t.stage && *rows == t.rows
            })
            .map(|&(.., s)| s / t.seconds);
    }
}

/// The table `aldfit bench` prints: one block per backend and shape.
pub fn table(timings: &[Timing]) -> String {
    let mut s = String::new();
    let mut last = None;
    for t in timings {
        let key = (t.backend.as_str(), t.device.as_str(), t.shape.as_str());
        if last != Some(key) {
            s.push_str(&format!(
                "\n{} on {}, head {} (copy bandwidth {:.1} GB/s)\n",
                t.backend, t.device, t.shape, t.copy_gb_per_s
            ));
            s.push_str(&format!(
                "  {:<14} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9}\n",
                "stage", "rows", "time", "GB/s", "% floor", "G/s", "vs cpu"
            ));
            last = Some(key);
        }
        s.push_str(&format!(
            "  {:<14} {:>7} {:>11} {:>9.2} {:>8.1}% {:>9} {:>9}\n",
            t.stage,
            t.rows,
            seconds(t.seconds),
            t.gb_per_s,
            t.pct_of_floor,
            t.gkeys_per_s
                .or(t.gvalues_per_s)
                .map_or("".into(), |k| format!("{k:.3}")),
            t.speedup_vs_cpu.map_or("".into(), |x| format!("{x:.1}×")),
        ));
    }
    s
}

fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}
