//! A small mutational fuzzer that runs on stable Rust inside `cargo test`.
//!
//! cargo-fuzz and libFuzzer need nightly and sanitizer instrumentation; this
//! driver needs neither. Without coverage feedback it steers by *outcome*:
//! each target returns a short signature of what happened (accepted, or the
//! field and first words of the error), and an input that produces a
//! signature never seen before joins the corpus, so mutations build on inputs
//! that got further into the parser. Inputs are text (every target parses
//! text), so a finding can be saved as a file and replayed as a seed.
//!
//! Each iteration either mutates a corpus entry (byte edits, dictionary
//! tokens, line splices, interesting numbers and Unicode) or, one time in
//! four, asks the target's grammar to build a fresh input from random bytes
//! through [`arbitrary::Unstructured`], which reaches deep validation that
//! random edits of a seed rarely reach.
//!
//! A panic anywhere in a target, including a failed invariant, is a finding:
//! it is captured with its backtrace, deduplicated by panic location,
//! shrunk, saved under `CARGO_TARGET_TMPDIR/fuzz-findings/TARGET/`, and
//! makes the test fail after the time budget is spent.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;

/// What a target does with one input: panics on a bug, otherwise returns a
/// short signature of the outcome (used only to steer the corpus).
pub type RunFn = fn(&str) -> String;

/// Builds one input from random bytes with the target's grammar.
pub type GenerateFn = fn(&mut Unstructured<'_>) -> arbitrary::Result<String>;

/// One fuzz target.
pub struct Target {
    /// Short name: used for the seed folder and findings.
    pub name: &'static str,
    /// Starting inputs besides the checked-in seed folder.
    pub seeds: Vec<String>,
    /// Tokens the mutator splices in.
    pub dictionary: &'static [&'static str],
    /// The target itself.
    pub run: RunFn,
    /// The target's grammar.
    pub generate: GenerateFn,
}

/// What one run found.
pub struct Report {
    /// Inputs run (seeds included).
    pub iterations: u64,
    /// CPU time of the fuzzing thread.
    pub cpu: Duration,
    /// Distinct outcomes seen.
    pub signatures: usize,
    /// Final corpus size.
    pub corpus: usize,
    /// Panicking inputs, one per panic location.
    pub findings: Vec<Finding>,
    /// Total panicking inputs, duplicates included.
    pub panics: u64,
}

/// A panicking input.
pub struct Finding {
    /// The shrunk input.
    pub input: String,
    /// The panic message and location.
    pub message: String,
    /// Where the input was saved.
    pub saved: Option<PathBuf>,
    /// The backtrace of the first occurrence.
    pub backtrace: String,
}

/// The corpus never grows past this, so that picking stays cheap.
const MAX_CORPUS: usize = 4096;
/// Inputs longer than this are cut: the parsers' cost is not what we test.
const MAX_LEN: usize = 16 * 1024;

