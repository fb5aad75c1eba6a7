//! How a log line looks. Three formats, chosen by `--log-format` and where
//! the log goes:
//!
//! - plain text (the default on a pipe, a file or a container's log): the
//!   line tracing-subscriber's default format writes without colour —
//!   `2026-12-04T18:30:00.123456Z  INFO api{request_id=… operation=…}: done status=200`;
//! - the same line with colour codes, for a person at a terminal;
//! - JSON, one object per line, the object tracing-subscriber's JSON
//!   format writes (`timestamp`, `level`, `fields`, `span`, `spans`).
//!
//! Each writes the request's context (`request_log::Context`, not a
//! span) the way it would write a span of that name and those fields, the
//! outermost, so a line of a request reads as it did when the request was
//! a span. Real spans follow it.
//!
//! They are written with less work than tracing-subscriber's own, because
//! a line is written for every request: the timestamp's date and time of
//! day are formatted once a second per thread (only the microseconds each
//! line), plain text goes through no colour styling, and JSON is written
//! straight into the line rather than through a map of values. Values are
//! the same text (`Debug` for plain, JSON types for JSON), and a message's
//! terminal control characters are escaped as the default escapes them;
//! unit tests hold the plain and the JSON line to tracing-subscriber's,
//! byte for byte after the timestamp.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::request_log::{Context, ContextValue};

/// The text line format (see the module docs), with colour codes or not.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainLine {
    colour: bool,
}

impl PlainLine {
    /// The line with colour codes, for a terminal.
    pub fn coloured() -> Self {
        PlainLine { colour: true }
    }

    /// Writes `text` styled with the SGR `code` when in colour.
    fn styled(&self, writer: &mut Writer<'_>, code: &str, text: &str) -> std::fmt::Result {
        if self.colour {
            write!(writer, "\x1b[{code}m{text}\x1b[0m")
        } else {
            writer.write_str(text)
        }
    }

    /// `name{fields}:` as the default format writes a span.
    fn write_span(&self, writer: &mut Writer<'_>, name: &str, fields: &str) -> std::fmt::Result {
        self.styled(writer, BOLD, name)?;
        if !fields.is_empty() {
            self.styled(writer, BOLD, "{")?;
            writer.write_str(fields)?;
            self.styled(writer, BOLD, "}")?;
        }
        self.styled(writer, DIM, ":")
    }

    fn write_context(&self, writer: &mut Writer<'_>, context: &Context) -> std::fmt::Result {
        self.styled(writer, BOLD, context.name())?;
        self.styled(writer, BOLD, "{")?;
        for (i, (name, value)) in context.fields().enumerate() {
            if i > 0 {
                writer.write_char(' ')?;
            }
            writer.write_str(name)?;
            writer.write_char('=')?;
            match value {
                ContextValue::Bare(text) => writer.write_str(text)?,
                ContextValue::Quoted(text) => write_debug_str(writer, text)?,
            }
        }
        self.styled(writer, BOLD, "}")?;
        self.styled(writer, DIM, ":")
    }
}

const BOLD: &str = "1";
const DIM: &str = "2";

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
        if self.colour {
            write!(writer, "\x1b[{DIM}m")?;
        }
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(if self.colour { "\x1b[0m " } else { " " })?;
        let level = event.metadata().level();
        self.styled(&mut writer, level_colour(level), level_text(level))?;
        writer.write_char(' ')?;
        let mut any =
            crate::request_log::with_context(|context| self.write_context(&mut writer, context))
                .transpose()?
                .is_some();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let fields = extensions
                    .get::<FormattedFields<N>>()
                    .map(|fields| fields.as_str())
                    .unwrap_or("");
                self.write_span(&mut writer, span.metadata().name(), fields)?;
                any = true;
            }
        }
        if any {
            writer.write_char(' ')?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The JSON line format (see the module docs). Real spans' fields must be
/// formatted by tracing-subscriber's `JsonFields`, whose object this
/// format copies into the line.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
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
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_str("\",\"fields\":{")?;
        let mut visitor = JsonVisitor {
            writer: writer.by_ref(),
            first: true,
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;
        writer.write_char('}')?;
        crate::request_log::with_context(|context| {
            write_json_spans(ctx, &mut writer, Some(context))
        })
        .unwrap_or_else(|| write_json_spans(ctx, &mut writer, None))?;
        writer.write_str("}\n")
    }
}

