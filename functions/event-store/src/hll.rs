//! A mergeable sketch of distinct values (unique users), stored in the
//! rollups so that a long window's unique users cost one sketch per bucket
//! instead of a scan of every event.
//!
//! Small sets are exact: up to [`SPARSE_LIMIT`] distinct values the sketch
//! keeps their 64-bit hashes (sorted), so its count is exact (barring a
//! 64-bit hash collision). Past that it becomes a HyperLogLog of precision
//! [`PRECISION`] (4,096 six-bit registers, 3,072 bytes), estimated with
//! Ertl's improved raw estimator ("New cardinality estimation algorithms
//! for HyperLogLog sketches", 2017), which needs no empirical bias tables
//! and is unbiased from tiny to huge cardinalities: relative standard
//! error [`STANDARD_ERROR`] (1.04/√4096 ≈ 1.6%). Adding a value twice and
//! merging a sketch twice change nothing (both are set unions), which is
//! what lets hours merge into days and replicas merge in any order.
//!
//! Plain Rust, no dependencies: the functions (wasm32-wasip2) and the
//! native benchmark share it.

/// Register index bits: 2^12 = 4,096 registers.
pub const PRECISION: u32 = 12;
/// Number of registers of a dense sketch.
pub const REGISTERS: usize = 1 << PRECISION;
/// The relative standard error of a dense sketch's estimate,
/// 1.04 / √[`REGISTERS`]: about 68% of estimates are within ±1.6%, 99.7%
/// within ±4.9%.
pub const STANDARD_ERROR: f64 = 1.04 / 64.0;
/// Hash bits left after the register index; a register holds the position
/// of the first 1 bit among them (1..=53), so six bits suffice.
const RANK_BITS: u32 = 64 - PRECISION;
/// Bytes of a dense sketch's registers (six bits each).
const DENSE_BYTES: usize = REGISTERS * 6 / 8;
/// Most distinct values a sketch keeps exactly: as many 8-byte hashes as
/// fit in a dense sketch's bytes.
pub const SPARSE_LIMIT: usize = DENSE_BYTES / 8;

/// Encoding tags (the first byte of a stored sketch; an empty byte string
/// is the empty sketch).
const TAG_SPARSE: u8 = 1;
const TAG_DENSE: u8 = 2;

/// A set of distinct values: exact while small, a HyperLogLog past
/// [`SPARSE_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sketch {
    /// Sorted, distinct 64-bit hashes of the values.
    Sparse(Vec<u64>),
    /// HyperLogLog registers, one byte each in memory.
    Dense(Box<[u8]>),
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::Sparse(Vec::new())
    }
}

