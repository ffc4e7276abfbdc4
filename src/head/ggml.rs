//! ggml's block quantisations, dequantised as llama.cpp does (`dequantize_row_*` in
//! ggml-quants.c): the same f32 operations in the same order, so that each value equals
//! llama.cpp's own Python package (`gguf.quants`) bit for bit (tests/gguf.rs).
//!
//! A block holds `elems` values in `bytes` bytes; a row of a quantised matrix is whole blocks.

use half::f16;

/// The block quantisations aldfit reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quant {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

/// Values per K-quant super-block.
const QK_K: usize = 256;

fn half(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

impl Quant {
    /// From ggml's type number (`ggml_type`).
    pub fn of_ggml(t: u32) -> Option<Quant> {
        Some(match t {
            2 => Quant::Q4_0,
            3 => Quant::Q4_1,
            6 => Quant::Q5_0,
            7 => Quant::Q5_1,
            8 => Quant::Q8_0,
            10 => Quant::Q2K,
            11 => Quant::Q3K,
            12 => Quant::Q4K,
            13 => Quant::Q5K,
            14 => Quant::Q6K,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Quant::Q4_0 => "Q4_0",
            Quant::Q4_1 => "Q4_1",
            Quant::Q5_0 => "Q5_0",
            Quant::Q5_1 => "Q5_1",
            Quant::Q8_0 => "Q8_0",
            Quant::Q2K => "Q2_K",
            Quant::Q3K => "Q3_K",
            Quant::Q4K => "Q4_K",
            Quant::Q5K => "Q5_K",
            Quant::Q6K => "Q6_K",
        }
    }

    /// (values, bytes) of one block (ggml's `GGML_QUANT_SIZES`).
    pub fn block(self) -> (usize, usize) {
        match self {
            Quant::Q4_0 => (32, 2 + 16),
            Quant::Q4_1 => (32, 2 + 2 + 16),
            Quant::Q5_0 => (32, 2 + 4 + 16),
            Quant::Q5_1 => (32, 2 + 2 + 4 + 16),
            Quant::Q8_0 => (32, 2 + 32),
            Quant::Q2K => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
            Quant::Q3K => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
            Quant::Q4K => (QK_K, 2 + 2 + QK_K / 2 + 12),
            Quant::Q5K => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
            Quant::Q6K => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
        }
    }

    /// Dequantises whole blocks `bytes` into `out` (as many values as the blocks hold).
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) {
        let (elems, size) = self.block();
        for (b, y) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(elems)) {
            match self {
                Quant::Q4_0 => q4_0(b, y),
                Quant::Q4_1 => q4_1(b, y),
                Quant::Q5_0 => q5(b, y, false),
                Quant::Q5_1 => q5(b, y, true),
                Quant::Q8_0 => q8_0(b, y),
                Quant::Q2K => q2_k(b, y),
                Quant::Q3K => q3_k(b, y),
                Quant::Q4K => q45_k(b, y, false),
                Quant::Q5K => q45_k(b, y, true),
                Quant::Q6K => q6_k(b, y),
            }
        }
    }
}

/// d, qs[16]: y[j] = d·(low nibble − 8), y[j + 16] = d·(high nibble − 8).
fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = half(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = d * ((q & 0x0f) as i32 - 8) as f32;
        y[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
    }
}

/// d, m, qs[16]: y = d·nibble + m.
fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half(b, 0), half(b, 2));
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = d * (q & 0x0f) as f32 + m;
        y[j + 16] = d * (q >> 4) as f32 + m;
    }
}

/// Q5_0 (d, qh, qs; value − 16) and Q5_1 (d, m, qh, qs; d·value + m): the fifth bit of value
/// i is bit i of qh.
fn q5(b: &[u8], y: &mut [f32], with_min: bool) {
    let d = half(b, 0);
    let (m, at) = if with_min { (half(b, 2), 4) } else { (0.0, 2) };
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let qs = &b[at + 4..at + 20];
    for j in 0..16 {
        let lo = (qs[j] & 0x0f) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        if with_min {
            y[j] = d * lo as f32 + m;
            y[j + 16] = d * hi as f32 + m;
        } else {
            y[j] = d * (lo as i32 - 16) as f32;
            y[j + 16] = d * (hi as i32 - 16) as f32;
        }
    }
}

