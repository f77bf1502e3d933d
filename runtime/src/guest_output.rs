//! Where a guest's stdout and stderr go, as `spin up` lays it out: appended
//! to `LOG_DIR/ID_stdout.txt` and `ID_stderr.txt` (the log directory
//! defaults to `.spin/logs` in the app), and, for the components being
//! followed, echoed on trib's stderr with each line prefixed by
//! `[ID] ` so the output of several components stays readable.
//!
//! Writes are small and go straight to the file (opened once per component
//! in append mode, shared by every instance), as Spin's writer does.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::telemetry::StoreTrace;

/// Which components' output is echoed on the terminal (`--follow`, `-q`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Follow {
    /// Every component (Spin's default).
    #[default]
    All,
    /// Only these component IDs.
    Named(HashSet<String>),
    /// None (`--quiet`).
    None,
}

impl Follow {
    /// What `--follow` and `--quiet` ask for: `all` (or no `--follow`)
    /// follows every component.
    pub fn from_flags(follow: &[String], quiet: bool) -> Self {
        if quiet {
            Self::None
        } else if follow.is_empty() || follow.iter().any(|f| f == "all") {
            Self::All
        } else {
            Self::Named(follow.iter().cloned().collect())
        }
    }

    /// Whether `component` is echoed.
    pub fn follows(&self, component: &str) -> bool {
        match self {
            Self::All => true,
            Self::Named(ids) => ids.contains(component),
            Self::None => false,
        }
    }

    /// The named components that the app does not define, so a typo in
    /// `--follow` is an error rather than silence.
    pub fn unknown<'a>(&'a self, defined: &HashSet<&str>) -> Vec<&'a str> {
        match self {
            Self::Named(ids) => {
                let mut unknown: Vec<&str> = ids
                    .iter()
                    .map(String::as_str)
                    .filter(|id| !defined.contains(id))
                    .collect();
                unknown.sort_unstable();
                unknown
            }
            _ => Vec::new(),
        }
    }
}

/// Flags-level choices about guest output.
#[derive(Debug, Clone, Default)]
pub struct OutputSettings {
    /// The log directory (`None`: no log files).
    pub log_dir: Option<PathBuf>,
    /// Empty existing log files at startup (`--truncate-logs`).
    pub truncate: bool,
    /// Which components are echoed.
    pub follow: Follow,
}

/// A failure to set up a log file.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file {path}: {source}")]
pub struct LogFileError {
    path: String,
    source: std::io::Error,
}

