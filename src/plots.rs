//! Pictures (PNG and SVG, through plotters): per-class fits, an overview of the whole head, and
//! a class's split tree. Text is drawn with DejaVu Sans compiled into the binary, so rendering
//! needs no display and no system fonts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ald::{self, Model, StudyLine};
use crate::analysis::{Analysis, ClassResult};
use crate::error::{Error, Result};
use crate::tree::ClassTree;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Sizes of the figures, in pixels (PNG) and user units (SVG).
pub const CLASS_SIZE: (u32, u32) = (1400, 560);
pub const OVERVIEW_SIZE: (u32, u32) = (1500, 900);
pub const TREE_SIZE: (u32, u32) = (1500, 820);

fn font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "the bundled font could not be loaded".into(),
        ))
    }
}

fn draw_err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Invalid(format!("cannot draw {what}: {e}"))
}

/// The PNG pictures' backend: a bitmap with text laid out by [`crate::glyphs`].
type Png<'a> = crate::glyphs::Glyphs<BitMapBackend<'a>>;

/// Renders `draw` to `dir/name.png` and `dir/name.svg`. Both are drawn in memory and written
/// here, so that a failure to write (disk full, permissions) names the file and says why,
/// instead of coming back as plotters' nested backend error. `dir` is a staging folder
/// (`outset`): a half-written picture is never seen.
fn render(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    draw: &dyn Fn(&DrawingArea<Png<'_>, Shift>) -> Result<()>,
    draw_svg: &dyn Fn(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<[PathBuf; 2]> {
    font()?;
    std::fs::create_dir_all(dir).map_err(|err| Error::Write {
        path: dir.to_owned(),
        err,
    })?;
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    let in_file = |path: &Path| {
        let path = path.to_owned();
        move |e: Error| match e {
            Error::Invalid(msg) => Error::Format { path, msg },
            other => other,
        }
    };
    let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let bitmap = BitMapBackend::with_buffer(&mut pixels, size);
        let root = crate::glyphs::Glyphs::new(bitmap, FONT)
            .ok_or_else(|| Error::Invalid("the bundled font could not be loaded".into()))?
            .into_drawing_area();
        root.fill(&WHITE)
            .map_err(draw_err(name))
            .map_err(in_file(&png))?;
        draw(&root).map_err(in_file(&png))?;
        root.present()
            .map_err(draw_err(name))
            .map_err(in_file(&png))?;
    }
    let mut encoded = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut encoded),
        &pixels,
        size.0,
        size.1,
        image::ColorType::Rgb8,
    )
    .map_err(|e| Error::Format {
        path: png.clone(),
        msg: format!("cannot encode the picture: {e}"),
    })?;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(draw_err(name))
            .map_err(in_file(&svg))?;
        draw_svg(&root).map_err(in_file(&svg))?;
        root.present()
            .map_err(draw_err(name))
            .map_err(in_file(&svg))?;
    }
    for (path, bytes) in [(&png, encoded.as_slice()), (&svg, text.as_bytes())] {
        std::fs::write(path, bytes).map_err(|err| Error::Write {
            path: path.clone(),
            err,
        })?;
    }
    Ok([png, svg])
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned chart over `x` × `y` in `area`, laid out as every panel here: `big` for the
/// two halves of a class plot, otherwise a panel of the overview.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    big: bool,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, DB>> {
    let (size, margin, xa, ya) = if big {
        (18, 12, 44, 64)
    } else {
        (17, 10, 40, 50)
    };
    ChartBuilder::on(area)
        .caption(caption, ("sans-serif", size))
        .margin(margin)
        .x_label_area_size(xa)
        .y_label_area_size(ya)
        .build_cartesian_2d(x, y)
        .map_err(draw_err(caption))
}

/// Labelled axes, without the minor grid; `counts` prints the y labels as integers.
/// Okabe and Ito's colours, told apart under every common colour-vision deficiency: the fitted
/// models, the two sides of zero, and the histograms.
const ALD_COLOUR: RGBColor = RGBColor(213, 94, 0);
const GAUSS_COLOUR: RGBColor = RGBColor(0, 114, 178);
const LAPLACE_COLOUR: RGBColor = RGBColor(204, 121, 167);
const POSITIVE_COLOUR: RGBColor = RGBColor(0, 114, 178);
const NEGATIVE_COLOUR: RGBColor = RGBColor(230, 159, 0);
const GREEN_COLOUR: RGBColor = RGBColor(0, 158, 115);
const HIST_COLOUR: RGBColor = RGBColor(86, 180, 233);
const NONE_COLOUR: RGBColor = RGBColor(128, 128, 128);