/// d, qs[32] as i8: y = q·d.
fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = half(b, 0);
    for j in 0..32 {
        y[j] = (b[2 + j] as i8) as f32 * d;
    }
}

/// scales[16], qs[64], d, dmin: value e is 2 bits of qs[(e / 128)·32 + e % 32] at shift
/// 2·((e / 32) % 4); its sub-block e / 16 has scale d·(sc & 15) and min dmin·(sc >> 4).
fn q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[..16], &b[16..80]);
    let (d, dmin) = (half(b, 80), half(b, 82));
    for (e, v) in y.iter_mut().enumerate().take(QK_K) {
        let q = (qs[(e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        let sc = scales[e / 16];
        let dl = d * (sc & 0x0f) as f32;
        let ml = dmin * (sc >> 4) as f32;
        *v = dl * q as f32 - ml;
    }
}

/// The sixteen 6-bit scales of a Q3_K block, packed in 12 bytes, less 32.
fn q3_k_scales(s: &[u8]) -> [f32; 16] {
    let mut out = [0f32; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = if i < 8 { s[i] & 0x0f } else { s[i - 8] >> 4 };
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        *o = (((low | (high << 4)) as i8) - 32) as f32;
    }
    out
}

/// hmask[32], qs[64], scales[12], d: value e is 2 bits of qs as in Q2_K, less 4 where bit e / 32
/// of hmask[e % 32] is clear; its sub-block e / 16 has scale d·(scale − 32).
fn q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs) = (&b[..32], &b[32..96]);
    let scales = q3_k_scales(&b[96..108]);
    let d = half(b, 108);
    for (e, v) in y.iter_mut().enumerate().take(QK_K) {
        let low = ((qs[(e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3) as i8;
        let high = ((hmask[e % 32] >> (e / 32)) & 1) ^ 1;
        let q = low - ((high << 2) as i8);
        let dl = d * scales[e / 16];
        *v = dl * q as f32;
    }
}

/// The eight 6-bit scales and mins of a Q4_K/Q5_K block, packed in 12 bytes.
fn k_scale_min(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 0x3f;
        mn[j] = s[4 + j] & 0x3f;
        sc[4 + j] = (s[8 + j] & 0x0f) | ((s[j] >> 2) & 0x30);
        mn[4 + j] = (s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30);
    }
    (sc, mn)
}

/// d, dmin, scales[12], (Q5_K: qh[32],) qs[128]: sub-block j of 32 values reads nibble j % 2 of
/// qs[(j / 2)·32 + l] (and for Q5_K bit j of qh[l] as the fifth bit); y = d·sc·q − dmin·min.
fn q45_k(b: &[u8], y: &mut [f32], five: bool) {
    let (d, dmin) = (half(b, 0), half(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    let (qh, qs) = if five {
        (&b[16..48], &b[48..176])
    } else {
        (&b[0..0], &b[16..144])
    };
    for j in 0..8 {
        let d1 = d * sc[j] as f32;
        let m1 = dmin * mn[j] as f32;
        for l in 0..32 {
            let mut q = (qs[(j / 2) * 32 + l] >> (4 * (j % 2))) & 0x0f;
            if five {
                q |= ((qh[l] >> j) & 1) << 4;
            }
            y[j * 32 + l] = d1 * q as f32 - m1;
        }
    }
}

/// ql[128], qh[64], scales[16] as i8, d: value e = h·128 + n·64 + p (p < 64) takes nibble n of
/// ql[h·64 + p] and, as value e = h·128 + s·32 + l, bits 2s of qh[h·32 + l]; less 32, times
/// d·scale[e / 16].
fn q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = half(b, 208);
    for (e, v) in y.iter_mut().enumerate().take(QK_K) {
        let (h, r) = (e / 128, e % 128);
        let low = (ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0x0f;
        let high = (qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
        let q = ((low | (high << 4)) as i8) - 32;
        *v = d * (scales[e / 16] as i8) as f32 * q as f32;
    }
}
