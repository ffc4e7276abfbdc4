//! aldfit: exact asymmetric-Laplace analysis of every class of a classifier head.
//!
//! `ald` holds the maths (docs/DESIGN.md section 2), `head` loads checkpoints, `backend` the
//! primitives each device implements, `analysis` the pipeline written once above them, `report`
//! the files a run writes (`outset` swaps them in as one set), `synth` seeded synthetic heads, `tree` the recursive split trees,
//! `bench` the quick timing table, `plots` the pictures.

pub mod ald;
pub mod analysis;
pub mod backend;
pub mod bench;
pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod error;
pub mod filehash;
pub mod glyphs;
pub mod head;
pub mod logsum;
pub mod memory;
pub mod outset;
pub mod philox;
pub mod plots;
pub mod report;
pub mod select;
pub mod sort;
pub mod synth;
pub mod text;
pub mod tolerances;
pub mod tree;
pub mod validate;
pub mod verdict;

pub use error::{Error, Result};