/// A tick label as plotters prints it, but never "-0.0": a tick a rounding error below zero
/// is zero.
fn tick(v: &f64) -> String {
    let s = plotters::data::float::pretty_print_float(*v, false);
    match s.strip_prefix('-') {
        Some(rest) if rest.parse::<f64>() == Ok(0.0) => rest.to_owned(),
        _ => s,
    }
}

fn axes<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x_desc: &str,
    y_desc: &str,
    big: bool,
    counts: bool,
) -> Result<()> {
    let (label, desc) = if big { (13, 15) } else { (12, 14) };
    let integer = |y: &f64| format!("{y:.0}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", label))
        .axis_desc_style(("sans-serif", desc))
        .light_line_style(WHITE);
    if !big {
        mesh.x_labels(6);
    }
    mesh.x_label_formatter(&tick);
    if counts {
        mesh.y_label_formatter(&integer);
    } else {
        mesh.y_label_formatter(&tick);
    }
    mesh.draw().map_err(draw_err("axes"))
}

/// The legend box, in the same style everywhere.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
    size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(draw_err("a legend"))
}

fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi).then_some((lo, hi))
}

/// Widens a degenerate range so that an axis can be drawn.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let pad = 0.03 * (hi - lo);
        (lo - pad, hi + pad)
    } else {
        let w = lo.abs().max(1e-3) * 0.1;
        (lo - w, hi + w)
    }
}

fn short(x: f64) -> String {
    if !x.is_finite() {
        "NaN".into()
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e4) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// Per class: the histogram with the fitted ALD, Gaussian and Laplace densities, and the
/// study's view (log of sorted weights against rank, with its lines).
pub fn class_fit(
    dir: &Path,
    head_name: &str,
    class: usize,
    labels: &[String],
    row: &[f32],
    result: &ClassResult,
) -> Result<[PathBuf; 2]> {
    let title = format!(
        "{} — {head_name}",
        crate::report::class_title(class, labels)
    );
    render(
        dir,
        &format!("class-{class}"),
        CLASS_SIZE,
        &|a| class_fit_on(a, &title, row, result),
        &|a| class_fit_on(a, &title, row, result),
    )
}

fn class_fit_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    row: &[f32],
    c: &ClassResult,
) -> Result<()> {
    let e = draw_err("a class plot");
    let root = root.titled(title, ("sans-serif", 24)).map_err(&e)?;
    let (left, right) = root.split_horizontally(CLASS_SIZE.0 / 2);
    let hist = Histogram::of(row, 60);
    let curves = Curves::of(c, hist.lo, hist.hi);
    let ymax = hist
        .density
        .iter()
        .copied()
        .chain(curves.ald.iter().map(|p| p.1))
        .chain(curves.gauss.iter().map(|p| p.1))
        .chain(curves.laplace.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.08;
    let f = &c.stats.fit;
    let best = c.aic_best().map_or("none", Model::name);
    let caption = if f.degenerate {
        "weights (degenerate row: fewer than 3 distinct values, no fit)".to_owned()
    } else {
        format!(
            "weights and fitted densities — best by AIC: {best}{}",
            if f.boundary { " (boundary fit)" } else { "" }
        )
    };
    let mut chart = panel(&left, &caption, true, hist.lo..hist.hi, 0.0..ymax)?;
    axes(&mut chart, "weight", "density", true, false)?;
    let (lo, width) = (hist.lo, hist.width);
    chart
        .draw_series(hist.density.iter().enumerate().map(|(i, &d)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, d)], HIST_COLOUR.mix(0.45).filled())
        }))
        .map_err(&e)?
        .label(format!("{} weights", hist.xs.len()))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 18, y + 5)],
                HIST_COLOUR.mix(0.45).filled(),
            )
        });
    draw_curves(&mut chart, curves, c)?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    study_view(&right, &hist.xs, c)
}

/// A row's finite values, sorted, and their histogram as a density over a padded range.
struct Histogram {
    xs: Vec<f64>,
    lo: f64,
    hi: f64,
    width: f64,
    density: Vec<f64>,
}

