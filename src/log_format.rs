//! How a log line looks when it is plain text (the default `--log-format`
//! on a pipe, a file or a container's log): the same line
//! tracing-subscriber's default format writes without colour —
//!
//! `2026-12-04T18:30:00.123456Z  INFO request{request_id=…}:api{operation=…}: done status=200`
//!
//! — written with less work, because it is written once per request: the
//! timestamp's date and time of day are formatted once a second per thread
//! (only the microseconds each line), and neither the line nor its fields
//! go through the colour styling that the default format applies to every
//! part even when colour is off. Values are the same `Debug` text, and a
//! message's terminal control characters are escaped as the default
//! escapes them; a unit test holds the two formats line for line.
//!
//! A terminal keeps tracing-subscriber's own coloured format; JSON lines
//! keep its JSON format.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain-text line format (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainLine;

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_column(event.metadata().level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The plain-text field format: `name=value` pairs, values in their
/// `Debug` form, the event's message first and bare, as tracing-subscriber's
/// default field format writes them without colour — but written directly,
/// not through the styling wrappers the default applies to every name and
/// `=` even when colour is off.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    fn write_field(&mut self, name: &str, value: &dyn std::fmt::Debug) -> std::fmt::Result {
        if name == "message" {
            self.write_separator()?;
            // A message is the one value written bare, so the one whose
            // control characters could reach a terminal: they are escaped.
            return write!(ControlEscaper(&mut self.writer), "{value:?}");
        }
        self.write_name(name)?;
        write!(self.writer, "{value:?}")
    }

    /// What `Debug` writes for a string that [`needs_escaping`] says needs
    /// none, without its check of every character for an escape.
    fn write_quoted(&mut self, name: &str, value: &str) -> std::fmt::Result {
        self.write_name(name)?;
        self.writer.write_char('"')?;
        self.writer.write_str(value)?;
        self.writer.write_char('"')
    }

    /// The separator, `name` and `=`.
    fn write_name(&mut self, name: &str) -> std::fmt::Result {
        self.write_separator()?;
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')
    }

    fn write_separator(&mut self) -> std::fmt::Result {
        if std::mem::take(&mut self.first) {
            Ok(())
        } else {
            self.writer.write_char(' ')
        }
    }
}

/// Whether `Debug` would write `text` other than between quotes as is:
/// anything but printable ASCII, a quote or a backslash.
fn needs_escaping(text: &str) -> bool {
    text.bytes()
        .any(|b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else if self.result.is_ok() && !needs_escaping(value) {
            // Most values are names, ids and regions.
            self.result = self.write_quoted(field.name(), value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!("{value} {}.sources={}", field.name(), SourceList(source)),
            ),
            None => self.record_debug(field, &format_args!("{value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // Fields of a `log` crate record that the level already covers.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.write_field(field.name(), value);
    }
}

/// An error's chain of sources as a list: `["first", "second"]`.
struct SourceList<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for SourceList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&format_args!("{error}"));
            next = error.source();
        }
        list.finish()
    }
}

/// Writes through to a writer with terminal control characters escaped
/// (ESC, BEL, BS, FF, DEL and the C1 range), as the default format escapes
/// a message.
struct ControlEscaper<'w, 'a>(&'w mut Writer<'a>);