/// The `span` (the innermost) and `spans` (from the root) members: the
/// request's context, if any, is the outermost; none when there is neither
/// a context nor a span.
fn write_json_spans<S, N>(
    ctx: &FmtContext<'_, S, N>,
    writer: &mut Writer<'_>,
    context: Option<&Context>,
) -> std::fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let leaf = ctx.event_scope().and_then(|mut scope| scope.next());
    match (&leaf, context) {
        (Some(span), _) => {
            writer.write_str(",\"span\":")?;
            write_json_span::<S, N>(writer, span)?;
        }
        (None, Some(context)) => {
            writer.write_str(",\"span\":")?;
            write_json_context(writer, context)?;
        }
        (None, None) => return Ok(()),
    }
    writer.write_str(",\"spans\":[")?;
    let mut first = true;
    if let Some(context) = context {
        write_json_context(writer, context)?;
        first = false;
    }
    for span in ctx
        .event_scope()
        .into_iter()
        .flat_map(|scope| scope.from_root())
    {
        if !std::mem::take(&mut first) {
            writer.write_char(',')?;
        }
        write_json_span::<S, N>(writer, &span)?;
    }
    writer.write_char(']')
}

/// A span as tracing-subscriber's JSON format writes it: its fields (the
/// object `JsonFields` formatted, keys in order) and then its `name`.
fn write_json_span<S, N>(writer: &mut Writer<'_>, span: &SpanRef<'_, S>) -> std::fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let extensions = span.extensions();
    let inner = extensions
        .get::<FormattedFields<N>>()
        .and_then(|fields| fields.as_str().strip_prefix('{'))
        .and_then(|fields| fields.strip_suffix('}'))
        .unwrap_or("");
    writer.write_char('{')?;
    writer.write_str(inner)?;
    if !inner.is_empty() {
        writer.write_char(',')?;
    }
    writer.write_str("\"name\":")?;
    write_json_str(writer, span.metadata().name())?;
    writer.write_char('}')
}

/// The request's context as the JSON format writes a span: fields with
/// their keys in order (as `JsonFields` keeps a span's), then `name`.
fn write_json_context(writer: &mut Writer<'_>, context: &Context) -> std::fmt::Result {
    let mut fields: Vec<(&str, &ContextValue)> = context.fields().collect();
    fields.sort_unstable_by_key(|(name, _)| *name);
    writer.write_char('{')?;
    for (name, value) in fields {
        write_json_str(writer, name)?;
        writer.write_char(':')?;
        write_json_str(writer, value.text())?;
        writer.write_char(',')?;
    }
    writer.write_str("\"name\":")?;
    write_json_str(writer, context.name())?;
    writer.write_char('}')
}

/// An event's fields as JSON members, in the order the event has them,
/// typed as tracing-serde types them: numbers and booleans as JSON
/// numbers and booleans, everything else as the string of its `Debug`.
struct JsonVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: std::fmt::Result,
}