impl Histogram {
    fn of(row: &[f32], bins: usize) -> Self {
        let mut xs: Vec<f64> = row
            .iter()
            .map(|&x| x as f64)
            .filter(|x| x.is_finite())
            .collect();
        xs.sort_by(f64::total_cmp);
        let (lo, hi) = finite_range(xs.iter().copied()).unwrap_or((-1.0, 1.0));
        let (lo, hi) = padded(lo, hi);
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0usize; bins];
        for &x in &xs {
            counts[(((x - lo) / width) as usize).min(bins - 1)] += 1;
        }
        let n = xs.len().max(1) as f64;
        let density = counts.iter().map(|&k| k as f64 / (n * width)).collect();
        Histogram {
            xs,
            lo,
            hi,
            width,
            density,
        }
    }
}

/// The three fitted densities of a class on `lo..hi`; a law that was not fitted is empty.
struct Curves {
    ald: Vec<(f64, f64)>,
    gauss: Vec<(f64, f64)>,
    laplace: Vec<(f64, f64)>,
}

impl Curves {
    fn of(c: &ClassResult, lo: f64, hi: f64) -> Self {
        let (f, b) = (&c.stats.fit, &c.stats.baselines);
        let grid: Vec<f64> = (0..=400)
            .map(|i| lo + (hi - lo) * i as f64 / 400.0)
            .collect();
        let curve = |ok: bool, pdf: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
            if ok {
                grid.iter().map(|&x| (x, pdf(x))).collect()
            } else {
                Vec::new()
            }
        };
        let sd = b.std();
        Curves {
            ald: curve(f.params.is_valid(), &|x| f.params.pdf(x)),
            gauss: curve(sd > 0.0, &|x| ald::gauss_log_pdf(x, b.mean, sd).exp()),
            laplace: curve(b.mad > 0.0, &|x| {
                ald::laplace_log_pdf(x, b.median, b.mad).exp()
            }),
        }
    }
}

