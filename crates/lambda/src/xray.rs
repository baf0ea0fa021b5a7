//! X-Ray traces from the functions' `tracing` spans.
//!
//! With active tracing, Lambda runs an X-Ray daemon beside the function (its UDP address in
//! `AWS_XRAY_DAEMON_ADDRESS`) and hands each invocation a trace header (`Root=...;Parent=...;
//! Sampled=1`), which the runtime puts on its per-invocation span as `xrayTraceId`. This layer
//! sends every span closed under a sampled invocation to the daemon as a subsegment of the
//! function's segment: the stage steps (`#[instrument]` with the run id) then show in the
//! X-Ray trace map and timeline with their duration, their fields as annotations (searchable:
//! `annotation.run_id = "..."`) and a fault flag when an error was logged inside them.
//!
//! The daemon protocol is one UDP datagram per document: a JSON header line
//! `{"format": "json", "version": 1}`, then the subsegment. Sending never blocks and never
//! fails the function: a lost datagram is a lost span, not a lost run.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The field of lambda_runtime's invocation span that holds the trace header.
const TRACE_HEADER_FIELD: &str = "xrayTraceId";

/// The environment variable Lambda sets to the daemon's address when tracing is active.
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// Sends closed spans to the X-Ray daemon.
pub struct XRayLayer {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl fmt::Debug for XRayLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XRayLayer")
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl XRayLayer {
    /// A layer sending to `daemon` (UDP).
    pub fn new(daemon: SocketAddr) -> std::io::Result<Self> {
        let bind: SocketAddr = if daemon.is_ipv6() {
            "[::]:0".parse().expect("address")
        } else {
            "0.0.0.0:0".parse().expect("address")
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket, daemon })
    }

    /// The layer for the daemon named by [`DAEMON_ADDRESS_ENV`] (`host:port`, or the
    /// `udp:host:port tcp:host:port` form); `None` when it is unset (tracing not active, or a
    /// local run) or unusable (logged to stderr: logging is not set up yet).
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(DAEMON_ADDRESS_ENV).ok()?;
        let addr = daemon_address(&value)?;
        match Self::new(addr) {
            Ok(layer) => Some(layer),
            Err(e) => {
                eprintln!("X-Ray: cannot open a UDP socket for {addr}: {e}; no traces");
                None
            }
        }
    }

    fn send(&self, document: &Value) {
        let mut datagram = b"{\"format\":\"json\",\"version\":1}\n".to_vec();
        if serde_json::to_writer(&mut datagram, document).is_ok() {
            // Non-blocking, best effort: a full buffer drops the span, never the work.
            let _ = self.socket.send_to(&datagram, self.daemon);
        }
    }
}

/// `host:port`, or the `udp:` address of `udp:host:port tcp:host:port`.
fn daemon_address(value: &str) -> Option<SocketAddr> {
    let value = value.trim();
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value);
    udp.to_socket_addrs().ok()?.next()
}

/// A trace header's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TraceContext {
    root: String,
    parent: String,
    sampled: bool,
}

fn parse_header(header: &str) -> Option<TraceContext> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v.to_owned()),
            Some(("Parent", v)) => parent = Some(v.to_owned()),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    Some(TraceContext {
        root: root?,
        parent: parent?,
        sampled,
    })
}

/// What the layer keeps per span.
struct SpanRecord {
    /// 16 hex digits: this span's subsegment id.
    id: String,
    start: f64,
    /// The trace this span belongs to, with `parent` the subsegment (or the function's
    /// segment) it hangs under. `None`: not under a traced invocation.
    trace: Option<TraceContext>,
    /// Whether this span is the runtime's invocation span (context only, not sent).
    invocation: bool,
    annotations: Map<String, Value>,
    fault: bool,
}

#[derive(Default)]
struct Fields {
    header: Option<String>,
    annotations: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == TRACE_HEADER_FIELD {
            if let Value::String(s) = value {
                self.header = Some(s);
            }
            return;
        }
        if let Some(key) = annotation_key(field.name()) {
            self.annotations.insert(key, value);
        }
    }
}

