//! Where the log's lines go on their way to stdout: a shared buffer that a
//! request's thread appends its formatted line to, and one writer thread
//! that writes what has gathered, a batch at a time.
//!
//! Why not one message per line to a writer thread (`tracing-appender`'s
//! non-blocking writer, which ecrd used before): every line then woke the
//! sleeping writer thread, and on a small machine under load that wake-up
//! and the context switches it causes cost more than formatting the line
//! (the request log took about a quarter of the control plane's CPU per
//! request). Here only the line that finds the buffer empty wakes the
//! writer, which then waits [`BATCH_WINDOW`] for more lines before it
//! writes them with one `write`: under load that is tens of wake-ups a
//! second instead of tens of thousands, and an idle server has none.
//!
//! A line is on stdout at most about [`BATCH_WINDOW`] after it was logged;
//! lines still buffered are written when the [`LogWriterGuard`] is dropped
//! (at shutdown). A line that would grow the buffer past
//! [`MAX_PENDING_BYTES`] (stdout blocked, nobody reading it) is dropped
//! rather than hold up its request, and the number dropped is reported in
//! the next batch written.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer gathers lines after the first one of a batch.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// The most bytes waiting to be written; beyond it lines are dropped.
pub const MAX_PENDING_BYTES: usize = 2 << 20;

/// A buffer that grew past this in a burst is given back after its batch.
const KEEP_CAPACITY: usize = 256 << 10;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped_lines: u64,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the buffer stops being empty, and at close.
    filled: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A thread that panicked while appending left whole lines or none:
        // the buffer is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The tracing writer: cheap to clone, one per formatted line.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Flushes what is buffered and stops the writer thread when dropped.
pub struct LogWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out`; lines logged through the returned
/// writer reach `out` until the guard is dropped.
pub fn spawn<W: Write + Send + 'static>(out: W) -> std::io::Result<(LogWriter, LogWriterGuard)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        filled: Condvar::new(),
    });
    let thread = std::thread::Builder::new().name("ecrd-log".into()).spawn({
        let shared = shared.clone();
        move || write_batches(&shared, out)
    })?;
    Ok((
        LogWriter {
            shared: shared.clone(),
        },
        LogWriterGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && !pending.closed {
            pending = shared
                .filled
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        if pending.bytes.is_empty() && pending.closed {
            return;
        }
        if !pending.closed {
            // Let the lines of the next few milliseconds join this batch.
            drop(pending);
            std::thread::sleep(BATCH_WINDOW);
            pending = shared.lock();
        }
        std::mem::swap(&mut pending.bytes, &mut batch);
        let dropped = std::mem::take(&mut pending.dropped_lines);
        drop(pending);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "ecrd: {dropped} log lines were dropped: the log's output did not keep up"
            );
        }
        // Nothing better to do with a failed write than carry on: the
        // server must not stop because its log cannot be written.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        if batch.capacity() > KEEP_CAPACITY {
            batch.shrink_to(KEEP_CAPACITY);
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.bytes.len() + line.len() > MAX_PENDING_BYTES {
            pending.dropped_lines += 1;
            return Ok(line.len());
        }
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.filled.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An output tests read back: the log writer's and the line format's.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Sink(pub(crate) Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl Sink {
    /// Everything written so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_arrives_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        w.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
        assert_eq!(next, [1000; 4]);
    }

    #[test]
    fn a_line_is_written_within_the_batch_window_without_a_shutdown() {
        let sink = Sink::default();
        let (mut writer, _guard) = spawn(sink.clone()).unwrap();
        writer.write_all(b"listening\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "line never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"listening\n");
    }

    /// An output that blocks until the test lets it go.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Sink);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_drops_lines_past_the_bound_and_says_how_many() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (mut writer, guard) = spawn(Stuck(gate.clone(), sink.clone())).unwrap();
        writer.write_all(b"first\n").unwrap();
        // The writer thread takes "first" and blocks writing it.
        std::thread::sleep(BATCH_WINDOW * 3);
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let mut sent = 0;
        while sent < 3 * MAX_PENDING_BYTES / 1024 {
            writer.write_all(&line).unwrap();
            sent += 1;
        }
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        drop(guard);
        let text = sink.text();
        assert!(text.starts_with("first\n"));
        assert!(text.contains("log lines were dropped"), "no drop notice");
        let kept = text.lines().filter(|l| l.len() == 1023).count();
        assert!(kept > 0 && kept < sent, "kept {kept} of {sent}");
        assert!(text.len() <= MAX_PENDING_BYTES + 4096);
    }
}