/// The fitted densities over the histogram, each labelled with its parameters.
fn draw_curves<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    curves: Curves,
    c: &ClassResult,
) -> Result<()> {
    let e = draw_err("a class plot");
    let (f, b) = (&c.stats.fit, &c.stats.baselines);
    let series = [
        (
            curves.ald,
            ALD_COLOUR,
            format!(
                "ALD μ={} s={} κ={} KS={}",
                short(f.params.loc),
                short(f.params.scale),
                short(f.params.kappa),
                short(c.stats.ks)
            ),
        ),
        (
            curves.gauss,
            GAUSS_COLOUR,
            format!("Gaussian mean={} sd={}", short(b.mean), short(b.std())),
        ),
        (
            curves.laplace,
            LAPLACE_COLOUR,
            format!("Laplace median={} b={}", short(b.median), short(b.mad)),
        ),
    ];
    for (points, colour, label) in series {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(&e)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    Ok(())
}

/// The study's view of one class: ln v(i) against u = i/L for P and for N = −x, with the fitted
/// lines (docs/DESIGN.md 2.4). `xs` are the row's finite values, sorted.
fn study_view<DB: DrawingBackend>(
    right: &DrawingArea<DB, Shift>,
    xs: &[f64],
    c: &ClassResult,
) -> Result<()> {
    let e = draw_err("a class plot");
    let pos: Vec<f64> = xs.iter().copied().filter(|&x| x > 0.0).collect();
    let neg: Vec<f64> = xs
        .iter()
        .rev()
        .copied()
        .filter(|&x| x < 0.0)
        .map(|x| -x)
        .collect();
    let logs = |v: &[f64]| -> Vec<(f64, f64)> {
        let l = v.len() as f64;
        v.iter()
            .enumerate()
            .map(|(i, &x)| (i as f64 / l, x.ln()))
            .collect()
    };
    let (p, q) = (logs(&pos), logs(&neg));
    let (ylo, yhi) = finite_range(p.iter().chain(&q).map(|t| t.1)).unwrap_or((-1.0, 0.0));
    let (ylo, yhi) = padded(ylo, yhi);
    let mut chart = panel(
        right,
        "the study's view: log of sorted weights",
        true,
        0.0..1.0,
        ylo..yhi,
    )?;
    axes(&mut chart, "rank u = i / L", "ln |weight|", true, false)?;
    let sides = [
        ("positive", &p, &c.line_pos, POSITIVE_COLOUR),
        ("negative (−x)", &q, &c.line_neg, NEGATIVE_COLOUR),
    ];
    for (name, pts, line, colour) in sides {
        if pts.is_empty() {
            continue;
        }
        let step = (pts.len() / 600).max(1);
        chart
            .draw_series(
                pts.iter()
                    .step_by(step)
                    .map(|&(u, t)| Circle::new((u, t), 2, colour.mix(0.5).filled())),
            )
            .map_err(&e)?
            .label(format!("{name}: {} values", pts.len()))
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
        if line.slope.is_finite() {
            let at = |u: f64| line.slope * u + line.intercept;
            chart
                .draw_series(LineSeries::new(
                    [(0.0, at(0.0)), (1.0, at(1.0))],
                    colour.stroke_width(2),
                ))
                .map_err(&e)?
                .label(format!(
                    "line a={} b={} R²={}",
                    short(line.slope),
                    short(line.intercept),
                    short(line.r2)
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, 13)?;
    Ok(())
}

/// Histogram of `values` (finite ones) into `area`.
fn histogram_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    values: &[f64],
    colour: RGBColor,
) -> Result<()> {
    let e = draw_err("the overview");
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let (lo, hi) = finite_range(v.iter().copied()).unwrap_or((0.0, 1.0));
    let (lo, hi) = padded(lo, hi);
    let bins = 40usize;
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for &x in &v {
        counts[(((x - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let ymax = (*counts.iter().max().unwrap_or(&1)).max(1) as f64 * 1.1;
    let mut chart = panel(
        area,
        &format!("{caption} ({} classes)", v.len()),
        false,
        lo..hi,
        0.0..ymax,
    )?;
    axes(&mut chart, x_desc, "classes", false, true)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &k)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new(
                [(x0, 0.0), (x0 + width, k as f64)],
                colour.mix(0.6).filled(),
            )
        }))
        .map_err(&e)?;
    Ok(())
}

/// The whole head: histograms of κ, KS and the study-line R², the AIC winners, and the study's scatter
/// of the study line's slope against its intercept.
pub fn overview(dir: &Path, head_name: &str, analysis: &Analysis) -> Result<[PathBuf; 2]> {
    render(
        dir,
        "overview",
        OVERVIEW_SIZE,
        &|a| overview_on(a, head_name, analysis),
        &|a| overview_on(a, head_name, analysis),
    )
}

fn overview_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    head_name: &str,
    a: &Analysis,
) -> Result<()> {
    let e = draw_err("the overview");
    let cls = &a.classes;
    let root = root
        .titled(
            &format!("{head_name}: {} classes", cls.len()),
            ("sans-serif", 24),
        )
        .map_err(&e)?;
    let areas = root.split_evenly((2, 3));
    let kappa: Vec<f64> = cls.iter().map(|c| c.stats.fit.params.kappa).collect();
    let ks: Vec<f64> = cls.iter().map(|c| c.stats.ks).collect();
    let r2p: Vec<f64> = cls.iter().map(|c| c.line_pos.r2).collect();
    let r2n: Vec<f64> = cls.iter().map(|c| c.line_neg.r2).collect();
    histogram_on(&areas[0], "ALD asymmetry κ", "κ", &kappa, GAUSS_COLOUR)?;
    histogram_on(
        &areas[1],
        "KS distance to the fitted ALD",
        "KS",
        &ks,
        ALD_COLOUR,
    )?;
    histogram_on(
        &areas[3],
        "seed R², positive part",
        "R²",
        &r2p,
        GREEN_COLOUR,
    )?;
    histogram_on(
        &areas[4],
        "seed R², negative part",
        "R²",
        &r2n,
        NEGATIVE_COLOUR,
    )?;
    aic_wins_on(&areas[2], cls)?;
    study_scatter_on(&areas[5], cls)
}

/// Side by side, for `aldfit compare`: each model's κ and KS distributions (boxes of the middle
/// half, whiskers from 5 % to 95 %, a line at the median) and its AIC shares as stacked bars.
pub fn compare(dir: &Path, models: &[(String, &Analysis)]) -> Result<[PathBuf; 2]> {
    let width = (420 + 170 * models.len() as u32).clamp(1200, 3000);
    render(
        dir,
        "compare",
        (width, 620),
        &|a| compare_on(a, models),
        &|a| compare_on(a, models),
    )
}

fn compare_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    models: &[(String, &Analysis)],
) -> Result<()> {
    let e = draw_err("the comparison");
    let root = root
        .titled(
            &format!("{} models, every class of each", models.len()),
            ("sans-serif", 24),
        )
        .map_err(&e)?;
    let areas = root.split_evenly((1, 3));
    let of = |f: fn(&ClassResult) -> f64| -> Vec<Vec<f64>> {
        models
            .iter()
            .map(|(_, a)| a.classes.iter().map(f).filter(|v| v.is_finite()).collect())
            .collect()
    };
    let names: Vec<String> = models
        .iter()
        .map(|(n, _)| crate::text::short(n, 18))
        .collect();
    let kappa = of(|c| c.stats.fit.params.kappa);
    boxes_on(&areas[0], "ALD asymmetry κ by model", "κ", &names, &kappa)?;
    let ks = of(|c| c.stats.ks);
    boxes_on(
        &areas[1],
        "KS distance to the fitted ALD",
        "KS",
        &names,
        &ks,
    )?;
    let wins: Vec<[usize; 4]> = models
        .iter()
        .map(|(_, a)| crate::report::aic_wins(&a.classes))
        .collect();
    shares_on(&areas[2], &names, &wins)
}

/// The x axis of a panel with one slot per model, labelled with its name.
fn model_axis<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    names: &[String],
    y_desc: &str,
    percent: bool,
) -> Result<()> {
    let name = |x: &f64| {
        let i = x.round();
        match names.get(i as usize) {
            Some(n) if (x - i).abs() < 1e-6 && i >= 0.0 => n.clone(),
            _ => String::new(),
        }
    };
    let pct = |y: &f64| match *y <= 1.0 + 1e-9 {
        true => format!("{:.0}%", 100.0 * y),
        false => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&name)
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE);
    if percent {
        mesh.y_label_formatter(&pct);
    } else {
        mesh.y_label_formatter(&tick);
    }
    mesh.draw().map_err(draw_err("axes"))
}

