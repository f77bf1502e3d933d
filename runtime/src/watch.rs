//! `trib watch`: rebuilds and reloads an app while it serves.
//!
//! What is watched follows `spin watch`: the manifest, each component's
//! `build.watch` globs (relative to the build's `workdir`, else the
//! manifest's directory), each component's Wasm `source` (and dependency
//! sources) and its `files`. Changes are gathered until none has come for
//! the debounce time ([`Debouncer`]); then only the components whose globs
//! matched are built, and the app is reloaded ([`crate::app::reload`]) and
//! swapped into the running server ([`crate::live::LiveApp`]): the listener
//! stays open and requests in flight finish on the version they started
//! on. A failed build, a manifest that does not load or a component that
//! does not compile leaves the previous version serving.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component as PathPart, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use crate::app::{LoadedApp, RuntimeSettings};
use crate::live::LiveApp;
use crate::manifest::{App, FileMount};

/// Why a watch could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A `build.watch` or `files` glob does not parse.
    #[error("component {component:?}: {what} glob {glob:?} is not valid: {message}")]
    Glob {
        /// The component ID.
        component: String,
        /// `build.watch` or `files`.
        what: &'static str,
        /// The glob as written.
        glob: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file-system watcher could not be started or given a path.
    #[error("cannot watch {path}: {source}")]
    Notify {
        /// The path (or `""` for the watcher itself).
        path: String,
        /// The watcher's error.
        source: notify::Error,
    },
}

/// Which paths concern which component, made from a manifest.
#[derive(Debug, Clone)]
pub struct WatchPlan {
    manifest: PathBuf,
    components: Vec<Watched>,
}

/// One component's watched paths.
#[derive(Debug, Clone)]
struct Watched {
    id: String,
    /// `build.watch` globs, absolute (none with `--skip-build`).
    build: Vec<Glob>,
    /// The Wasm files the component is made of (its `source` and its
    /// dependencies' sources).
    artifacts: Vec<PathBuf>,
    /// Its `files` globs, absolute.
    files: Vec<Glob>,
    /// Its `files` placements' sources (a change anywhere under one counts).
    file_dirs: Vec<PathBuf>,
}

/// An absolute glob and where its matches can be.
#[derive(Debug, Clone)]
struct Glob {
    pattern: glob::Pattern,
    /// Its fixed leading directory.
    dir: PathBuf,
    /// Whether matches can lie below `dir`'s direct entries.
    recursive: bool,
}

impl Glob {
    fn matches(&self, path: &Path) -> bool {
        self.pattern.matches_path_with(path, MATCH)
    }
}

/// What a set of changed paths calls for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The manifest changed: read it again.
    pub manifest: bool,
    /// Components whose `build.watch` globs matched: build them.
    pub build: BTreeSet<String>,
    /// Components whose `files` changed: reload them.
    pub files: BTreeSet<String>,
    /// Wasm files of components that changed: reload the components whose
    /// file really differs from what they loaded.
    pub artifacts: BTreeSet<PathBuf>,
}

impl Changes {
    /// Whether nothing watched changed.
    pub fn is_empty(&self) -> bool {
        !self.manifest
            && self.build.is_empty()
            && self.files.is_empty()
            && self.artifacts.is_empty()
    }
}

