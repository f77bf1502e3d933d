//! The seeded generator of the tests that compare trib with a plain-Rust
//! reference on random data: the seed is printed, and `TRIB_TEST_SEED`
//! replays a failure.

/// SplitMix64: small, fast and good enough to scatter test data.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `TRIB_TEST_SEED` when set, else the clock; prints the
    /// seed under `name` so a failing run can be replayed.
    pub fn seeded(name: &str) -> Self {
        let seed = match std::env::var("TRIB_TEST_SEED") {
            Ok(seed) => seed
                .parse()
                .unwrap_or_else(|_| panic!("TRIB_TEST_SEED={seed:?} is not a u64")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        eprintln!("{name}: seed {seed} (TRIB_TEST_SEED={seed} replays it)");
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