fn boxes_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_desc: &str,
    names: &[String],
    values: &[Vec<f64>],
) -> Result<()> {
    let e = draw_err("the comparison");
    let q = |v: &[f64], p: f64| crate::report::quantile(v, p);
    let (lo, hi) =
        finite_range(values.iter().flat_map(|v| [q(v, 0.05), q(v, 0.95)])).unwrap_or((0.0, 1.0));
    let (lo, hi) = padded(lo, hi);
    let n = names.len() as f64;
    let mut chart = panel(area, caption, false, -0.6..n - 0.4, lo..hi)?;
    model_axis(&mut chart, names, y_desc, false)?;
    for (i, v) in values.iter().enumerate() {
        let x = i as f64;
        let [p05, p25, p50, p75, p95] = [0.05, 0.25, 0.5, 0.75, 0.95].map(|p| q(v, p));
        if !p50.is_finite() {
            continue;
        }
        let colour = HIST_COLOUR;
        chart
            .draw_series([
                PathElement::new(vec![(x, p05), (x, p25)], BLACK.stroke_width(1)),
                PathElement::new(vec![(x, p75), (x, p95)], BLACK.stroke_width(1)),
                PathElement::new(
                    vec![(x - 0.15, p05), (x + 0.15, p05)],
                    BLACK.stroke_width(1),
                ),
                PathElement::new(
                    vec![(x - 0.15, p95), (x + 0.15, p95)],
                    BLACK.stroke_width(1),
                ),
            ])
            .map_err(&e)?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.3, p25), (x + 0.3, p75)],
                colour.mix(0.7).filled(),
            )))
            .map_err(&e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x - 0.3, p50), (x + 0.3, p50)],
                BLACK.stroke_width(2),
            )))
            .map_err(&e)?;
    }
    Ok(())
}

