//! `aldfit bench`: a quick table of how fast each backend is on heads of given shapes, against
//! the one floor that matters for a memory-bound job, one read of the input at the device's
//! measured copy bandwidth (docs/DESIGN.md section 4). Criterion (`cargo bench`) gives the careful
//! statistics; this gives the picture in seconds.

use serde::Serialize;

use crate::ald::{self, AldParams};
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

/// What a stage's time covers: the whole head from host memory (the host-to-device copy
/// included), or one chunk already on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Head,
    Chunk,
}

/// A seeded synthetic head, and the chunk of it the primitives run on.
pub struct Fixture {
    pub shape: String,
    pub head: Head,
    pub values: Vec<f32>,
    pub features: usize,
    /// Rows in the chunk: as many as the backend holds at once, at most the head's.
    pub rows: usize,
    /// The chunk's whole rows, and their negative prefixes and positive suffixes.
    pub segs: Vec<Segment>,
    pub pos: Vec<Segment>,
    pub neg: Vec<Segment>,
    /// The laws the chunk's rows were drawn from.
    pub params: Vec<AldParams>,
    /// Replicate rows for the bootstrap's stages, one per chunk row.
    pub reps: Vec<crate::backend::ReplicateRow>,
}

impl Fixture {
    /// The head of `classes × features` (seed 42) and a chunk of `chunk_rows` rows.
    pub fn new(classes: usize, features: usize, chunk_rows: usize) -> Result<Self> {
        let shape = format!("{classes}x{features}");
        let (values, truth) = synth::ald_head(classes, features, 42);
        let head = Head::from_f32(&shape, classes, features, &values)?;
        let rows = chunk_rows.clamp(1, classes);
        let segs: Vec<Segment> = (0..rows).map(|r| Segment::new(r, 0, features)).collect();
        // Partition points are exact on every backend: the reference gives them.
        let (mut neg_end, mut pos_start) = (Vec::new(), Vec::new());
        for row in values[..rows * features].chunks(features) {
            let mut xs = row.to_vec();
            xs.sort_by(f32::total_cmp);
            neg_end.push(ald::partition_point_sorted(&xs, 0.0, false) as u32);
            pos_start.push(ald::partition_point_sorted(&xs, 0.0, true) as u32);
        }
        let (pos, neg) = backend::sides(features, &neg_end, &pos_start);
        let params = truth[..rows].to_vec();
        let reps = crate::bootstrap::bench_rows(&params);
        Ok(Fixture {
            shape,
            head,
            values,
            features,
            rows,
            segs,
            pos,
            neg,
            params,
            reps,
        })
    }

    pub fn chunk(&self) -> &[f32] {
        &self.values[..self.rows * self.features]
    }
}

type Step = fn(&mut dyn Backend, &Fixture) -> Result<()>;

/// One timed stage: criterion and `aldfit bench` both run this list.
pub struct Stage {
    pub name: &'static str,
    pub scope: Scope,
    per_second: PerSecond,
    /// Puts the backend where the stage starts (untimed).
    pub prepare: Step,
    /// The timed work; callers synchronise the device after it.
    pub run: Step,
}

fn nothing(_: &mut dyn Backend, _: &Fixture) -> Result<()> {
    Ok(())
}

fn uploaded(b: &mut dyn Backend, f: &Fixture) -> Result<()> {
    b.upload(f.chunk(), f.features)
}

fn resident(b: &mut dyn Backend, f: &Fixture) -> Result<()> {
    b.load_sorted(f.chunk(), f.features, false)
}

fn resident_with_indices(b: &mut dyn Backend, f: &Fixture) -> Result<()> {
    b.load_sorted(f.chunk(), f.features, true)
}

fn analyse(b: &mut dyn Backend, f: &Fixture, pooled: bool) -> Result<()> {
    let opts = Options {
        pooled,
        ..Options::default()
    };
    analysis::analyse(&f.head, &[], b, &opts, &mut |_| {}).map(|_| ())
}