impl Sketch {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` (a user id).
    pub fn insert(&mut self, value: &str) {
        self.insert_hash(hash(value));
    }

    /// Adds a value by its [`hash`].
    pub fn insert_hash(&mut self, h: u64) {
        match self {
            Sketch::Sparse(hashes) => {
                if let Err(at) = hashes.binary_search(&h) {
                    hashes.insert(at, h);
                    if hashes.len() > SPARSE_LIMIT {
                        *self = Sketch::Dense(densify(hashes));
                    }
                }
            }
            Sketch::Dense(registers) => add_to_registers(registers, h),
        }
    }

    /// The union of `self` and `other`, in `self`.
    pub fn merge(&mut self, other: &Sketch) {
        match (&mut *self, other) {
            (_, Sketch::Sparse(theirs)) if theirs.is_empty() => {}
            (Sketch::Sparse(ours), Sketch::Sparse(theirs)) => {
                let mut union = Vec::with_capacity(ours.len() + theirs.len());
                let (mut i, mut j) = (0, 0);
                while i < ours.len() && j < theirs.len() {
                    match ours[i].cmp(&theirs[j]) {
                        std::cmp::Ordering::Less => {
                            union.push(ours[i]);
                            i += 1;
                        }
                        std::cmp::Ordering::Greater => {
                            union.push(theirs[j]);
                            j += 1;
                        }
                        std::cmp::Ordering::Equal => {
                            union.push(ours[i]);
                            i += 1;
                            j += 1;
                        }
                    }
                }
                union.extend_from_slice(&ours[i..]);
                union.extend_from_slice(&theirs[j..]);
                *self = if union.len() > SPARSE_LIMIT {
                    Sketch::Dense(densify(&union))
                } else {
                    Sketch::Sparse(union)
                };
            }
            (Sketch::Dense(registers), Sketch::Sparse(theirs)) => {
                for &h in theirs {
                    add_to_registers(registers, h);
                }
            }
            (Sketch::Sparse(ours), Sketch::Dense(theirs)) => {
                let mut registers = theirs.clone();
                for &h in ours.iter() {
                    add_to_registers(&mut registers, h);
                }
                *self = Sketch::Dense(registers);
            }
            (Sketch::Dense(ours), Sketch::Dense(theirs)) => {
                for (a, &b) in ours.iter_mut().zip(theirs.iter()) {
                    *a = (*a).max(b);
                }
            }
        }
    }

    /// Whether [`Sketch::count`] is exact (the set is still small).
    pub fn is_exact(&self) -> bool {
        matches!(self, Sketch::Sparse(_))
    }

    /// The number of distinct values: exact while [`Sketch::is_exact`],
    /// otherwise the HyperLogLog estimate (relative standard error
    /// [`STANDARD_ERROR`]), rounded.
    pub fn count(&self) -> u64 {
        match self {
            Sketch::Sparse(hashes) => hashes.len() as u64,
            Sketch::Dense(registers) => estimate(registers).round() as u64,
        }
    }

    /// The stored form: empty for the empty set, else a tag byte and the
    /// hashes (little-endian) or the six-bit registers, packed.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Sketch::Sparse(hashes) if hashes.is_empty() => Vec::new(),
            Sketch::Sparse(hashes) => {
                let mut out = Vec::with_capacity(1 + hashes.len() * 8);
                out.push(TAG_SPARSE);
                for h in hashes {
                    out.extend_from_slice(&h.to_le_bytes());
                }
                out
            }
            Sketch::Dense(registers) => {
                let mut out = Vec::with_capacity(1 + DENSE_BYTES);
                out.push(TAG_DENSE);
                for four in registers.chunks_exact(4) {
                    let bits = u32::from(four[0])
                        | u32::from(four[1]) << 6
                        | u32::from(four[2]) << 12
                        | u32::from(four[3]) << 18;
                    out.extend_from_slice(&bits.to_le_bytes()[..3]);
                }
                out
            }
        }
    }

    /// Reads the stored form back; anything [`Sketch::to_bytes`] did not
    /// write is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Sketch, String> {
        let Some((&tag, body)) = bytes.split_first() else {
            return Ok(Sketch::new());
        };
        match tag {
            TAG_SPARSE if body.len() % 8 == 0 && body.len() / 8 <= SPARSE_LIMIT => {
                let mut hashes = Vec::with_capacity(body.len() / 8);
                for chunk in body.chunks_exact(8) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    hashes.push(u64::from_le_bytes(word));
                }
                if hashes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("a sparse sketch's hashes are not sorted and distinct".into());
                }
                Ok(Sketch::Sparse(hashes))
            }
            TAG_DENSE if body.len() == DENSE_BYTES => {
                let mut registers = vec![0u8; REGISTERS].into_boxed_slice();
                for (three, four) in body.chunks_exact(3).zip(registers.chunks_exact_mut(4)) {
                    let bits = u32::from_le_bytes([three[0], three[1], three[2], 0]);
                    for (k, register) in four.iter_mut().enumerate() {
                        *register = (bits >> (6 * k) & 0x3f) as u8;
                    }
                }
                if registers.iter().any(|&r| u32::from(r) > RANK_BITS + 1) {
                    return Err("a dense sketch has a register out of range".into());
                }
                Ok(Sketch::Dense(registers))
            }
            _ => Err(format!(
                "not a sketch (tag {tag}, {} bytes after it)",
                body.len()
            )),
        }
    }
}

/// The 64-bit hash sketches use for a value. Fixed forever: stored
/// sketches hold it, so changing it would split every user in two.
pub fn hash(value: &str) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes = value.as_bytes();
    let mut h = 0x243F_6A88_85A3_08D3 ^ (bytes.len() as u64).wrapping_mul(K);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = fmix64(h ^ u64::from_le_bytes(word)).wrapping_add(K);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input
/// bit over the output.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    k ^= k >> 33;
    k = k.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    k ^ (k >> 33)
}

fn densify(hashes: &[u64]) -> Box<[u8]> {
    let mut registers = vec![0u8; REGISTERS].into_boxed_slice();
    for &h in hashes {
        add_to_registers(&mut registers, h);
    }
    registers
}

fn add_to_registers(registers: &mut [u8], h: u64) {
    let index = (h >> RANK_BITS) as usize;
    let rest = h << PRECISION;
    let rank = (rest.leading_zeros() + 1).min(RANK_BITS + 1) as u8;
    if let Some(r) = registers.get_mut(index)
        && *r < rank
    {
        *r = rank;
    }
}

/// Ertl's improved raw estimator (Algorithm 6 of the paper).
fn estimate(registers: &[u8]) -> f64 {
    let q = RANK_BITS as usize;
    let m = REGISTERS as f64;
    let mut histogram = [0u32; RANK_BITS as usize + 2];
    for &r in registers {
        histogram[usize::from(r).min(q + 1)] += 1;
    }
    let mut z = m * tau(1.0 - f64::from(histogram[q + 1]) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + f64::from(histogram[k]));
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    let alpha_inf = 0.5 / std::f64::consts::LN_2;
    alpha_inf * m * m / z
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(range: std::ops::Range<u64>) -> Sketch {
        let mut s = Sketch::new();
        for i in range {
            s.insert(&format!("user-{i}"));
        }
        s
    }

    #[test]
    fn the_hash_is_pinned() {
        // Stored sketches depend on these values never changing (checked
        // against an independent Python implementation).
        assert_eq!(hash(""), 0x7acd_bb98_b134_4213);
        assert_eq!(hash("user-1"), 0xa475_a987_843d_fbb9);
        assert_ne!(hash("user-1"), hash("user-2"));
        assert_ne!(hash("a"), hash("a\0"));
    }

    #[test]
    fn small_sets_are_exact_and_idempotent() {
        let mut s = users(0..SPARSE_LIMIT as u64);
        assert!(s.is_exact());
        assert_eq!(s.count(), SPARSE_LIMIT as u64);
        s.insert("user-3");
        s.merge(&users(10..20));
        assert_eq!(s.count(), SPARSE_LIMIT as u64);
        assert_eq!(Sketch::new().count(), 0);
        s.insert("one more");
        assert!(!s.is_exact(), "past the limit the sketch is dense");
    }

    #[test]
    fn stored_form_round_trips_and_rejects_garbage() {
        for s in [Sketch::new(), users(0..5), users(0..5000)] {
            let bytes = s.to_bytes();
            assert_eq!(Sketch::from_bytes(&bytes), Ok(s.clone()));
        }
        assert_eq!(Sketch::new().to_bytes(), Vec::<u8>::new());
        assert_eq!(users(0..5000).to_bytes().len(), 1 + DENSE_BYTES);
        for bad in [&[9u8][..], &[TAG_SPARSE, 1, 2], &[TAG_DENSE, 0]] {
            assert!(Sketch::from_bytes(bad).is_err(), "{bad:?}");
        }
        let mut unsorted = vec![TAG_SPARSE];
        unsorted.extend_from_slice(&2u64.to_le_bytes());
        unsorted.extend_from_slice(&1u64.to_le_bytes());
        assert!(Sketch::from_bytes(&unsorted).is_err());
        let mut high = vec![TAG_DENSE];
        high.extend(std::iter::repeat_n(0xff, DENSE_BYTES));
        assert!(Sketch::from_bytes(&high).is_err());
    }

    /// Estimates stay within 4 standard errors over the whole range
    /// (deterministic inputs, so this never flakes), and their average
    /// error is small (no bias).
    #[test]
    fn estimates_are_within_the_stated_error() {
        let bound = 4.0 * STANDARD_ERROR;
        let mut errors = Vec::new();
        for (trial, n) in [400u64, 1_000, 3_000, 10_000, 30_000, 100_000, 1_000_000]
            .into_iter()
            .enumerate()
        {
            for round in 0..3u64 {
                let offset = (trial as u64 * 10 + round) * 10_000_000;
                let estimate = users(offset..offset + n).count() as f64;
                let error = (estimate - n as f64) / n as f64;
                assert!(error.abs() < bound, "n={n}: estimate {estimate}");
                errors.push(error);
            }
        }
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!(mean.abs() < STANDARD_ERROR, "mean error {mean}");
    }

    /// Merging is a union: the merge of two halves (in either order, in
    /// any representation) is exactly the sketch of the whole, and
    /// overlaps count once.
    #[test]
    fn merges_are_unions() {
        for (a, b, c) in [
            (0, 100, 200),
            (0, 300, 600),
            (0, 2_000, 4_000),
            (0, 10, 5_000),
        ] {
            let whole = users(a..c);
            let mut left = users(a..b);
            left.merge(&users(b..c));
            assert_eq!(left, whole, "{a}..{b}..{c}");
            let mut right = users(b..c);
            right.merge(&users(a..b));
            assert_eq!(right, whole);
            // Overlap: merging again changes nothing.
            right.merge(&users(a..c));
            assert_eq!(right, whole);
        }
        let mut dense = users(0..1000);
        dense.merge(&Sketch::new());
        assert_eq!(dense, users(0..1000));
    }
}