/// Stacked bars: the share of each model's classes that the ALD, the Gaussian and the Laplace
/// win by AIC (and none, for classes with no fit).
fn shares_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[String],
    wins: &[[usize; 4]],
) -> Result<()> {
    let e = draw_err("the comparison");
    let n = names.len() as f64;
    let caption = "best model by AIC, share of classes";
    // Room above the bars for the legend.
    let mut chart = panel(area, caption, false, -0.6..n - 0.4, 0.0..1.32)?;
    model_axis(&mut chart, names, "classes", true)?;
    let colours = [ALD_COLOUR, GAUSS_COLOUR, LAPLACE_COLOUR, NONE_COLOUR];
    let labels = ["ALD", "Gaussian", "Laplace", "none"];
    for (k, (&colour, label)) in colours.iter().zip(labels).enumerate() {
        let bars = wins.iter().enumerate().map(|(i, w)| {
            let total = w.iter().sum::<usize>().max(1) as f64;
            let below: usize = w[..k].iter().sum();
            let (y0, y1) = (below as f64 / total, (below + w[k]) as f64 / total);
            let x = i as f64;
            Rectangle::new([(x - 0.3, y0), (x + 0.3, y1)], colour.mix(0.75).filled())
        });
        chart
            .draw_series(bars)
            .map_err(&e)?
            .label(label)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.mix(0.75).filled())
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 13)
}

/// Bars of how many classes each model wins by AIC.
fn aic_wins_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    cls: &[ClassResult],
) -> Result<()> {
    let e = draw_err("the overview");
    let wins = crate::report::aic_wins(cls);
    let names = ["ALD", "Gaussian", "Laplace", "none"];
    let top = (*wins.iter().max().unwrap_or(&1)).max(1) as f64 * 1.15;
    let mut chart = panel(area, "best model by AIC", false, 0.0..4.0, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|y: &f64| format!("{y:.0}"))
        .y_desc("classes")
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .light_line_style(WHITE)
        .draw()
        .map_err(&e)?;
    for (i, &w) in wins.iter().enumerate() {
        let colour = [ALD_COLOUR, GAUSS_COLOUR, LAPLACE_COLOUR, NONE_COLOUR][i];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, w as f64)],
                colour.mix(0.6).filled(),
            )))
            .map_err(&e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{}: {w}", names[i]),
                (i as f64 + 0.17, w as f64 + top * 0.06),
                ("sans-serif", 14),
            )))
            .map_err(&e)?;
    }
    Ok(())
}

/// The study's scatter: slope a against intercept b of each class's study lines.
fn study_scatter_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    cls: &[ClassResult],
) -> Result<()> {
    let e = draw_err("the overview");
    let pts = |f: &dyn Fn(&ClassResult) -> &StudyLine| -> Vec<(f64, f64)> {
        cls.iter()
            .map(|c| (f(c).intercept, f(c).slope))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect()
    };
    let (p, q) = (pts(&|c| &c.line_pos), pts(&|c| &c.line_neg));
    let (xlo, xhi) = padded_range(p.iter().chain(&q).map(|t| t.0));
    let (ylo, yhi) = padded_range(p.iter().chain(&q).map(|t| t.1));
    let mut chart = panel(
        area,
        "seed lines: slope a against intercept b",
        false,
        xlo..xhi,
        ylo..yhi,
    )?;
    axes(&mut chart, "intercept b", "slope a", false, false)?;
    for (name, v, colour) in [
        ("positive", &p, POSITIVE_COLOUR),
        ("negative", &q, NEGATIVE_COLOUR),
    ] {
        chart
            .draw_series(
                v.iter()
                    .map(|&(x, y)| Circle::new((x, y), 2, colour.mix(0.5).filled())),
            )
            .map_err(&e)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    Ok(())
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = finite_range(values).unwrap_or((0.0, 1.0));
    padded(lo, hi)
}

/// The split tree of one class (the study's Figure 4, from data): a box per node with its path,
/// size, fit and best model, children below their parent.
pub fn split_tree(
    dir: &Path,
    head_name: &str,
    labels: &[String],
    tree: &ClassTree,
) -> Result<[PathBuf; 2]> {
    let title = format!(
        "split tree of {} — {head_name}",
        crate::report::class_title(tree.class, labels)
    );
    render(
        dir,
        &format!("tree-{}", tree.class),
        TREE_SIZE,
        &|a| split_tree_on(a, &title, tree),
        &|a| split_tree_on(a, &title, tree),
    )
}

fn split_tree_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    t: &ClassTree,
) -> Result<()> {
    let e = draw_err("a split tree");
    let root = root.titled(title, ("sans-serif", 24)).map_err(&e)?;
    if t.nodes.is_empty() {
        root.draw(&Text::new(
            "no tree: the row was skipped (non-finite weights)",
            (40, 40),
            ("sans-serif", 18),
        ))
        .map_err(&e)?;
        return Ok(());
    }
    let (cut, x, slots) = tree_layout(t);
    let shown = |i: usize| t.nodes[i].depth <= cut;
    let depth = cut as f64 + 1.0;
    let (w, full_h) = root.dim_in_pixel();
    // The legend takes the bottom rows.
    let (w, h) = (w as f64, full_h as f64 - LEGEND_H);
    let box_w = (w / slots - 16.0).clamp(60.0, 340.0);
    let box_h = ((h - 20.0) / depth - 22.0).clamp(40.0, 130.0);
    // A narrow box holds two short lines: no taller than they need.
    let box_h = if box_w < 120.0 {
        box_h.min(44.0)
    } else {
        box_h
    };
    let centre = |i: usize| -> (i32, i32) {
        let cx = (x[i] + 0.5) / slots * w;
        let cy = 10.0 + (t.nodes[i].depth as f64 + 0.5) / depth * (h - 20.0);
        (cx as i32, cy as i32)
    };
    for (i, n) in t
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || shown(*i))
    {
        if n.depth >= cut {
            continue;
        }
        for c in [n.plus, n.minus].iter().flatten() {
            let (a, b) = (centre(i), centre(*c));
            root.draw(&PathElement::new(
                vec![(a.0, a.1 + box_h as i32 / 2), (b.0, b.1 - box_h as i32 / 2)],
                BLACK.mix(0.5),
            ))
            .map_err(&e)?;
        }
    }
    for (i, n) in t.nodes.iter().enumerate().filter(|(i, _)| shown(*i)) {
        node_box_on(&root, n, centre(i), (box_w, box_h))?;
    }
    let hidden = t.nodes.iter().filter(|n| n.depth > cut).count();
    tree_legend_on(&root, full_h as i32, hidden)
}