/// Every stage, in the order the table shows them.
pub const STAGES: &[Stage] = &[
    Stage {
        name: "analysis",
        scope: Scope::Head,
        per_second: PerSecond::None,
        prepare: nothing,
        run: |b, f| analyse(b, f, false),
    },
    Stage {
        name: "analysis+joint",
        scope: Scope::Head,
        per_second: PerSecond::None,
        prepare: nothing,
        run: |b, f| analyse(b, f, true),
    },
    Stage {
        name: "split",
        scope: Scope::Head,
        per_second: PerSecond::None,
        prepare: nothing,
        run: |b, f| {
            let opts = crate::tree::SplitOptions::default();
            crate::tree::split_head(&f.head, &[], b, &opts, &mut |_| {}).map(|_| ())
        },
    },
    Stage {
        name: "upload+sort",
        scope: Scope::Chunk,
        per_second: PerSecond::Keys,
        prepare: nothing,
        run: |b, f| b.load_sorted(f.chunk(), f.features, false),
    },
    Stage {
        name: "sort",
        scope: Scope::Chunk,
        per_second: PerSecond::Keys,
        prepare: uploaded,
        run: |b, _| b.sort_uploaded(false),
    },
    Stage {
        name: "sort-with-indices",
        scope: Scope::Chunk,
        per_second: PerSecond::Keys,
        prepare: uploaded,
        run: |b, _| b.sort_uploaded(true),
    },
    Stage {
        // One level of the split trees: every row's root described, then split at its mean.
        name: "split-level",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident_with_indices,
        run: |b, f| {
            let stats = b.segment_stats(&f.segs)?;
            let pivots: Vec<f32> = stats
                .iter()
                .map(|s| crate::tree::threshold(s.baselines.mean))
                .collect();
            b.partition_points(&f.segs, &pivots, false).map(|_| ())
        },
    },
    Stage {
        name: "fit",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident,
        run: |b, f| b.fit(&f.segs).map(|_| ()),
    },
    Stage {
        name: "ks",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident,
        run: |b, f| b.ks(&f.segs, &f.params).map(|_| ()),
    },
    Stage {
        name: "baselines",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident,
        run: |b, f| b.baselines(&f.segs).map(|_| ()),
    },
    Stage {
        name: "segment_stats",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident,
        run: |b, f| b.segment_stats(&f.segs).map(|_| ()),
    },
    Stage {
        // Both study lines of every row, on its negative prefix and positive suffix.
        name: "study_line",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: resident,
        run: |b, f| {
            b.study_line(&f.pos, Side::Positive)?;
            b.study_line(&f.neg, Side::Negative).map(|_| ())
        },
    },
    Stage {
        // A pure streaming reduction of the uploaded rows: the one to hold against the floor.
        name: "nll_grad",
        scope: Scope::Chunk,
        per_second: PerSecond::None,
        prepare: uploaded,
        run: |b, f| b.nll_grad_uploaded(&f.params).map(|_| ()),
    },
    Stage {
        // Replicate rows (Gaussian and ALD mixed) drawn on the device.
        name: "generate",
        scope: Scope::Chunk,
        per_second: PerSecond::Values,
        prepare: nothing,
        run: |b, f| b.generate(&f.reps, f.features, 7),
    },
    Stage {
        // The bootstrap's unit of work: replicate rows drawn, sorted and summarised.
        name: "bootstrap",
        scope: Scope::Chunk,
        per_second: PerSecond::Values,
        prepare: nothing,
        run: |b, f| b.summarise_generated(&f.reps, f.features, 7).map(|_| ()),
    },
];

/// The stage names `--stages` may list, or an error naming the unknown one.
pub fn check_stages(names: &[String]) -> Result<()> {
    match names
        .iter()
        .find(|n| !STAGES.iter().any(|s| s.name == n.as_str()))
    {
        Some(bad) => Err(crate::Error::Invalid(format!(
            "--stages: no stage `{bad}`; the stages are {}",
            STAGES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ))),
        None => Ok(()),
    }
}

/// Times every stage of `b` (or those in `only`) on a seeded synthetic head of each shape; `runs` timings per stage,
/// the best kept, after one untimed warm-up. The copy bandwidth is measured once per backend,
/// on 256 MiB.
pub fn run(
    b: &mut dyn Backend,
    shapes: &[(usize, usize)],
    runs: usize,
    only: Option<&[String]>,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Timing>> {
    let info = b.info();
    let copy = b.copy_bandwidth(256 << 20)?;
    let mut out = Vec::new();
    for &(classes, features) in shapes {
        if info.software && classes * features * 4 > 32 << 20 {
            progress(&format!(
                "skipping {classes}x{features} on {}: a software adapter would take hours",
                info.name
            ));
            continue;
        }
        progress(&format!(
            "{} {classes}x{features}: making the head",
            info.name
        ));
        let fx = Fixture::new(classes, features, b.max_chunk_rows(features))?;
        let wanted = |name: &str| only.is_none_or(|o| o.iter().any(|w| w == name));
        for stage in STAGES.iter().filter(|s| wanted(s.name)) {
            progress(&format!("{} {}: {}", info.name, fx.shape, stage.name));
            (stage.prepare)(b, &fx)?;
            let mut once = || -> Result<()> {
                (stage.run)(b, &fx)?;
                b.synchronize()
            };
            once()?;
            let seconds = best_time(runs, once)?;
            let rows = match stage.scope {
                Scope::Head => classes,
                Scope::Chunk => fx.rows,
            };
            let bytes = (rows * features * 4) as f64;
            let per = (rows * features) as f64 / seconds / 1e9;
            out.push(Timing {
                backend: info.name.clone(),
                device: info.device.clone(),
                shape: fx.shape.clone(),
                stage: stage.name.into(),
                rows,
                seconds,
                gb_per_s: bytes / seconds / 1e9,
                pct_of_floor: 100.0 * bytes / copy / seconds,
                copy_gb_per_s: copy / 1e9,
                gkeys_per_s: (stage.per_second == PerSecond::Keys).then_some(per),
                gvalues_per_s: (stage.per_second == PerSecond::Values).then_some(per),
                speedup_vs_cpu: None,
            });
        }
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
                "  {:<17} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9}\n",
                "stage", "rows", "time", "GB/s", "% floor", "G/s", "vs cpu"
            ));
            last = Some(key);
        }
        s.push_str(&format!(
            "  {:<17} {:>7} {:>11} {:>9.2} {:>8.1}% {:>9} {:>9}\n",
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