/// Seconds per target from `TRIB_FUZZ_SECONDS` (default 3, so the four
/// targets cost CI about a dozen CPU seconds).
pub fn budget() -> Duration {
    let secs = std::env::var("TRIB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// The PRNG seed from `TRIB_FUZZ_SEED`; fixed by default so a CI failure
/// can be replayed (the time budget still makes run lengths differ).
fn base_seed() -> u64 {
    std::env::var("TRIB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x7472_6962_6675_7a7a)
}

/// SplitMix64: tiny, fast and good enough to drive mutations.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Characters that tend to break text handling: multi-byte (slicing),
/// case mappings that change length, invisible and control characters.
const UNICODE: &[&str] = &[
    "é", "€", "𝄞", "\u{0}", "\u{7f}", "\u{200b}", "\u{feff}", "İ", "ß", "\u{212a}", "\r", "\t",
    "\\u0000", "\\n", "٣",
];

/// Numbers at the edges of the integer types the parsers use.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "255",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e400",
    "nan",
    "0x10",
    "+1",
];

/// Bytes with meaning in TOML, URLs and routes.
const PUNCTUATION: &[u8] = b"\"'[]{}=,.:/*\\\n #@-_%?";

/// Replays the seeds, then mutates for `budget`; writes one line of figures
/// to stderr (uncaptured, so CI logs show it) and returns the report.
pub fn fuzz(target: &Target, budget: Duration) -> Report {
    install_panic_hook();
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    let name_hash = target.name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let seed = base_seed() ^ name_hash;
    let mut rng = Rng::new(seed);
    let mut state = State {
        target,
        corpus: Vec::new(),
        signatures: HashSet::new(),
        findings: Vec::new(),
        locations: HashSet::new(),
        panics: 0,
        iterations: 0,
    };
    let mut seeds = target.seeds.clone();
    seeds.extend(checked_in_seeds(target.name));
    for seed in seeds {
        state.execute(seed, true);
    }
    if state.corpus.is_empty() {
        state.corpus.push(String::new());
    }
    let mut random = vec![0u8; 1024];
    while start.elapsed() < budget {
        let input = if rng.one_in(4) {
            let len = 16 + rng.below(random.len() - 16);
            for b in &mut random[..len] {
                *b = rng.next_u64() as u8;
            }
            let mut u = Unstructured::new(&random[..len]);
            (target.generate)(&mut u).unwrap_or_default()
        } else {
            let base = state.corpus[rng.below(state.corpus.len())].clone();
            mutate(&mut rng, base, &state.corpus, target.dictionary)
        };
        state.execute(input, false);
    }
    let report = Report {
        iterations: state.iterations,
        cpu: thread_cpu_time().saturating_sub(cpu_start),
        signatures: state.signatures.len(),
        corpus: state.corpus.len(),
        panics: state.panics,
        findings: state.findings,
    };
    // Straight to stderr: the test harness captures eprintln!, and these
    // figures belong in every CI log.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {}: {} iterations, {:.2} s CPU, {} outcomes, corpus {}, {} findings ({} panicking inputs), seed {}",
        target.name,
        report.iterations,
        report.cpu.as_secs_f64(),
        report.signatures,
        report.corpus,
        report.findings.len(),
        report.panics,
        base_seed(),
    );
    report
}

/// Panics listing every finding, if there are any.
pub fn assert_no_findings(name: &str, report: &Report) {
    if report.findings.is_empty() {
        return;
    }
    let mut text = format!(
        "fuzz target {name} found {} bug(s):\n",
        report.findings.len()
    );
    for f in &report.findings {
        text.push_str(&format!(
            "\n--- {}\ninput ({} bytes): {:?}\nsaved: {}\nadd it to tests/fuzz/seeds/{name}/ as a regression seed once fixed\nbacktrace:\n{}\n",
            f.message,
            f.input.len(),
            f.input,
            f.saved
                .as_deref()
                .map_or_else(|| "(not saved)".to_owned(), |p| p.display().to_string()),
            f.backtrace,
        ));
    }
    panic!("{text}");
}

struct State<'t> {
    target: &'t Target,
    corpus: Vec<String>,
    signatures: HashSet<String>,
    findings: Vec<Finding>,
    locations: HashSet<String>,
    panics: u64,
    iterations: u64,
}

impl State<'_> {
    /// Runs one input; keeps it if its outcome is new (seeds always).
    fn execute(&mut self, mut input: String, is_seed: bool) {
        if input.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !input.is_char_boundary(cut) {
                cut -= 1;
            }
            input.truncate(cut);
        }
        self.iterations += 1;
        match run_caught(self.target.run, &input) {
            Ok(signature) => {
                let new = self.signatures.insert(signature);
                if (new || is_seed) && self.corpus.len() < MAX_CORPUS {
                    self.corpus.push(input);
                }
            }
            Err(panic) => {
                self.panics += 1;
                if self.locations.insert(panic.location.clone()) {
                    let input = shrink(self.target.run, input, &panic.location);
                    let saved = save_finding(self.target.name, &input);
                    // The message of the shrunk input, which is what the
                    // report shows.
                    let message = match run_caught(self.target.run, &input) {
                        Err(shrunk) if shrunk.location == panic.location => shrunk.message,
                        _ => panic.message,
                    };
                    self.findings.push(Finding {
                        input,
                        message,
                        saved,
                        backtrace: panic.backtrace,
                    });
                }
            }
        }
    }
}