/// Rows at the bottom of a tree plot for its legend.
const LEGEND_H: f64 = 58.0;

/// The fill of a node box whose best model by AIC is `best`.
fn node_fill(best: Option<Model>) -> RGBColor {
    match best {
        Some(Model::Ald) => RGBColor(250, 222, 204),
        Some(Model::Gauss) => RGBColor(204, 227, 240),
        Some(Model::Laplace) => RGBColor(245, 228, 238),
        None => RGBColor(235, 235, 235),
    }
}

/// Every mark of a tree plot explained: the box colours, the path signs, `n`, `KS` and `(bnd)`.
fn tree_legend_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: i32,
    hidden: usize,
) -> Result<()> {
    let e = draw_err("a split tree");
    let grey = ("sans-serif", 14).into_font().color(&BLACK.mix(0.8));
    let y = h - LEGEND_H as i32 + 8;
    root.draw(&Text::new("best model by AIC:", (12, y), grey.clone()))
        .map_err(&e)?;
    let mut x = 150;
    for (model, name) in [
        (Some(Model::Ald), "ALD"),
        (Some(Model::Gauss), "Gaussian"),
        (Some(Model::Laplace), "Laplace"),
        (None, "none"),
    ] {
        root.draw(&Rectangle::new(
            [(x, y), (x + 22, y + 15)],
            node_fill(model).filled(),
        ))
        .map_err(&e)?;
        root.draw(&Rectangle::new([(x, y), (x + 22, y + 15)], BLACK.mix(0.6)))
            .map_err(&e)?;
        root.draw(&Text::new(name, (x + 28, y), grey.clone()))
            .map_err(&e)?;
        x += 40 + 9 * name.len() as i32;
    }
    let more = match hidden {
        0 => String::new(),
        n => format!("; {n} deeper nodes not drawn (see tree.csv)"),
    };
    let key = format!(
        "path: + = the values ≥ the parent's pivot, − = below; n = values in the node; KS = \
         distance to its fitted ALD; (bnd) = a boundary fit: μ̂ is the node's smallest or largest \
         value (a one-sided part){more}"
    );
    root.draw(&Text::new(key, (12, y + 24), grey)).map_err(&e)?;
    Ok(())
}