/// Glob matching as Spin's watch does it: `*` stays within a directory,
/// `**` crosses them.
const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl WatchPlan {
    /// The plan for `app`; with `skip_build`, no `build.watch` globs (only
    /// the Wasm files, `files` and the manifest are watched).
    pub fn new(app: &App, skip_build: bool) -> Result<Self, WatchError> {
        let mut components = Vec::new();
        for component in app.components.values() {
            let glob_error = |what, glob: &str, e: glob::PatternError| WatchError::Glob {
                component: component.id.clone(),
                what,
                glob: glob.to_owned(),
                message: e.to_string(),
            };
            let mut build = Vec::new();
            if !skip_build && let Some(config) = &component.build {
                for glob in &config.watch {
                    build.push(
                        absolute_glob(&config.workdir, glob)
                            .map_err(|e| glob_error("build.watch", glob, e))?,
                    );
                }
            }
            let mut files = Vec::new();
            let mut file_dirs = Vec::new();
            for mount in &component.files {
                match mount {
                    FileMount::Pattern(glob) => files.push(
                        absolute_glob(&app.root, glob).map_err(|e| glob_error("files", glob, e))?,
                    ),
                    FileMount::Placement { source, .. } => {
                        file_dirs.push(normalize(&app.root.join(source)));
                    }
                }
            }
            let mut artifacts = vec![normalize(&component.source)];
            artifacts.extend(component.dependencies.iter().map(|d| normalize(&d.source)));
            components.push(Watched {
                id: component.id.clone(),
                build,
                artifacts,
                files,
                file_dirs,
            });
        }
        Ok(Self {
            manifest: normalize(&app.manifest_path),
            components,
        })
    }

    /// Adds what a change of `path` calls for to `changes`. Paths inside a
    /// `target/` or `.spin/` directory count only as a component's Wasm
    /// file (build output and trib's own state are not sources).
    pub fn classify(&self, path: &Path, changes: &mut Changes) {
        let path = normalize(path);
        if path == self.manifest {
            changes.manifest = true;
            return;
        }
        if self.components.iter().any(|c| c.artifacts.contains(&path)) {
            changes.artifacts.insert(path);
            return;
        }
        if path
            .components()
            .any(|p| p.as_os_str() == "target" || p.as_os_str() == ".spin")
        {
            return;
        }
        for component in &self.components {
            if component.build.iter().any(|g| g.matches(&path)) {
                changes.build.insert(component.id.clone());
            }
            if component.files.iter().any(|g| g.matches(&path))
                || component.file_dirs.iter().any(|d| path.starts_with(d))
            {
                changes.files.insert(component.id.clone());
            }
        }
    }

    /// The components made of the Wasm file `path`.
    pub fn components_of(&self, artifact: &Path) -> Vec<String> {
        self.components
            .iter()
            .filter(|c| c.artifacts.iter().any(|a| a == artifact))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Every component's Wasm files.
    pub fn artifacts(&self) -> impl Iterator<Item = &PathBuf> {
        self.components.iter().flat_map(|c| c.artifacts.iter())
    }

    /// The directories to watch and whether to watch below them: the
    /// fixed part of each glob (recursively when the rest spans
    /// directories), the directory of each Wasm file and of the manifest.
    /// Only these are watched, never a whole tree with its `target/`.
    pub fn directories(&self) -> BTreeMap<PathBuf, bool> {
        let mut dirs: BTreeMap<PathBuf, bool> = BTreeMap::new();
        let mut add = |dir: PathBuf, recursive: bool| {
            // A directory that does not exist yet: its nearest existing
            // ancestor, whose direct entries are then watched.
            let (dir, recursive) = match existing_ancestor(&dir) {
                Some(found) if found == dir => (found, recursive),
                Some(found) => (found, false),
                None => return,
            };
            let entry = dirs.entry(dir).or_insert(false);
            *entry |= recursive;
        };
        if let Some(parent) = self.manifest.parent() {
            add(parent.to_owned(), false);
        }
        for component in &self.components {
            for glob in component.build.iter().chain(&component.files) {
                add(glob.dir.clone(), glob.recursive);
            }
            for dir in &component.file_dirs {
                if dir.is_dir() {
                    add(dir.clone(), true);
                } else if let Some(parent) = dir.parent() {
                    add(parent.to_owned(), false);
                }
            }
            for artifact in &component.artifacts {
                if let Some(parent) = artifact.parent() {
                    add(parent.to_owned(), false);
                }
            }
        }
        dirs
    }
}

/// `glob` (relative to `base`, or absolute) as an absolute pattern, with
/// `.` and `..` in its fixed leading part resolved (event paths have none).
fn absolute_glob(base: &Path, glob: &str) -> Result<Glob, glob::PatternError> {
    let parts: Vec<&str> = glob.split('/').collect();
    let fixed = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[']))
        .count()
        // The last part names files even when it has no wildcard.
        .min(parts.len().saturating_sub(1));
    let dir = normalize(&base.join(parts[..fixed].join("/")));
    let rest = &parts[fixed..];
    let recursive = rest.len() > 1 || rest.iter().any(|p| p.contains("**"));
    let escaped = glob::Pattern::escape(&dir.to_string_lossy());
    let pattern = glob::Pattern::new(&format!(
        "{}/{}",
        escaped.trim_end_matches('/'),
        rest.join("/")
    ))?;
    Ok(Glob {
        pattern,
        dir,
        recursive,
    })
}

/// `path` with `.` and `..` resolved lexically (no file-system access, so
/// a path that does not exist yet normalizes too).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.is_dir()).map(Path::to_owned)
}

/// Gathers changed paths until none has come for the quiet time (Spin's
/// `--debounce`), so that an editor's save or a build's burst of writes is
/// handled once. A batch is cut short after [`MAX_WAIT_FACTOR`] quiet
/// times, so a file that never stops changing still gets handled.
#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    paths: BTreeSet<PathBuf>,
}

