//! Seeded synthetic heads: rows drawn from known ALDs, for parameter-recovery tests, benchmarks
//! and `aldfit synth`. Each row has its own generator stream, so a head is the same whatever the
//! thread count and any row can be regenerated alone.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::ald::AldParams;

/// The generator of row `row` of a head seeded with `seed`.
pub fn row_rng(seed: u64, row: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(row as u64);
    rng
}

/// Parameters in the range of real heads (weights of a few hundredths, κ from 1/2 to 2).
pub fn random_params<R: Rng + ?Sized>(rng: &mut R) -> AldParams {
    AldParams {
        loc: rng.random_range(-0.02..0.02),
        scale: rng.random_range(0.02..0.08),
        kappa: rng
            .random_range(-std::f64::consts::LN_2..std::f64::consts::LN_2)
            .exp(),
    }
}

/// A `classes × features` head whose row k is drawn from the ALD returned at index k.
pub fn ald_head(classes: usize, features: usize, seed: u64) -> (Vec<f32>, Vec<AldParams>) {
    let mut values = vec![0f32; classes * features];
    let params: Vec<AldParams> = values
        .par_chunks_mut(features.max(1))
        .enumerate()
        .map(|(k, row)| {
            let mut rng = row_rng(seed, k);
            let p = random_params(&mut rng);
            for (v, x) in row.iter_mut().zip(p.sample(&mut rng, features)) {
                *v = x as f32;
            }
            p
        })
        .collect();
    (values, params)
}

/// The law of every row of a synthetic head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// An ALD with random (μ, s, κ), as [`ald_head`].
    Ald,
    /// A Gaussian with random mean and standard deviation (the same ranges as μ and s): pure
    /// noise, where every claim of the study is false.
    Gauss,
    /// A Laplace (the ALD with κ = 1): the null of the likelihood-ratio test.
    Laplace,
}

/// A `classes × features` head whose rows follow `law`, with per-row parameters in the range of
/// real heads; returns the parameters too (for the Gaussian: mean in `loc`, σ in `scale`).
pub fn law_head(
    law: Law,
    classes: usize,
    features: usize,
    seed: u64,
) -> (Vec<f32>, Vec<AldParams>) {
    if law == Law::Ald {
        return ald_head(classes, features, seed);
    }
    let mut values = vec![0f32; classes * features];
    let params: Vec<AldParams> = values
        .par_chunks_mut(features.max(1))
        .enumerate()
        .map(|(k, row)| {
            let mut rng = row_rng(seed, k);
            let mut p = random_params(&mut rng);
            match law {
                Law::Gauss => {
                    let normal = rand_distr::Normal::new(p.loc, p.scale).expect("σ > 0");
                    for v in row.iter_mut() {
                        *v = rng.sample(normal) as f32;
                    }
                }
                _ => {
                    p.kappa = 1.0;
                    for (v, x) in row.iter_mut().zip(p.sample(&mut rng, features)) {
                        *v = x as f32;
                    }
                }
            }
            p
        })
        .collect();
    (values, params)
}

/// Writes a head as a safetensors file with a single f32 tensor `name`.
pub fn write_safetensors(
    path: &Path,
    name: &str,
    classes: usize,
    features: usize,
    values: &[f32],
) -> std::io::Result<()> {
    // Little-endian in memory already (x86-64, aarch64): the values are the file's bytes.
    #[cfg(target_endian = "little")]
    let bytes: &[u8] = bytemuck::cast_slice(values);
    #[cfg(not(target_endian = "little"))]
    let bytes: &[u8] = &values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    write_safetensors_bytes(
        path,
        &[(
            name,
            safetensors::Dtype::F32,
            vec![classes, features],
            bytes,
        )],
    )
}

/// How `aldfit synth` stores the values it draws in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreAs {
    F32,
    F16,
    Bf16,
}

impl StoreAs {
    pub fn name(self) -> &'static str {
        match self {
            StoreAs::F32 => "f32",
            StoreAs::F16 => "f16",
            StoreAs::Bf16 => "bf16",
        }
    }

    /// The values' little-endian bytes in this dtype (rounded to nearest even), and its
    /// safetensors dtype. The f32 values are given up: a big head is not held twice.
    pub fn encode(self, values: Vec<f32>) -> (Vec<u8>, safetensors::Dtype) {
        fn le<T: Copy>(
            v: &[f32],
            f: impl Fn(f32) -> T + Sync,
            b: impl Fn(T) -> [u8; 2] + Sync,
        ) -> Vec<u8> {
            use rayon::prelude::*;
            v.par_iter().flat_map_iter(|&x| b(f(x))).collect()
        }
        match self {
            StoreAs::F32 => (
                bytemuck::cast_slice::<f32, u8>(&values).to_vec(),
                safetensors::Dtype::F32,
            ),
            StoreAs::F16 => (
                le(&values, half::f16::from_f32, |h| h.to_le_bytes()),
                safetensors::Dtype::F16,
            ),
            StoreAs::Bf16 => (
                le(&values, half::bf16::from_f32, |h| h.to_le_bytes()),
                safetensors::Dtype::BF16,
            ),
        }
    }
}