impl OutputSettings {
    /// Creates the log directory (and empties old logs when asked).
    pub fn prepare(&self) -> Result<(), LogFileError> {
        let Some(dir) = &self.log_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir).map_err(|source| LogFileError {
            path: dir.display().to_string(),
            source,
        })?;
        if self.truncate
            && let Ok(entries) = dir.read_dir()
        {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with("_stdout.txt") || name.ends_with("_stderr.txt") {
                    File::create(entry.path()).map_err(|source| LogFileError {
                        path: entry.path().display().to_string(),
                        source,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The stdout and stderr sinks of `component`.
    pub fn for_component(&self, component: &str) -> Result<ComponentOutput, LogFileError> {
        let echo = self
            .follow
            .follows(component)
            .then(|| Arc::<str>::from(format!("[{component}] ")));
        let open = |suffix: &str| -> Result<Option<Arc<File>>, LogFileError> {
            let Some(dir) = &self.log_dir else {
                return Ok(None);
            };
            let path = log_path(dir, component, suffix);
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| LogFileError {
                    path: path.display().to_string(),
                    source,
                })?;
            Ok(Some(Arc::new(file)))
        };
        let id: Arc<str> = component.into();
        Ok(ComponentOutput {
            stdout: GuestStream {
                file: open("stdout")?,
                echo: echo.clone(),
                component: id.clone(),
                stream: "stdout",
                trace: None,
            },
            stderr: GuestStream {
                file: open("stderr")?,
                echo,
                component: id,
                stream: "stderr",
                trace: None,
            },
        })
    }
}

/// `DIR/ID_SUFFIX.txt`, with anything but letters, digits, `-` and `_`
/// in the ID replaced so an ID never names another directory.
fn log_path(dir: &Path, component: &str, suffix: &str) -> PathBuf {
    let safe: String = component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}_{suffix}.txt"))
}

/// One component's two output sinks, shared by all its instances.
#[derive(Debug, Clone, Default)]
pub struct ComponentOutput {
    /// Where the guest's stdout goes.
    pub stdout: GuestStream,
    /// Where the guest's stderr goes.
    pub stderr: GuestStream,
}

/// One output sink: an optional log file and an optional echo prefix.
/// Without either, output is dropped.
#[derive(Debug, Clone, Default)]
pub struct GuestStream {
    file: Option<Arc<File>>,
    echo: Option<Arc<str>>,
    component: Arc<str>,
    stream: &'static str,
    /// The store's request, whose trace ID tags echoed lines.
    trace: Option<Arc<StoreTrace>>,
}

impl GuestStream {
    /// This sink for one store: echoed lines carry the trace ID of the
    /// request the store works for (the log files keep Spin's plain text).
    /// With export off there is no trace ID, and echoing never looks.
    pub fn for_store(&self, trace: &Arc<StoreTrace>) -> Self {
        let mut stream = self.clone();
        if crate::telemetry::export::on() {
            stream.trace = Some(trace.clone());
        }
        stream
    }

    fn writer(&self) -> GuestWriter {
        GuestWriter {
            file: self.file.clone(),
            echo: self.echo.clone().map(|prefix| Echo {
                prefix,
                component: self.component.clone(),
                stream: self.stream,
                trace: self.trace.clone(),
            }),
            at_line_start: true,
        }
    }
}

/// Where and how echoed lines are tagged.
struct Echo {
    prefix: Arc<str>,
    component: Arc<str>,
    stream: &'static str,
    trace: Option<Arc<StoreTrace>>,
}

impl Echo {
    fn trace_id(&self) -> Option<String> {
        crate::telemetry::request::trace_id(&self.trace.as_ref()?.context()?)
    }

    fn write(&self, bytes: &[u8], at_line_start: &mut bool) {
        let trace_id = self.trace_id();
        if crate::telemetry::logs::json() {
            let text = String::from_utf8_lossy(bytes);
            for line in text.lines() {
                crate::telemetry::logs::guest_line(
                    &self.component,
                    self.stream,
                    line,
                    trace_id.as_deref(),
                );
            }
            return;
        }
        let echoed = match trace_id {
            Some(id) => {
                let prefix = format!("{} {id}] ", self.prefix.trim_end_matches("] "));
                prefixed(&prefix, bytes, at_line_start)
            }
            None => prefixed(&self.prefix, bytes, at_line_start),
        };
        // The terminal is best effort: a closed stderr must not fail the
        // guest's write.
        let _ = std::io::stderr().lock().write_all(&echoed);
    }
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

/// One guest stream's writer; remembers whether the next byte starts a
/// line, so each echoed line gets its prefix once.
struct GuestWriter {
    file: Option<Arc<File>>,
    echo: Option<Echo>,
    at_line_start: bool,
}

impl GuestWriter {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(file) = &self.file {
            (&**file).write_all(bytes)?;
        }
        if let Some(echo) = &self.echo {
            echo.write(bytes, &mut self.at_line_start);
        }
        Ok(())
    }
}

/// `bytes` with `prefix` before each line that starts in it.
fn prefixed(prefix: &str, bytes: &[u8], at_line_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + prefix.len() * 2);
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if *at_line_start {
            out.extend_from_slice(prefix.as_bytes());
        }
        out.extend_from_slice(line);
        *at_line_start = line.ends_with(b"\n");
    }
    out
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for GuestWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_prefixed_once_across_writes() {
        let mut start = true;
        let mut out = prefixed("[a] ", b"one\ntw", &mut start);
        out.extend(prefixed("[a] ", b"o\nthree\n", &mut start));
        assert_eq!(
            String::from_utf8(out).expect("test input"),
            "[a] one\n[a] two\n[a] three\n"
        );
        assert!(start);
    }

    #[test]
    fn follow_flags_read_as_spin_reads_them() {
        assert_eq!(Follow::from_flags(&[], false), Follow::All);
        assert_eq!(Follow::from_flags(&["all".into()], false), Follow::All);
        assert_eq!(Follow::from_flags(&[], true), Follow::None);
        let named = Follow::from_flags(&["api".into()], false);
        assert!(named.follows("api") && !named.follows("web"));
        let defined: HashSet<&str> = ["api"].into();
        assert_eq!(
            Follow::from_flags(&["api".into(), "apii".into()], false).unknown(&defined),
            vec!["apii"]
        );
    }

    #[test]
    fn output_lands_in_spins_files_and_ids_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().expect("test input");
        let settings = OutputSettings {
            log_dir: Some(dir.path().join("logs")),
            truncate: false,
            follow: Follow::None,
        };
        settings.prepare().expect("test input");
        let out = settings.for_component("api").expect("test input");
        out.stdout
            .writer()
            .write_all(b"hello\n")
            .expect("test input");
        out.stderr
            .writer()
            .write_all(b"oops\n")
            .expect("test input");
        let logs = dir.path().join("logs");
        assert_eq!(
            std::fs::read_to_string(logs.join("api_stdout.txt")).expect("test input"),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_to_string(logs.join("api_stderr.txt")).expect("test input"),
            "oops\n"
        );
        assert_eq!(
            log_path(&logs, "../x", "stdout"),
            logs.join("___x_stdout.txt")
        );
        // --truncate-logs empties what an earlier run wrote.
        OutputSettings {
            truncate: true,
            ..settings
        }
        .prepare()
        .expect("test input");
        assert_eq!(
            std::fs::read_to_string(logs.join("api_stdout.txt")).expect("test input"),
            ""
        );
    }
}
