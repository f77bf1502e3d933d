//! The epoch ticker: one thread for the whole process advances the engine's
//! epoch, so busy guests yield and deadlines need no timer per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One thread for the whole process that advances the engine's epoch, so
/// busy guests yield and deadlines can be enforced without a timer per
/// request.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the epoch advances: the time slice a busy guest gets before it
/// yields its worker thread.
const EPOCH_TICK: Duration = Duration::from_millis(10);

impl EpochTicker {
    /// Starts ticking `engine`; stops when dropped.
    pub fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("trib-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
