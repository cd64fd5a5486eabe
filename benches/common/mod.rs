//! What the benchmarks share: a small seeded generator, so every run builds the same corpus,
//! and measuring feedwatch alone in a child process (with the `wait4` the tests use).

#![allow(dead_code, unused_imports)] // each bench uses a different part

#[path = "../../tests/common/child.rs"]
mod child;
mod measure;
pub mod news;

pub use child::{Measured, wait4};
pub use measure::{measure_child_if_asked, run_feedwatch};

/// xorshift64*: deterministic and fast; benchmarks need repeatability, not cryptography.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.below(items.len())]
    }
}