/// A batch waits at most this many quiet times from its first change.
pub const MAX_WAIT_FACTOR: u32 = 20;

/// Changed paths gathered by a [`Debouncer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// When the first change of the batch was seen (the save).
    pub first: Instant,
    /// Every path that changed.
    pub paths: BTreeSet<PathBuf>,
}

impl Debouncer {
    /// A debouncer waiting for `quiet` without changes.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            first: None,
            last: None,
            paths: BTreeSet::new(),
        }
    }

    /// Records that `path` changed at `at`.
    pub fn push(&mut self, path: PathBuf, at: Instant) {
        self.first.get_or_insert(at);
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
        self.paths.insert(path);
    }

    /// When the pending batch is due, if there is one.
    pub fn due(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.quiet * MAX_WAIT_FACTOR))
    }

    /// The pending batch, if it is due at `now`.
    pub fn take(&mut self, now: Instant) -> Option<Batch> {
        if self.due()? > now {
            return None;
        }
        let first = self.first.take()?;
        self.last = None;
        Some(Batch {
            first,
            paths: std::mem::take(&mut self.paths),
        })
    }
}

/// A Wasm file's size and modification time: whether it differs from the
/// one loaded.
type Fingerprint = Option<(SystemTime, u64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Changes `app` as the command line asks (`-e` environment, say) each
/// time the manifest is read.
pub type AdjustApp = Arc<dyn Fn(&mut App) + Send + Sync>;

/// Called with the new app after a manifest change was loaded (to print
/// its routes again).
pub type OnManifest = Arc<dyn Fn(&LoadedApp) + Send + Sync>;

/// How `trib watch` runs.
pub struct WatchOptions {
    /// The manifest, as loaded at startup.
    pub app: App,
    /// Quiet time before a batch of changes is handled.
    pub debounce: Duration,
    /// Clear the terminal before each rebuild.
    pub clear: bool,
    /// Never build; reload when Wasm files, `files` or the manifest change.
    pub skip_build: bool,
    /// The settings reloads use (no startup SQL, no log truncation).
    pub settings: RuntimeSettings,
    /// Applied to every manifest read.
    pub adjust: AdjustApp,
    /// Called after a manifest change is serving.
    pub on_manifest: Option<OnManifest>,
}

impl std::fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchOptions")
            .field("manifest", &self.app.manifest_path)
            .field("debounce", &self.debounce)
            .field("clear", &self.clear)
            .field("skip_build", &self.skip_build)
            .finish_non_exhaustive()
    }
}

/// A file-system event as the watcher thread hands it over.
type Seen = (Instant, Vec<PathBuf>);

fn start_watcher(
    plan: &WatchPlan,
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<notify::RecommendedWatcher, WatchError> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = match event.kind {
            EventKind::Access(notify::event::AccessKind::Close(
                notify::event::AccessMode::Write,
            )) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        if relevant {
            let _ = tx.send((Instant::now(), event.paths));
        }
    })
    .map_err(|source| WatchError::Notify {
        path: String::new(),
        source,
    })?;
    for (dir, recursive) in plan.directories() {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        tracing::debug!(dir = %dir.display(), recursive, "watching");
        watcher
            .watch(&dir, mode)
            .map_err(|source| WatchError::Notify {
                path: dir.display().to_string(),
                source,
            })?;
    }
    Ok(watcher)
}