/// Writes raw tensors `(name, dtype, shape, little-endian bytes)` as one safetensors file,
/// through a temporary file beside `path` and a rename: the file appears whole or not at all,
/// is removed on SIGINT/SIGTERM, and gets the umask's permissions. (safetensors'
/// `serialize_to_file` writes its temporary file 0600 and leaves it behind on a signal, so the
/// header is written here; the crate still checks each view's size.)
pub fn write_safetensors_bytes(
    path: &Path,
    tensors: &[(&str, safetensors::Dtype, Vec<usize>, &[u8])],
) -> std::io::Result<()> {
    use std::io::Write;
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (n, d, s, b) in tensors {
        safetensors::tensor::TensorView::new(*d, s.clone(), b)
            .map_err(|e| invalid(format!("tensor {n}: {e:?}")))?;
        let entry = serde_json::json!({
            "dtype": d, "shape": s, "data_offsets": [offset, offset + b.len()],
        });
        if header.insert(n.to_string(), entry).is_some() {
            return Err(invalid(format!("tensor {n} is given twice")));
        }
        offset += b.len();
    }
    let mut text = serde_json::to_string(&header).map_err(|e| invalid(e.to_string()))?;
    // The data starts 8-byte aligned: the header is padded with spaces.
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or("head".into(), |n| n.to_string_lossy());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    crate::outset::remove_on_signals(tmp.path());
    let written = (|| {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        f.write_all(&(text.len() as u64).to_le_bytes())?;
        f.write_all(text.as_bytes())?;
        for (_, _, _, b) in tensors {
            f.write_all(b)?;
        }
        f.flush()?;
        drop(f);
        tmp.as_file().sync_all()
    })();
    crate::outset::forget_on_signals(tmp.path());
    written?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The kinds of row in [`nasty_head`], cycled through row by row.
pub const NASTY_KINDS: &[&str] = &[
    "ald",
    "ties",
    "exact-zeros",
    "constant",
    "all-zero",
    "two-values",
    "heavy-tails",
    "mixture",
    "one-sided",
    "single-nonzero",
    "huge-offset",
    "tiny-scale",
];

/// Rows at the ends of f32's range, apart from [`NASTY_KINDS`] because an f32 device may refuse
/// them (a refused chunk would hide the rest): ALD rows scaled into the subnormals, and scaled
/// so that their largest |value| is 3e38. The f64 reference computes both.
pub const EXTREME_KINDS: &[&str] = &["subnormal-scale", "near-f32-max"];

/// Rows of [`EXTREME_KINDS`] in turn, seeded as [`nasty_head`].
pub fn extreme_head(classes: usize, features: usize, seed: u64) -> Vec<f32> {
    let mut values = vec![0f32; classes * features];
    for (k, row) in values.chunks_mut(features.max(1)).enumerate() {
        let rng = &mut row_rng(seed, k);
        let p = random_params(rng);
        let draws = p.sample(rng, row.len());
        let scale = match EXTREME_KINDS[k % EXTREME_KINDS.len()] {
            "subnormal-scale" => 2f64.powi(-140),
            _ => 3e38 / draws.iter().fold(0f64, |m, x| m.max(x.abs())),
        };
        for (v, x) in row.iter_mut().zip(&draws) {
            *v = (x * scale) as f32;
        }
    }
    values
}

/// A head built to break implementations: ties, exact zeros, constant and two-valued rows,
/// heavy tails, ALD mixtures with several local minima, one-sided rows, a large common offset
/// (cancellation in prefix sums) and subnormal-adjacent scales. Row k has kind
/// `NASTY_KINDS[k % NASTY_KINDS.len()]`.
pub fn nasty_head(classes: usize, features: usize, seed: u64) -> Vec<f32> {
    let mut values = vec![0f32; classes * features];
    values
        .par_chunks_mut(features.max(1))
        .enumerate()
        .for_each(|(k, row)| {
            nasty_row(
                NASTY_KINDS[k % NASTY_KINDS.len()],
                &mut row_rng(seed, k),
                row,
            )
        });
    values
}

fn nasty_row<R: Rng + ?Sized>(kind: &str, rng: &mut R, row: &mut [f32]) {
    let p = random_params(rng);
    let n = row.len();
    let draw = |rng: &mut R| p.sample(rng, 1)[0] as f32;
    match kind {
        "ties" => row
            .iter_mut()
            .for_each(|v| *v = (draw(rng) * 50.0).round() / 50.0),
        "exact-zeros" => row.iter_mut().for_each(|v| {
            *v = if rng.random::<f64>() < 0.3 {
                0.0
            } else {
                draw(rng)
            }
        }),
        "constant" => row.fill(0.125),
        "all-zero" => row.fill(0.0),
        "two-values" => row
            .iter_mut()
            .for_each(|v| *v = if rng.random::<bool>() { -0.5 } else { 0.25 }),
        "heavy-tails" => row.iter_mut().for_each(|v| {
            let u: f64 = rng.random_range(-0.4999..0.4999);
            *v = (0.01 * (std::f64::consts::PI * u).tan()) as f32;
        }),
        "mixture" => {
            let q = AldParams {
                loc: p.loc + 8.0 * p.scale,
                ..random_params(rng)
            };
            let w: f64 = rng.random_range(0.3..0.7);
            row.iter_mut().for_each(|v| {
                *v = if rng.random::<f64>() < w {
                    draw(rng)
                } else {
                    q.sample(rng, 1)[0] as f32
                }
            });
        }
        "one-sided" => row
            .iter_mut()
            .for_each(|v| *v = (-(rng.random::<f64>().max(1e-300)).ln() * p.scale) as f32),
        "single-nonzero" => {
            row.fill(0.0);
            row[rng.random_range(0..n)] = 1.0;
        }
        "huge-offset" => row.iter_mut().for_each(|v| *v = 1000.0 + draw(rng)),
        "tiny-scale" => row.iter_mut().for_each(|v| *v = draw(rng) * 1e-30),
        _ => row.iter_mut().for_each(|v| *v = draw(rng)),
    }
}
