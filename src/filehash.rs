//! The input file's BLAKE3, computed piece by piece on the analysis' own threads as it reads
//! the file, instead of on a thread of its own that competes with the analysis for a core.
//!
//! BLAKE3 is a tree over 1 KiB chunks, so aligned power-of-two pieces of the file hash
//! independently (their chaining values, `blake3::hazmat`) and merge into the same hash as
//! `b3sum` prints. The analysis reads a head's rows in file order; after each chunk of rows the
//! pieces below what it has read are hashed in parallel, while their bytes are still in cache,
//! and the rest at the end.

use blake3::hazmat::{self, ChainingValue, HasherExt, Mode};
use rayon::prelude::*;

/// Bytes of a piece: a power of two, so that a piece at a multiple of it is a subtree.
const PIECE: usize = 1 << 20;

/// The chaining values of the file's first pieces, in order.
#[derive(Default)]
pub struct PieceHasher {
    cvs: Vec<ChainingValue>,
}

impl PieceHasher {
    /// Hashes, in parallel, the pieces of `bytes` that lie wholly below `end` and are not yet
    /// hashed.
    pub fn advance(&mut self, bytes: &[u8], end: usize) {
        if bytes.len() <= PIECE {
            // One piece is the root: hashed whole by `finish`.
            return;
        }
        // The last piece may be short: it is whole once `end` reaches the file's end.
        let upto = if end >= bytes.len() {
            bytes.len().div_ceil(PIECE)
        } else {
            end / PIECE
        };
        if upto > self.cvs.len() {
            let new: Vec<ChainingValue> = (self.cvs.len()..upto)
                .into_par_iter()
                .map(|i| piece(bytes, i))
                .collect();
            self.cvs.extend(new);
        }
    }

    /// The BLAKE3 of `bytes`, hashing what `advance` has not.
    pub fn finish(mut self, bytes: &[u8]) -> blake3::Hash {
        if bytes.len() <= PIECE {
            return blake3::hash(bytes);
        }
        self.advance(bytes, bytes.len());
        let left = hazmat::left_subtree_len(bytes.len() as u64) as usize;
        let (l, r) = self.cvs.split_at(left / PIECE);
        hazmat::merge_subtrees_root(
            &subtree(l, left),
            &subtree(r, bytes.len() - left),
            Mode::Hash,
        )
    }
}

/// The chaining value of piece `i` of `bytes` (the last may be short).
fn piece(bytes: &[u8], i: usize) -> ChainingValue {
    let (a, b) = (i * PIECE, ((i + 1) * PIECE).min(bytes.len()));
    blake3::Hasher::new()
        .set_input_offset(a as u64)
        .update(&bytes[a..b])
        .finalize_non_root()
}

/// The chaining value of the subtree of `len` bytes over the pieces of `cvs`: split where
/// BLAKE3 splits it, the largest power of two of chunks below its length to the left.
fn subtree(cvs: &[ChainingValue], len: usize) -> ChainingValue {
    debug_assert_eq!(cvs.len(), len.div_ceil(PIECE), "a piece is missing");
    if cvs.len() == 1 {
        return cvs[0];
    }
    let left = hazmat::left_subtree_len(len as u64) as usize;
    let (l, r) = cvs.split_at(left / PIECE);
    hazmat::merge_subtrees_non_root(&subtree(l, left), &subtree(r, len - left), Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length around the pieces' and the tree's edges, hashed with advances at odd
    /// places, equals the plain BLAKE3.
    #[test]
    fn pieces_hash_as_blake3() {
        let big: Vec<u8> = (0..9 * PIECE + 5000)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [
            0,
            1,
            PIECE,
            PIECE + 1,
            2 * PIECE,
            2 * PIECE + 1024,
            3 * PIECE - 1,
            3 * PIECE,
            4 * PIECE,
            5 * PIECE + 77,
            8 * PIECE,
            9 * PIECE + 5000,
        ] {
            let bytes = &big[..len];
            let want = blake3::hash(bytes);
            assert_eq!(PieceHasher::default().finish(bytes), want, "len {len}");
            let mut h = PieceHasher::default();
            for end in [0, 1000, PIECE + 3, PIECE + 4, 3 * PIECE + 9, len + 1] {
                h.advance(bytes, end);
            }
            assert_eq!(h.finish(bytes), want, "len {len}, advanced");
        }
    }

    /// The merge is not trivially right: pieces merged in another shape give another hash.
    #[test]
    fn a_wrong_tree_gives_another_hash() {
        let bytes: Vec<u8> = (0..3 * PIECE).map(|i| (i % 253) as u8).collect();
        let cvs: Vec<ChainingValue> = (0..3).map(|i| piece(&bytes, i)).collect();
        let right_leaning = hazmat::merge_subtrees_root(
            &cvs[0],
            &hazmat::merge_subtrees_non_root(&cvs[1], &cvs[2], Mode::Hash),
            Mode::Hash,
        );
        assert_ne!(right_leaning, blake3::hash(&bytes));
        assert_eq!(PieceHasher::default().finish(&bytes), blake3::hash(&bytes));
    }
}