/// Watches the app `live` serves until `stop` turns `true`, rebuilding and
/// reloading it on changes (see the module documentation). Fails only if
/// the watch cannot be set up; every later error is printed and the
/// previous version keeps serving.
pub async fn run(
    live: Arc<LiveApp>,
    options: WatchOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WatchError> {
    let WatchOptions {
        mut app,
        debounce,
        clear,
        skip_build,
        settings,
        adjust,
        on_manifest,
    } = options;
    let settings = Arc::new(settings);
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let mut plan = WatchPlan::new(&app, skip_build)?;
    let mut watcher = start_watcher(&plan, tx.clone())?;
    let mut loaded: HashMap<PathBuf, Fingerprint> = plan
        .artifacts()
        .map(|a| (a.clone(), fingerprint(a)))
        .collect();
    let mut debouncer = Debouncer::new(debounce);
    let mut changes = Changes::default();
    loop {
        let due = debouncer.due();
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() { break; }
            }
            seen = rx.recv() => {
                let Some((at, paths)) = seen else { break };
                for path in paths {
                    let mut these = Changes::default();
                    plan.classify(&path, &mut these);
                    if !these.is_empty() {
                        tracing::debug!(path = %path.display(), "changed");
                        merge(&mut changes, these);
                        debouncer.push(path, at);
                    }
                }
            }
            () = sleep_until(due) => {}
        }
        let Some(batch) = debouncer.take(Instant::now()) else {
            continue;
        };
        let batch_changes = std::mem::take(&mut changes);
        if clear {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[2J\x1b[H");
            let _ = out.flush();
        }
        let outcome = handle_batch(
            &live,
            &mut app,
            &plan,
            &settings,
            &adjust,
            skip_build,
            batch_changes,
            &mut loaded,
        )
        .await;
        let Some(outcome) = outcome else { continue };
        let total = batch.first.elapsed();
        println!(
            "Reloaded {} in {} ms from save to serving (waiting {} ms, build {} ms, load {} ms)",
            outcome.what.join(", "),
            total.as_millis(),
            outcome
                .started
                .saturating_duration_since(batch.first)
                .as_millis(),
            outcome.build.as_millis(),
            outcome.load.as_millis(),
        );
        if outcome.manifest {
            if let Some(on_manifest) = &on_manifest {
                on_manifest(&live.current());
            }
            match WatchPlan::new(&app, skip_build) {
                Ok(new_plan) => {
                    plan = new_plan;
                    match start_watcher(&plan, tx.clone()) {
                        Ok(new) => watcher = new,
                        Err(e) => eprintln!("Watching the new manifest's paths failed: {e}"),
                    }
                }
                Err(e) => eprintln!("{e}; still watching the previous manifest's paths"),
            }
        }
    }
    drop(watcher);
    Ok(())
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

fn merge(into: &mut Changes, from: Changes) {
    into.manifest |= from.manifest;
    into.build.extend(from.build);
    into.files.extend(from.files);
    into.artifacts.extend(from.artifacts);
}

/// What a handled batch did, for the line printed after the swap.
struct Outcome {
    /// What was reloaded: the manifest's file name and component IDs.
    what: Vec<String>,
    manifest: bool,
    /// When handling started (the debounce wait ended).
    started: Instant,
    build: Duration,
    load: Duration,
}

/// Builds and reloads what `changes` calls for; `None` when nothing was
/// swapped (nothing to do, or it failed and was printed).
#[allow(clippy::too_many_arguments)]
async fn handle_batch(
    live: &Arc<LiveApp>,
    app: &mut App,
    plan: &WatchPlan,
    settings: &Arc<RuntimeSettings>,
    adjust: &AdjustApp,
    skip_build: bool,
    changes: Changes,
    loaded: &mut HashMap<PathBuf, Fingerprint>,
) -> Option<Outcome> {
    let started = Instant::now();
    let mut next = app.clone();
    let mut manifest = false;
    if changes.manifest {
        let path = app.manifest_path.clone();
        match crate::manifest::load(&path) {
            Ok(mut fresh) => {
                adjust(&mut fresh);
                next = fresh;
                manifest = true;
            }
            Err(e) => eprintln!(
                "Error: {e}\nThe manifest did not load; still serving the previous version"
            ),
        }
    }
    let mut reload: BTreeSet<String> = changes.files.clone();
    for artifact in &changes.artifacts {
        if loaded.get(artifact) != Some(&fingerprint(artifact)) {
            reload.extend(plan.components_of(artifact));
        }
    }
    let mut build = Duration::ZERO;
    if !skip_build {
        for id in &changes.build {
            if next.component(id).is_none() {
                continue;
            }
            let build_started = Instant::now();
            let for_build = next.clone();
            let only = vec![id.clone()];
            let built =
                tokio::task::spawn_blocking(move || crate::build_cmd::build(&for_build, &only))
                    .await;
            build += build_started.elapsed();
            match built {
                Ok(Ok(_)) => {
                    reload.insert(id.clone());
                }
                Ok(Err(e)) => {
                    eprintln!("Error: {e}");
                    eprintln!("Build failed for {id}; still serving the previous version");
                }
                Err(e) => {
                    eprintln!("Build of {id} panicked: {e}; still serving the previous version")
                }
            }
        }
    }
    reload.retain(|id| next.component(id).is_some());
    if reload.is_empty() && !manifest {
        return None;
    }
    let load_started = Instant::now();
    // What is loaded now is what these files hold.
    let artifacts: Vec<PathBuf> = next
        .components
        .values()
        .flat_map(|c| {
            std::iter::once(normalize(&c.source))
                .chain(c.dependencies.iter().map(|d| normalize(&d.source)))
        })
        .collect();
    let seen: HashMap<PathBuf, Fingerprint> = artifacts
        .into_iter()
        .map(|a| {
            let f = fingerprint(&a);
            (a, f)
        })
        .collect();
    let previous = live.current();
    let changed: Vec<String> = reload.iter().cloned().collect();
    let for_load = next.clone();
    let settings = settings.clone();
    let result = tokio::task::spawn_blocking(move || {
        crate::app::reload(for_load, &settings, &previous, &changed)
    })
    .await;
    let fresh = match result {
        Ok(Ok(fresh)) => fresh,
        Ok(Err(e)) => {
            eprintln!("Error: {e:#}");
            eprintln!("Reload failed; still serving the previous version");
            return None;
        }
        Err(e) => {
            eprintln!("Reload panicked: {e}; still serving the previous version");
            return None;
        }
    };
    live.replace(fresh.into_shared());
    let load = load_started.elapsed();
    *loaded = seen;
    let mut what = Vec::new();
    if manifest {
        let name = next.manifest_path.file_name().map_or_else(
            || "the manifest".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        what.push(name);
    }
    what.extend(reload);
    *app = next;
    Some(Outcome {
        what,
        manifest,
        started,
        build,
        load,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(manifest: &str) -> App {
        crate::manifest::parse(Path::new("/app/spin.toml"), manifest).expect("manifest parses")
    }

    const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "w"
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "a/target/wasm32-wasip2/release/a.wasm"
files = ["static/**/*.html"]
[component.a.build]
command = "cargo build"
workdir = "a"
watch = ["src/**/*.rs", "Cargo.toml", "../shared/*.wit"]
[component.b]
source = "b.wasm"
files = [{ source = "assets", destination = "/assets" }]
[component.b.build]
command = "make"
watch = ["b/**/*"]
"#;

    fn classify(plan: &WatchPlan, path: &str) -> Changes {
        let mut changes = Changes::default();
        plan.classify(Path::new(path), &mut changes);
        changes
    }

    fn build(ids: &[&str]) -> Changes {
        Changes {
            build: ids.iter().map(|s| (*s).to_owned()).collect(),
            ..Changes::default()
        }
    }

    #[test]
    fn build_globs_are_relative_to_the_workdir_and_pick_their_component() {
        let plan = WatchPlan::new(&app(MANIFEST), false).expect("plan");
        assert_eq!(classify(&plan, "/app/a/src/lib.rs"), build(&["a"]));
        assert_eq!(classify(&plan, "/app/a/src/deep/er/mod.rs"), build(&["a"]));
        assert_eq!(classify(&plan, "/app/a/Cargo.toml"), build(&["a"]));
        // `..` in a glob resolves against the workdir.
        assert_eq!(classify(&plan, "/app/shared/api.wit"), build(&["a"]));
        // `*` stays in its directory.
        assert_eq!(classify(&plan, "/app/shared/x/api.wit"), Changes::default());
        assert_eq!(classify(&plan, "/app/a/src/lib.txt"), Changes::default());
        // b's globs are relative to the manifest's directory.
        assert_eq!(classify(&plan, "/app/b/main.c"), build(&["b"]));
        assert_eq!(classify(&plan, "/app/other.rs"), Changes::default());
    }

    #[test]
    fn target_and_state_directories_are_ignored_except_for_wasm_sources() {
        let plan = WatchPlan::new(&app(MANIFEST), false).expect("plan");
        assert_eq!(
            classify(&plan, "/app/b/target/debug/foo.rs"),
            Changes::default(),
            "b/**/* would match, but target/ is build output"
        );
        assert_eq!(
            classify(&plan, "/app/.spin/logs/a_stdout.txt"),
            Changes::default()
        );
        let wasm = "/app/a/target/wasm32-wasip2/release/a.wasm";
        assert_eq!(
            classify(&plan, wasm),
            Changes {
                artifacts: [PathBuf::from(wasm)].into(),
                ..Changes::default()
            }
        );
        assert_eq!(plan.components_of(Path::new(wasm)), vec!["a".to_owned()]);
        assert_eq!(
            classify(&plan, "/app/spin.toml"),
            Changes {
                manifest: true,
                ..Changes::default()
            }
        );
    }

    #[test]
    fn files_reload_their_component_without_a_build() {
        let plan = WatchPlan::new(&app(MANIFEST), false).expect("plan");
        let files = |id: &str| Changes {
            files: [id.to_owned()].into(),
            ..Changes::default()
        };
        assert_eq!(classify(&plan, "/app/static/x/index.html"), files("a"));
        assert_eq!(classify(&plan, "/app/assets/img/logo.png"), files("b"));
    }

    #[test]
    fn skip_build_watches_no_build_globs() {
        let plan = WatchPlan::new(&app(MANIFEST), true).expect("plan");
        assert_eq!(classify(&plan, "/app/a/src/lib.rs"), Changes::default());
        assert!(
            classify(&plan, "/app/b.wasm")
                .artifacts
                .contains(Path::new("/app/b.wasm"))
        );
    }

    #[test]
    fn watched_directories_are_the_fixed_parts_of_the_globs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/src")).expect("dirs");
        std::fs::create_dir_all(root.join("shared")).expect("dirs");
        let manifest = root.join("spin.toml");
        let app = crate::manifest::parse(&manifest, MANIFEST).expect("manifest parses");
        let dirs = WatchPlan::new(&app, false).expect("plan").directories();
        assert_eq!(dirs.get(&root.join("a/src")), Some(&true));
        assert_eq!(dirs.get(&root.join("shared")), Some(&false));
        // `b/**/*` with no `b/` yet, the Wasm file's missing directory,
        // `Cargo.toml`'s directory: the nearest existing one, flat.
        assert_eq!(dirs.get(root), Some(&false));
        assert_eq!(dirs.get(&root.join("a")), Some(&false));
        assert!(!dirs.contains_key(&root.join("b")));
        assert!(dirs.keys().all(|d| d.starts_with(root)), "{dirs:?}");
    }

    #[test]
    fn the_debouncer_waits_for_quiet_then_hands_over_one_batch() {
        let quiet = Duration::from_millis(100);
        let mut d = Debouncer::new(quiet);
        let t0 = Instant::now();
        assert_eq!(d.due(), None);
        assert_eq!(d.take(t0), None);
        d.push("/x/a.rs".into(), t0);
        d.push("/x/b.rs".into(), t0 + Duration::from_millis(60));
        d.push("/x/a.rs".into(), t0 + Duration::from_millis(90));
        assert_eq!(d.due(), Some(t0 + Duration::from_millis(190)));
        assert_eq!(d.take(t0 + Duration::from_millis(150)), None);
        let batch = d.take(t0 + Duration::from_millis(190)).expect("due");
        assert_eq!(batch.first, t0, "timed from the first change");
        assert_eq!(
            batch.paths,
            ["/x/a.rs".into(), "/x/b.rs".into()].into_iter().collect()
        );
        assert_eq!(d.due(), None, "nothing pending after a batch");
    }

    #[test]
    fn a_batch_that_never_goes_quiet_is_cut_short() {
        let quiet = Duration::from_millis(10);
        let mut d = Debouncer::new(quiet);
        let t0 = Instant::now();
        for i in 0..100u32 {
            d.push("/x/a.rs".into(), t0 + Duration::from_millis(5) * i);
        }
        assert_eq!(d.due(), Some(t0 + quiet * MAX_WAIT_FACTOR));
    }

    #[test]
    fn globs_are_made_absolute_with_escaped_roots() {
        let glob = absolute_glob(Path::new("/app [1]/fns"), "../src/**/*.rs").expect("glob");
        assert!(glob.matches(Path::new("/app [1]/src/x/y.rs")));
        assert!(!glob.matches(Path::new("/app 1/src/x/y.rs")));
        assert_eq!(
            (glob.dir, glob.recursive),
            (PathBuf::from("/app [1]/src"), true)
        );
        let file = absolute_glob(Path::new("/app"), "Cargo.toml").expect("glob");
        assert_eq!((file.dir, file.recursive), (PathBuf::from("/app"), false));
        let flat = absolute_glob(Path::new("/app"), "src/*.rs").expect("glob");
        assert_eq!(
            (flat.dir, flat.recursive),
            (PathBuf::from("/app/src"), false)
        );
    }
}