/// Applies one to eight stacked mutations.
fn mutate(rng: &mut Rng, input: String, corpus: &[String], dict: &[&str]) -> String {
    let mut bytes = input.into_bytes();
    let rounds = 1 + rng.below(8).min(rng.below(8));
    for _ in 0..rounds {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(13) {
            0..=2 => insert(&mut bytes, at, dict[rng.below(dict.len())].as_bytes()),
            3 => insert(&mut bytes, at, UNICODE[rng.below(UNICODE.len())].as_bytes()),
            4 => replace_number(rng, &mut bytes),
            5 if len > 0 => {
                let end = (at + 1 + rng.below(16)).min(len);
                bytes.drain(at.min(len - 1)..end);
            }
            6 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = PUNCTUATION[rng.below(PUNCTUATION.len())];
            }
            7 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.next_u64() as u8;
            }
            8 if len > 0 => {
                // Duplicate a range in place.
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                let chunk = bytes[from..to].to_vec();
                insert(&mut bytes, at, &chunk);
            }
            9 => {
                // Splice in a line from another corpus entry.
                let other = &corpus[rng.below(corpus.len())];
                let lines: Vec<&str> = other.lines().collect();
                if !lines.is_empty() {
                    let line = format!("{}\n", lines[rng.below(lines.len())]);
                    let at = line_start(&bytes, at);
                    insert(&mut bytes, at, line.as_bytes());
                }
            }
            10 => {
                // Cross over: this input's head, another's tail.
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let cut = rng.below(other.len() + 1);
                bytes.truncate(at);
                bytes.extend_from_slice(&other[cut..]);
            }
            11 => {
                // Drop or swap whole lines.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() > 1 {
                    let i = rng.below(lines.len());
                    let j = rng.below(lines.len());
                    if rng.one_in(2) {
                        lines.swap(i, j);
                    } else {
                        lines.remove(i);
                    }
                    bytes = lines.join("\n").into_bytes();
                }
            }
            _ => bytes.truncate(at),
        }
        if bytes.len() > MAX_LEN {
            bytes.truncate(MAX_LEN);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn insert(bytes: &mut Vec<u8>, at: usize, what: &[u8]) {
    let at = at.min(bytes.len());
    bytes.splice(at..at, what.iter().copied());
}

fn line_start(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// Replaces a run of digits (or inserts where there is none) with an edge
/// number.
fn replace_number(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let number = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
    let digits: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .collect();
    if digits.is_empty() {
        let at = rng.below(bytes.len() + 1);
        insert(bytes, at, number);
        return;
    }
    let start = digits[rng.below(digits.len())];
    let end = (start..bytes.len())
        .find(|&i| !bytes[i].is_ascii_digit())
        .unwrap_or(bytes.len());
    bytes.splice(start..end, number.iter().copied());
}

/// Deletes chunks (halving their size) while the input still panics at the
/// same place, so that the reported input is short enough to read.
fn shrink(run: RunFn, input: String, location: &str) -> String {
    let still_fails = |s: &str| matches!(run_caught(run, s), Err(p) if p.location == location);
    // Whole lines first: removing one keeps the rest of a TOML file
    // parseable, which removing characters rarely does.
    let mut lines: Vec<&str> = input.split_inclusive('\n').collect();
    let mut i = lines.len();
    while i > 0 {
        i -= 1;
        let candidate: String = lines[..i].iter().chain(&lines[i + 1..]).copied().collect();
        if still_fails(&candidate) {
            lines.remove(i);
        }
    }
    let input: String = lines.concat();
    let mut best: Vec<char> = input.chars().collect();
    let mut chunk = best.len() / 2;
    let mut attempts = 0;
    while chunk > 0 && attempts < 4000 {
        let mut i = 0;
        let mut progress = false;
        while i < best.len() && attempts < 4000 {
            attempts += 1;
            let end = (i + chunk).min(best.len());
            let candidate: String = best[..i].iter().chain(&best[end..]).collect();
            if still_fails(&candidate) {
                best.drain(i..end);
                progress = true;
            } else {
                i += chunk;
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    best.into_iter().collect()
}

fn save_finding(target: &str, input: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-findings")
        .join(target);
    std::fs::create_dir_all(&dir).ok()?;
    let hash = input.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{hash:016x}.txt"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// The checked-in seeds (and regression inputs) of a target.
fn checked_in_seeds(target: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fuzz/seeds")
        .join(target);
    read_dir_texts(&dir, None)
}

/// The text of every file in `dir` (optionally only those ending in
/// `suffix`), sorted by name so runs are repeatable.
pub fn read_dir_texts(dir: &Path, suffix: Option<&str>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| suffix.is_none_or(|s| p.to_string_lossy().ends_with(s)))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// A caught panic.
struct Panic {
    message: String,
    location: String,
    backtrace: String,
}

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<Panic>> = const { RefCell::new(None) };
    /// Locations whose backtrace was already taken: symbolizing one costs
    /// far more than an iteration, and a bug can panic thousands of times.
    static TRACED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn run_caught(run: RunFn, input: &str) -> Result<String, Panic> {
    CATCHING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| run(input)));
    CATCHING.with(|c| c.set(false));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| Panic {
                message: payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(non-string panic)".to_owned()),
                location: "unknown".to_owned(),
                backtrace: String::new(),
            })
    })
}

/// Installs (once) a panic hook that, on a thread that is running a target,
/// records the panic quietly instead of printing it; other panics (the test
/// harness's own) print as usual.
fn install_panic_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                default(info);
                return;
            }
            let location = info.location().map_or_else(
                || "unknown".to_owned(),
                |l| format!("{}:{}", l.file(), l.line()),
            );
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "(non-string panic)".to_owned());
            let backtrace = if TRACED.with(|t| t.borrow_mut().insert(location.clone())) {
                trim_backtrace(&std::backtrace::Backtrace::force_capture().to_string())
            } else {
                String::new()
            };
            CAUGHT.with(|c| {
                *c.borrow_mut() = Some(Panic {
                    message: format!("panicked at {location}: {message}"),
                    location,
                    backtrace,
                });
            });
        }));
    });
}

/// Keeps the frames that tell the story: from the panicking code up to the
/// driver, without the hook, std's panic machinery and the harness.
fn trim_backtrace(full: &str) -> String {
    // A frame is a "N: function" line and its "at file:line" lines.
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in full.lines() {
        let first = line.trim_start().split(':').next().unwrap_or("");
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            frames.push(vec![line]);
        } else if let Some(frame) = frames.last_mut() {
            frame.push(line);
        }
    }
    const NOISE: &[&str] = &[
        "install_panic_hook",
        "std::panicking",
        "core::panicking",
        "rust_begin_unwind",
        "__rust_end_short_backtrace",
        "core::ops::function::Fn",
    ];
    frames
        .iter()
        .skip_while(|f| NOISE.iter().any(|n| f[0].contains(n)))
        .take_while(|f| !f[0].contains("fuzz::driver::run_caught"))
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// CPU time of the calling thread (the harness runs each test on its own
/// thread), from the scheduler's accounting; wall time where unavailable.
fn thread_cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(
            || {
                static EPOCH: OnceLock<Instant> = OnceLock::new();
                EPOCH.get_or_init(Instant::now).elapsed()
            },
            Duration::from_nanos,
        )
}
