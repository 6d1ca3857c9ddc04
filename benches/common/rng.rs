//! splitmix64, the deterministic generator the benches and the browser test build their data
//! with: the same seed gives the same stream every run.
//!
//! Included by path (a file directly in `benches/` would be a bench target):
//! `#[path = "common/rng.rs"] mod rng;` from a bench, `#[path = "../benches/common/rng.rs"]`
//! from a test. Each user adds the helpers it needs in its own `impl rng::Rng { … }`.

/// splitmix64: a deterministic stream of well-mixed 64-bit values; the field is the state
/// (the seed, at first).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64-bit value.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` (the top 53 bits of [`Rng::next`]).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
