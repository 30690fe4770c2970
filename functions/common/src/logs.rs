//! The functions' log lines: one JSON object per line, which CloudWatch Logs Insights reads
//! field by field. The fields of the event and of every span it is in are flattened to the top
//! level (an event's own field wins over a span's, an inner span's over an outer one's), so
//! `integration`, `document`, `step` and `outcome` are queryable however the code logs them:
//!
//! ```json
//! {"document":"92010","integration":"coupa-bc","level":"INFO","message":"posted","outcome":"posted","span":"post","step":"post","target":"mlc_shared::steps::post"}
//! ```
//!
//! No timestamp: CloudWatch stamps every line.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Formats an event as one flat JSON object. Span fields are recorded by [`JsonFields`], so each
/// span's are a JSON object already.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str()) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        if let Some(name) = innermost {
            line.insert("span".into(), name.into());
        }
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Records an event's fields into the line, as JSON values where they have one.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// The levels to log from `RUST_LOG`: a default level and levels per target, as in
/// `info` or `warn,mlc_shared::steps=debug`; info when unset or unreadable. `Targets`, not
/// `EnvFilter`: `EnvFilter`'s span and field directives are regular expressions, and its regex
/// engine made up a good part of each function binary (functions/README.md, "Binary size").
pub fn filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The functions' subscriber: flat JSON lines to `writer`, filtered by `filter`.
pub fn subscriber<W>(filter: Targets, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(FlatJson)
        .with_writer(writer)
        .finish()
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Everything written, for the test to read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Map<String, Value>> {
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(Value::Object(map)) => map,
                other => panic!("not a JSON object: {line} ({other:?})"),
            })
            .collect()
    }

    #[test]
    fn an_event_is_one_json_line_with_span_and_event_fields_at_top_level() {
        let buffer = Buffer::default();
        let subscriber = subscriber(filter(Some("info")), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("batch", integration = "coupa-bc", step = "map");
            let _outer = outer.enter();
            let inner = tracing::info_span!("document", document = "92010");
            let _inner = inner.enter();
            tracing::info!(step = "post", outcome = "posted", attempt = 2, "posted");
            tracing::debug!("filtered out");
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 1, "one line per event");
        let line = &lines[0];
        assert_eq!(line["integration"], "coupa-bc");
        assert_eq!(line["document"], "92010");
        assert_eq!(
            line["step"], "post",
            "the event's field wins over the span's"
        );
        assert_eq!(line["outcome"], "posted");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["message"], "posted");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "document");
        assert!(line.values().all(|v| !v.is_object()), "flat: {line:?}");
    }

    #[test]
    fn rust_log_sets_the_default_level_and_levels_per_target() {
        use tracing::Level;
        let unset = filter(None);
        assert!(unset.would_enable("mlc_shared::steps::post", &Level::INFO));
        assert!(!unset.would_enable("mlc_shared::steps::post", &Level::DEBUG));
        let unreadable = filter(Some("mlc_shared=loud"));
        assert!(unreadable.would_enable("aws_config", &Level::INFO));
        assert!(!unreadable.would_enable("aws_config", &Level::DEBUG));
        let spec = filter(Some("warn,mlc_shared::steps=debug"));
        assert!(spec.would_enable("mlc_shared::steps::map", &Level::DEBUG));
        assert!(!spec.would_enable("mlc_shared::steps::map", &Level::TRACE));
        assert!(!spec.would_enable("aws_config", &Level::INFO));
        assert!(spec.would_enable("aws_config", &Level::WARN));
    }

    #[test]
    fn an_event_outside_any_span_is_flat_json_too() {
        let buffer = Buffer::default();
        let subscriber = subscriber(filter(Some("info")), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let error = io::Error::other("timed out");
            tracing::warn!(error = &error as &dyn std::error::Error, "one");
            tracing::info!(integration = "coupa-bc", "two \"quoted\"\nline");
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["error"], "timed out");
        assert!(lines[0].get("span").is_none());
        assert_eq!(lines[1]["message"], "two \"quoted\"\nline");
        assert_eq!(lines[1]["integration"], "coupa-bc");
    }
}