impl std::fmt::Write for ControlEscaper<'_, '_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let is_control = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        if !text.contains(is_control) {
            return self.0.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c if is_control(c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The level as the default format writes it: five columns, right-aligned,
/// then a space.
fn level_column(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        Level::ERROR => "ERROR ",
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` of the second a thread last logged in.
#[derive(Clone, Copy)]
struct SecondPrefix {
    unix_seconds: u64,
    text: [u8; 20],
}

thread_local! {
    static LAST_SECOND: Cell<Option<SecondPrefix>> = const { Cell::new(None) };
}

/// Writes `at` in RFC 3339 with microseconds, in UTC, and a space.
fn write_timestamp(writer: &mut Writer<'_>, at: SystemTime) -> std::fmt::Result {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let prefix = LAST_SECOND.with(|last| match last.get() {
        Some(prefix) if prefix.unix_seconds == seconds => prefix,
        _ => {
            let prefix = second_prefix(seconds);
            last.set(Some(prefix));
            prefix
        }
    });
    // The prefix is ASCII digits and punctuation by construction.
    writer.write_str(std::str::from_utf8(&prefix.text).map_err(|_| std::fmt::Error)?)?;
    let mut micros = [b'0'; 6];
    let mut rest = since_epoch.subsec_micros();
    for digit in micros.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    writer.write_str(std::str::from_utf8(&micros).map_err(|_| std::fmt::Error)?)?;
    writer.write_str("Z ")
}

fn second_prefix(unix_seconds: u64) -> SecondPrefix {
    let at = i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut text = [0u8; 20];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut rest = value;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    };
    put(0, at.year().clamp(0, 9999) as u32, 4);
    put(5, u8::from(at.month()) as u32, 2);
    put(8, at.day() as u32, 2);
    put(11, at.hour() as u32, 2);
    put(14, at.minute() as u32, 2);
    put(17, at.second() as u32, 2);
    for (at, punctuation) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        text[at] = punctuation;
    }
    SecondPrefix { unix_seconds, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timestamp(at: SystemTime) -> String {
        let mut out = String::new();
        write_timestamp(&mut Writer::new(&mut out), at).unwrap();
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = UNIX_EPOCH + Duration::new(1_796_409_000, 7_654_321);
        assert_eq!(timestamp(at), "2026-12-04T18:30:00.007654Z ");
        // Same second from the cache, then the next second recomputed.
        assert_eq!(
            timestamp(at + Duration::from_micros(5)),
            "2026-12-04T18:30:00.007659Z "
        );
        assert_eq!(
            timestamp(at + Duration::from_secs(1)),
            "2026-12-04T18:30:01.007654Z "
        );
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z ");
    }

    fn logged_with(format_plain: bool, log: impl FnOnce()) -> String {
        let out = crate::log_writer::Sink::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_target(false)
            .with_ansi(false);
        if format_plain {
            let subscriber = builder
                .fmt_fields(PlainFields)
                .event_format(PlainLine)
                .finish();
            tracing::subscriber::with_default(subscriber, log);
        } else {
            tracing::subscriber::with_default(builder.finish(), log);
        }
        out.text()
    }

    /// Everything after the timestamp, which differs between two runs.
    fn after_timestamp(line: &str) -> &str {
        line.split_once("Z ").map(|(_, rest)| rest).unwrap_or(line)
    }

    #[test]
    fn lines_read_as_the_default_format_writes_them_without_colour() {
        let log = || {
            let outer = tracing::info_span!("request", request_id = %"abc-123");
            let _outer = outer.enter();
            let inner = tracing::info_span!(
                "api",
                operation = "DescribeRepositories",
                account = tracing::field::Empty
            );
            inner.record("account", "123456789012");
            let _inner = inner.enter();
            tracing::info!(status = 200, elapsed_us = 42u64, "done");
            tracing::warn!(error_message = "a \"quoted\" thing", "failed");
            tracing::info!(
                plain = "us-east-1",
                tab = "a\tb",
                accent = "caf\u{e9}",
                slash = "a\\b"
            );
            tracing::error!("outside");
            tracing::info!(r#type = "raw", "bell \x07 and \x1b[31mred\u{85}");
            let wrapped = std::io::Error::other(Outer(std::io::Error::other("inner cause")));
            let error: &(dyn std::error::Error + 'static) = &wrapped;
            tracing::warn!(error, plain = %"shown", "with sources");
        };
        let plain = logged_with(true, log);
        let default = logged_with(false, log);
        assert_eq!(plain.lines().count(), 6, "{plain}");
        assert_eq!(plain.lines().count(), default.lines().count(), "{default}");
        for (ours, theirs) in plain.lines().zip(default.lines()) {
            assert_eq!(after_timestamp(ours), after_timestamp(theirs));
        }
        assert!(plain.lines().next().unwrap().ends_with(
            "Z  INFO request{request_id=abc-123}:api{operation=\"DescribeRepositories\" account=\"123456789012\"}: done status=200 elapsed_us=42"
        ), "{plain}");
        assert!(
            plain.lines().nth(3).unwrap().contains("ERROR request{"),
            "{plain}"
        );
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer failure")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_line_outside_any_span_has_no_span_prefix() {
        let plain = logged_with(true, || tracing::warn!(scans = 3, "queued"));
        assert!(plain.ends_with("Z  WARN queued scans=3\n"), "{plain}");
        let plain = logged_with(true, || tracing::warn!(scans = 3));
        assert!(plain.ends_with("Z  WARN scans=3\n"), "{plain}");
    }
}