/// X-Ray annotation keys: letters, digits and `_` only, at most 500 characters.
fn annotation_key(name: &str) -> Option<String> {
    let key: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(500)
        .collect();
    (!key.is_empty()).then_some(key)
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.chars().take(1000).collect()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here too, already Display-formatted.
        self.put(
            field,
            Value::String(format!("{value:?}").chars().take(1000).collect()),
        );
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl<S> Layer<S> for XRayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let id = new_id();
        let (trace, invocation) = match fields.header.as_deref().and_then(parse_header) {
            // The invocation span: children hang under the function's segment.
            Some(header) => (Some(header), true),
            None => {
                let inherited = span.parent().and_then(|parent| {
                    let ext = parent.extensions();
                    let record = ext.get::<SpanRecord>()?;
                    let trace = record.trace.clone()?;
                    Some(if record.invocation {
                        trace
                    } else {
                        TraceContext {
                            parent: record.id.clone(),
                            ..trace
                        }
                    })
                });
                (inherited, false)
            }
        };
        span.extensions_mut().insert(SpanRecord {
            id,
            start: now_seconds(),
            trace,
            invocation,
            annotations: fields.annotations,
            fault: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(record) = span.extensions_mut().get_mut::<SpanRecord>() {
            record.annotations.extend(fields.annotations);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // An error logged inside a span marks it (and so the trace) as a fault.
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        if let Some(span) = ctx.event_span(event)
            && let Some(record) = span.extensions_mut().get_mut::<SpanRecord>()
        {
            record.fault = true;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let ext = span.extensions();
        let Some(record) = ext.get::<SpanRecord>() else {
            return;
        };
        let Some(trace) = record.trace.as_ref().filter(|t| t.sampled) else {
            return;
        };
        if record.invocation {
            return;
        }
        let mut doc = json!({
            "type": "subsegment",
            "name": span.name(),
            "id": record.id,
            "trace_id": trace.root,
            "parent_id": trace.parent,
            "start_time": record.start,
            "end_time": now_seconds().max(record.start),
            "namespace": "local",
        });
        if !record.annotations.is_empty() {
            doc["annotations"] = Value::Object(record.annotations.clone());
        }
        if record.fault {
            doc["fault"] = Value::Bool(true);
        }
        self.send(&doc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn headers_and_daemon_addresses() {
        assert_eq!(
            parse_header(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            Some(TraceContext {
                root: "1-5759e988-bd862e3fe1be46a994272793".into(),
                parent: "53995c3f42cd8ad8".into(),
                sampled: true
            })
        );
        assert!(
            !parse_header("Root=1-a-b;Parent=c;Sampled=0")
                .unwrap()
                .sampled
        );
        assert_eq!(
            parse_header("Root=1-a-b"),
            None,
            "no parent: nothing to hang under"
        );
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.1:2001"),
            Some("127.0.0.1:2001".parse().unwrap())
        );
        assert_eq!(daemon_address("nonsense"), None);
        assert_eq!(annotation_key("run.id"), Some("run_id".into()));
    }

    #[tracing::instrument(skip_all, fields(run_id = %run, bucket))]
    fn merge(run: &str, bucket: u32) {
        tracing::Span::current().record("bucket", bucket);
        inner_step();
    }

    #[tracing::instrument]
    fn inner_step() {
        tracing::error!("something failed");
    }

    fn daemon() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        socket
    }

    fn received(socket: &UdpSocket) -> Vec<Value> {
        let mut docs = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            let (header, body) = text.split_once('\n').expect("header line");
            assert_eq!(
                serde_json::from_str::<Value>(header).unwrap(),
                json!({"format": "json", "version": 1})
            );
            docs.push(serde_json::from_str(body).unwrap());
        }
        docs
    }

    fn invoke(header: Option<&str>, daemon: &UdpSocket) {
        let layer = XRayLayer::new(daemon.local_addr().unwrap()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            // The runtime's invocation span, as lambda_runtime's TracingLayer makes it.
            let span = match header {
                Some(h) => {
                    tracing::info_span!("Lambda runtime invoke", requestId = "r-1", xrayTraceId = h)
                }
                None => tracing::info_span!("Lambda runtime invoke", requestId = "r-1"),
            };
            let _entered = span.enter();
            merge("2026-12-04-daily", 7);
        });
    }

    #[test]
    fn spans_of_a_sampled_invocation_reach_the_daemon_as_subsegments() {
        let socket = daemon();
        invoke(
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            &socket,
        );
        let docs = received(&socket);
        assert_eq!(docs.len(), 2, "{docs:?}");
        // Children close first.
        let (inner, outer) = (&docs[0], &docs[1]);
        assert_eq!(outer["name"], "merge");
        assert_eq!(outer["type"], "subsegment");
        assert_eq!(outer["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(
            outer["parent_id"], "53995c3f42cd8ad8",
            "under the function's segment"
        );
        assert_eq!(outer["annotations"]["run_id"], "2026-12-04-daily");
        assert_eq!(outer["annotations"]["bucket"], 7);
        assert!(outer.get("fault").is_none());
        assert_eq!(inner["name"], "inner_step");
        assert_eq!(inner["parent_id"], outer["id"]);
        assert_eq!(inner["fault"], true, "an error was logged inside it");
        for d in &docs {
            assert_eq!(d["id"].as_str().unwrap().len(), 16);
            assert!(d["end_time"].as_f64().unwrap() >= d["start_time"].as_f64().unwrap());
        }
        assert!(outer["start_time"].as_f64() <= inner["start_time"].as_f64());
    }

    #[test]
    fn nothing_is_sent_unsampled_or_outside_an_invocation() {
        let socket = daemon();
        invoke(
            Some("Root=1-a-b;Parent=53995c3f42cd8ad8;Sampled=0"),
            &socket,
        );
        invoke(None, &socket);
        assert!(received(&socket).is_empty());
    }
}
