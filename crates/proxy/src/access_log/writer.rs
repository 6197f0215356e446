//! Non-blocking log sinks: each file (or stdout/stderr) has one flusher thread fed through a
//! bounded queue; workers never wait on I/O, and a full queue drops the line (with a warning).
//! The thread flushes whenever its queue runs dry, and at least every flush interval under
//! sustained load (`--file-flush-interval-msec`).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use legate_config::access_log::AccessLogSink;
use legate_stats::{Counter, Gauge, GaugeMode, Store};

/// Lines a sink's queue holds before new lines are dropped.
const QUEUE_LINES: usize = 16 * 1024;
/// Size of the flusher's write buffer (Envoy's default minimum flush size is 64 KiB).
const BUFFER_BYTES: usize = 64 * 1024;

/// Why a log sink could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The log file could not be opened for appending.
    #[error("cannot open access log file '{path}': {source}")]
    Open {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The flusher thread could not be started.
    #[error("cannot start the access log flusher: {0}")]
    Thread(std::io::Error),
}

/// Envoy's `filesystem.*` stats, counted for file sinks.
#[derive(Clone)]
struct FileStats {
    write_buffered: Counter,
    write_completed: Counter,
    flushed_by_timer: Counter,
    write_failed: Counter,
    write_total_buffered: Gauge,
}

impl FileStats {
    fn new(store: &Store) -> Self {
        Self {
            write_buffered: store.counter("filesystem.write_buffered"),
            write_completed: store.counter("filesystem.write_completed"),
            flushed_by_timer: store.counter("filesystem.flushed_by_timer"),
            write_failed: store.counter("filesystem.write_failed"),
            write_total_buffered: store.gauge("filesystem.write_total_buffered", GaugeMode::Accumulate),
        }
    }
}

/// One log destination shared by every logger that names it.
pub struct LogWriter {
    tx: SyncSender<String>,
    stats: Option<FileStats>,
    dropped: AtomicU64,
    name: String,
}

impl LogWriter {
    /// Queues a line; never blocks (a full queue drops the line).
    pub fn write(&self, line: String) {
        let len = line.len() as u64;
        // Counted before sending, so the flusher never subtracts bytes not yet added.
        if let Some(s) = &self.stats {
            s.write_total_buffered.add(len);
        }
        let result = self.tx.try_send(line);
        if let Some(s) = &self.stats {
            match result {
                Ok(()) => s.write_buffered.inc(),
                Err(_) => s.write_total_buffered.sub(len),
            }
        }
        match result {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!("access log {}: queue full, {n} line(s) dropped so far", self.name);
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                if let Some(s) = &self.stats {
                    s.write_failed.inc();
                }
            }
        }
    }
}

type Registry = Mutex<HashMap<AccessLogSink, Weak<LogWriter>>>;

/// The writer of `sink`, shared with other loggers of the same destination while it lives.
pub(super) fn open(sink: &AccessLogSink, store: &Store, flush_interval: Duration) -> Result<Arc<LogWriter>, WriterError> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut registry = REGISTRY.get_or_init(Registry::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = registry.get(sink).and_then(Weak::upgrade) {
        return Ok(w);
    }
    let (out, stats, name): (Box<dyn Write + Send>, _, _) = match sink {
        AccessLogSink::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| WriterError::Open { path: path.clone(), source })?;
            (Box::new(file), Some(FileStats::new(store)), path.clone())
        }
        AccessLogSink::Stdout => (Box::new(std::io::stdout()), None, "stdout".to_string()),
        AccessLogSink::Stderr => (Box::new(std::io::stderr()), None, "stderr".to_string()),
    };
    let (tx, rx) = sync_channel(QUEUE_LINES);
    let flusher = Flusher { out: BufWriter::with_capacity(BUFFER_BYTES, out), stats: stats.clone(), pending: 0, last_flush: Instant::now(), interval: flush_interval };
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || flusher.run(rx))
        .map_err(WriterError::Thread)?;
    let writer = Arc::new(LogWriter { tx, stats, dropped: AtomicU64::new(0), name });
    registry.retain(|_, w| w.strong_count() > 0);
    registry.insert(sink.clone(), Arc::downgrade(&writer));
    Ok(writer)
}

/// The flusher thread's state.
struct Flusher {
    out: BufWriter<Box<dyn Write + Send>>,
    stats: Option<FileStats>,
    pending: u64,
    last_flush: Instant,
    interval: Duration,
}

impl Flusher {
    /// Writes queued lines until every sender is gone; flushes when the queue runs dry and when
    /// the interval has passed under sustained load.
    fn run(mut self, rx: Receiver<String>) {
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(line) = next.take() {
                self.append(&line);
                if self.last_flush.elapsed() >= self.interval {
                    self.flush(true);
                }
                match rx.try_recv() {
                    Ok(l) => next = Some(l),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                }
            }
            self.flush(false);
        }
        self.flush(false);
    }

    fn append(&mut self, line: &str) {
        self.pending += line.len() as u64;
        if self.out.write_all(line.as_bytes()).is_err() {
            if let Some(s) = &self.stats {
                s.write_failed.inc();
            }
        }
    }

    fn flush(&mut self, by_timer: bool) {
        self.last_flush = Instant::now();
        if self.pending == 0 {
            return;
        }
        let ok = self.out.flush().is_ok();
        if let Some(s) = &self.stats {
            s.write_total_buffered.sub(self.pending);
            if ok {
                s.write_completed.inc();
            } else {
                s.write_failed.inc();
            }
            if by_timer {
                s.flushed_by_timer.inc();
            }
        }
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_promptly_and_are_counted() {
        let path = std::env::temp_dir().join(format!("legate-writer-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let store = Store::new();
        let sink = AccessLogSink::File(path.to_string_lossy().into_owned());
        let w = open(&sink, &store, Duration::from_secs(10)).unwrap();
        assert!(Arc::ptr_eq(&w, &open(&sink, &store, Duration::from_secs(10)).unwrap()));
        w.write("one\n".into());
        w.write("two\n".into());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap_or_default() != "one\ntwo\n" {
            assert!(Instant::now() < deadline, "lines not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(store.counter("filesystem.write_buffered").value(), 2);
        while store.gauge("filesystem.write_total_buffered", GaugeMode::Accumulate).value() != 0 {
            assert!(Instant::now() < deadline, "buffer gauge not drained");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(store.counter("filesystem.write_completed").value() >= 1);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unopenable_files_are_errors() {
        let sink = AccessLogSink::File("/nonexistent-dir/x.log".into());
        let err = open(&sink, &Store::new(), Duration::from_secs(1)).err().unwrap().to_string();
        assert!(err.starts_with("cannot open access log file '/nonexistent-dir/x.log'"), "{err}");
    }
}