/// One node of a split tree as a box centred at `(cx, cy)`, coloured by its best model.
fn node_box_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    n: &crate::tree::Node,
    (cx, cy): (i32, i32),
    (box_w, box_h): (f64, f64),
) -> Result<()> {
    let e = draw_err("a split tree");
    let small = box_w < 120.0 || box_h < 60.0;
    let best = n.aic_best();
    let fill = node_fill(best);
    let (x0, y0) = (cx - box_w as i32 / 2, cy - box_h as i32 / 2);
    let (x1, y1) = (cx + box_w as i32 / 2, cy + box_h as i32 / 2);
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))
        .map_err(&e)?;
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.mix(0.6)))
        .map_err(&e)?;
    let f = &n.stats.fit;
    let mut lines = vec![format!("{}  n={}", n.path, n.count())];
    if !small {
        lines.push(format!(
            "κ={} KS={}",
            short(f.params.kappa),
            short(n.stats.ks)
        ));
        lines.push(format!(
            "best: {}{}",
            best.map_or("none", Model::name),
            if f.boundary { " (bnd)" } else { "" }
        ));
        if n.pivot.is_finite() {
            lines.push(format!("pivot {}", short(n.pivot)));
        }
    } else {
        lines.push(best.map_or("none", Model::name).to_owned());
    }
    // Text as big as the box allows.
    let size = if small {
        11
    } else {
        ((box_h - 8.0) / lines.len() as f64 - 4.0).clamp(13.0, 17.0) as i32
    };
    for (k, line) in lines.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (x0 + 6, y0 + 5 + k as i32 * (size + 4)),
            ("sans-serif", size),
        ))
        .map_err(&e)?;
    }
    Ok(())
}

/// Where a tree's nodes go: the deepest level `cut` whose drawn leaves still fit side by side,
/// each shown node's horizontal slot, and how many slots there are.
fn tree_layout(t: &ClassTree) -> (usize, Vec<f64>, f64) {
    // Only as many levels as fit side by side: the drawn leaves (nodes at the cut, and leaves
    // above it) must not outnumber MAX_SLOTS.
    const MAX_SLOTS: usize = 24;
    let slots_at = |cut: usize| {
        t.nodes
            .iter()
            .filter(|n| n.depth == cut || (n.depth < cut && n.is_leaf()))
            .count()
    };
    let cut = (0..=t.depth())
        .take_while(|&d| slots_at(d) <= MAX_SLOTS)
        .last()
        .unwrap_or(0);
    // Leaves get consecutive slots left to right (the − side on the left); a parent sits
    // above the middle of its children.
    let mut x = vec![0.0f64; t.nodes.len()];
    let mut next = 0.0;
    fn place(t: &ClassTree, i: usize, cut: usize, x: &mut [f64], next: &mut f64) {
        let n = &t.nodes[i];
        let kids: Vec<usize> = if n.depth < cut {
            [n.minus, n.plus].iter().flatten().copied().collect()
        } else {
            Vec::new()
        };
        if kids.is_empty() {
            x[i] = *next;
            *next += 1.0;
        } else {
            for &k in &kids {
                place(t, k, cut, x, next);
            }
            x[i] = kids.iter().map(|&k| x[k]).sum::<f64>() / kids.len() as f64;
        }
    }
    place(t, 0, cut, &mut x, &mut next);
    let slots = next.max(1.0);
    (cut, x, slots)
}

/// Classes picked for per-class plots: the given ones, or the `worst` worst and `best` best by
/// KS (classes without a KS left out).
pub fn pick_classes(analysis: &Analysis, given: &[usize], worst: usize, best: usize) -> Vec<usize> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let ranked = crate::report::ranked_by_ks(&analysis.classes);
    let mut out: Vec<usize> = ranked.iter().take(best).copied().collect();
    for &k in ranked.iter().rev().take(worst) {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Resolves `--plot-classes` items: class indices, ranges or labels.
pub fn resolve_classes(items: &[String], labels: &[String], classes: usize) -> Result<Vec<usize>> {
    crate::select::resolve("--plot-classes", items, labels, classes)
}

#[cfg(test)]
mod tick_tests {
    #[test]
    fn a_tick_a_rounding_error_below_zero_reads_zero() {
        for zero in [-0.0, -1e-17, 0.0] {
            assert!(
                !super::tick(&zero).starts_with('-'),
                "{zero}: {}",
                super::tick(&zero)
            );
        }
        assert!(super::tick(&-0.05).starts_with("-0.05"));
        assert_eq!(super::tick(&2.5), "2.5");
    }
}