impl JsonVisitor<'_> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(',')?;
            }
            write_json_str(&mut self.writer, name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char(':')?;
            value(&mut self.writer)
        })();
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |w| match serde_json::Number::from_f64(value) {
            Some(number) => write!(w, "{number}"),
            None => w.write_str("null"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| write_json_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(JsonEscaper(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn write_json_str(writer: &mut Writer<'_>, text: &str) -> std::fmt::Result {
    writer.write_char('"')?;
    JsonEscaper(writer).write_str(text)?;
    writer.write_char('"')
}

/// Writes through with what JSON must escape in a string escaped, as
/// serde_json escapes it: quote, backslash, and control characters below
/// U+0020 (short forms for `\b \f \n \r \t`).
struct JsonEscaper<'w, 'a>(&'w mut Writer<'a>);

impl std::fmt::Write for JsonEscaper<'_, '_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        let mut clean = 0;
        for (at, byte) in text.bytes().enumerate() {
            if !needs(byte) {
                continue;
            }
            self.0.write_str(&text[clean..at])?;
            match byte {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                other => write!(self.0, "\\u{other:04x}")?,
            }
            clean = at + 1;
        }
        self.0.write_str(&text[clean..])
    }
}

/// What `Debug` writes for a string: between quotes, escaped where
/// [`needs_escaping`] says it must be (most strings are names, ids and
/// regions, written as they are without `Debug`'s check of each character).
fn write_debug_str(writer: &mut Writer<'_>, text: &str) -> std::fmt::Result {
    if needs_escaping(text) {
        write!(writer, "{text:?}")
    } else {
        writer.write_char('"')?;
        writer.write_str(text)?;
        writer.write_char('"')
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
        } else if self.result.is_ok() {
            self.result = self
                .write_name(field.name())
                .and_then(|()| write_debug_str(&mut self.writer, value));
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

/// The level as the default format writes it: five columns, right-aligned.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// The SGR colour the default format gives a level at a terminal.
fn level_colour(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "35",
        Level::DEBUG => "34",
        Level::INFO => "32",
        Level::WARN => "33",
        Level::ERROR => "31",
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

/// Writes `at` in RFC 3339 with microseconds, in UTC.
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
    writer.write_char('Z')
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
        out.push(' ');
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

    #[derive(Clone, Copy)]
    enum Format {
        /// Ours, plain text.
        Plain,
        /// Ours, JSON.
        Json,
        /// tracing-subscriber's default, without colour.
        TheirPlain,
        /// tracing-subscriber's JSON.
        TheirJson,
    }

    fn logged_with(format: Format, log: impl FnOnce()) -> String {
        let out = crate::log_writer::Sink::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_target(false)
            .with_ansi(false);
        match format {
            Format::Plain => {
                let subscriber = builder
                    .fmt_fields(PlainFields)
                    .event_format(PlainLine::default())
                    .finish();
                tracing::subscriber::with_default(subscriber, log);
            }
            Format::Json => {
                let subscriber = builder
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(JsonLine)
                    .finish();
                tracing::subscriber::with_default(subscriber, log);
            }
            Format::TheirPlain => tracing::subscriber::with_default(builder.finish(), log),
            Format::TheirJson => tracing::subscriber::with_default(builder.json().finish(), log),
        }
        out.text()
    }

    /// Logs `log` in a request's context, as the router's front runs a
    /// request: the context's name and fields as `fields` gives them.
    fn in_request_context(
        name: &'static str,
        fields: &[(&'static str, ContextValue)],
        log: impl FnOnce(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let id = crate::request_log::RequestId("abc-123".into());
        runtime.block_on(crate::request_log::in_context(&id, async {
            crate::request_log::answered_by(name);
            for (field, value) in fields {
                crate::request_log::record(field, value.clone());
            }
            log();
        }));
    }

    /// Everything after the timestamp, which differs between two runs.
    fn after_timestamp(line: &str) -> &str {
        line.split_once("Z ")
            .or_else(|| line.split_once("Z\","))
            .map(|(_, rest)| rest)
            .unwrap_or(line)
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
        let plain = logged_with(Format::Plain, log);
        let default = logged_with(Format::TheirPlain, log);
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
        let plain = logged_with(Format::Plain, || tracing::warn!(scans = 3, "queued"));
        assert!(plain.ends_with("Z  WARN queued scans=3\n"), "{plain}");
        let plain = logged_with(Format::Plain, || tracing::warn!(scans = 3));
        assert!(plain.ends_with("Z  WARN scans=3\n"), "{plain}");
    }

    #[test]
    fn json_lines_read_as_the_json_format_writes_them() {
        let log = || {
            tracing::info!(n = 1u64, "outside any span");
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
            tracing::warn!(
                error_message = "a \"quoted\"\tthing\\ \u{1}\u{8}\u{c}\n\r caf\u{e9}",
                negative = -3i64,
                ratio = 0.25f64,
                not_a_number = f64::NAN,
                yes = true,
                shown = %"displayed",
                r#type = "raw",
                "failed"
            );
            let empty = tracing::info_span!("empty");
            let _empty = empty.enter();
            let wrapped = std::io::Error::other(Outer(std::io::Error::other("inner cause")));
            let error: &(dyn std::error::Error + 'static) = &wrapped;
            tracing::error!(error, "with sources");
        };
        let ours = logged_with(Format::Json, log);
        let theirs = logged_with(Format::TheirJson, log);
        assert_eq!(ours.lines().count(), 4, "{ours}");
        assert_eq!(ours.lines().count(), theirs.lines().count(), "{theirs}");
        for (ours, theirs) in ours.lines().zip(theirs.lines()) {
            assert!(ours.starts_with("{\"timestamp\":\""), "{ours}");
            assert_eq!(after_timestamp(ours), after_timestamp(theirs));
            serde_json::from_str::<serde_json::Value>(ours).unwrap();
        }
    }

    /// A line in a request's context reads as the same line did when the
    /// request was a span with those fields, in both formats.
    #[test]
    fn a_request_context_is_written_as_its_span_was() {
        let fields = [
            (
                "operation",
                ContextValue::Quoted("DescribeRepositories".into()),
            ),
            ("account", ContextValue::Quoted("123456789012".into())),
            ("digest", ContextValue::Bare("sha256:ab".into())),
        ];
        let events = || {
            tracing::info!(status = 200, "done");
            let nested = tracing::info_span!("scan", image = "app:1");
            let _nested = nested.enter();
            tracing::warn!("inside a span of its own");
        };
        let as_span = || {
            let span = tracing::info_span!(
                "api",
                request_id = %"abc-123",
                operation = "DescribeRepositories",
                account = "123456789012",
                digest = %"sha256:ab"
            );
            let _span = span.enter();
            events();
        };
        for (ours, theirs) in [
            (Format::Plain, Format::TheirPlain),
            (Format::Json, Format::TheirJson),
        ] {
            let ours = logged_with(ours, || in_request_context("api", &fields, events));
            let theirs = logged_with(theirs, as_span);
            assert_eq!(ours.lines().count(), 2, "{ours}");
            for (ours, theirs) in ours.lines().zip(theirs.lines()) {
                assert_eq!(after_timestamp(ours), after_timestamp(theirs));
            }
        }
        let plain = logged_with(Format::Plain, || in_request_context("api", &fields, events));
        assert!(plain.lines().next().unwrap().ends_with(
            "Z  INFO api{request_id=abc-123 operation=\"DescribeRepositories\" account=\"123456789012\" digest=sha256:ab}: done status=200"
        ), "{plain}");
    }

    #[test]
    fn colour_codes_style_the_timestamp_level_and_context() {
        let out = crate::log_writer::Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .fmt_fields(PlainFields)
            .event_format(PlainLine::coloured())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            in_request_context("oci", &[], || tracing::error!(status = 500, "failed"))
        });
        let line = out.text();
        assert!(line.starts_with("\x1b[2m"), "{line:?}");
        assert!(line.contains("Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[1moci\x1b[0m\x1b[1m{\x1b[0mrequest_id=abc-123\x1b[1m}\x1b[0m\x1b[2m:\x1b[0m failed status=500\n"), "{line:?}");
    }
}
