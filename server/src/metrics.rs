//! Prometheus metrics, in the OpenMetrics text format `/metrics` serves.
//!
//! Every statement passes through the audit log, so the audit log feeds the query
//! metrics ([`Metrics::observe`]): statements by front end and outcome, their duration,
//! rows and bytes sent. Connections are counted by the front ends with
//! [`Metrics::connection`]; statements running now by the engine with
//! [`Metrics::running`]. Source health, memory and validation results are read when
//! scraped ([`Metrics::render`]).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit::AuditEntry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    protocol: String,
    /// ok, error, denied (42501), canceled (57014: timeout or cancel request).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Protocol {
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rule {
    rule: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViewRead {
    from: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    statements: Family<Outcome, Counter>,
    duration: Family<Protocol, Histogram>,
    rows: Family<Protocol, Counter>,
    bytes: Family<Protocol, Counter>,
    connections: Family<Protocol, Gauge>,
    running: Gauge,
    responding: Gauge,
    source_up: Family<Source, Gauge>,
    source_latency: Family<Source, FloatGauge>,
    resident: Gauge,
    engine_memory: Gauge,
    violations: Family<Rule, Gauge>,
    view_reads: Family<ViewRead, Counter>,
    /// The engine's counts of view reads at the last scrape.
    view_reads_seen: std::sync::Mutex<amar_catalog::statistics::KeptCounts>,
    planned_once: Counter,
    planned_again: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("amar");
        let statements = Family::<Outcome, Counter>::default();
        registry.register(
            "statements",
            "Statements run, by front end and outcome",
            statements.clone(),
        );
        let duration = Family::<Protocol, Histogram>::new_with_constructor(
            // 1 ms … ~2 min.
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 18))) as fn() -> Histogram,
        );
        registry.register(
            "statement_duration_seconds",
            "Time from a statement's arrival to its last row",
            duration.clone(),
        );
        let rows = Family::<Protocol, Counter>::default();
        registry.register("rows_sent", "Rows sent to clients", rows.clone());
        let bytes = Family::<Protocol, Counter>::default();
        registry.register(
            "bytes_sent",
            "Bytes of results sent to clients, in Arrow form",
            bytes.clone(),
        );
        let connections = Family::<Protocol, Gauge>::default();
        registry.register(
            "connections",
            "Open client connections (pgwire) and sessions (Flight SQL)",
            connections.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "statements_running",
            "Statements executing now",
            running.clone(),
        );
        let responding = Gauge::default();
        registry.register(
            "connections_responding",
            "pgwire connections sending a statement's response now (until ReadyForQuery)",
            responding.clone(),
        );
        let source_up = Family::<Source, Gauge>::default();
        registry.register(
            "source_up",
            "1 when the source answered its last health check",
            source_up.clone(),
        );
        let source_latency = Family::<Source, FloatGauge>::default();
        registry.register(
            "source_latency_seconds",
            "How long the source's last health check took",
            source_latency.clone(),
        );
        let resident = Gauge::default();
        registry.register(
            "resident_memory_bytes",
            "The server process's resident memory",
            resident.clone(),
        );
        let engine_memory = Gauge::default();
        registry.register(
            "engine_memory_reserved_bytes",
            "Memory the query engine holds for running statements (its pool)",
            engine_memory.clone(),
        );
        let violations = Family::<Rule, Gauge>::default();
        registry.register(
            "validation_violations",
            "Rows violating each validation rule at its latest run (-1: the rule failed to run)",
            violations.clone(),
        );
        let view_reads = Family::<ViewRead, Counter>::default();
        registry.register(
            "indicator_view_reads",
            "Reads of indicator views that can be kept: from rows kept for the data's version, or computed",
            view_reads.clone(),
        );
        let planned_once = Counter::default();
        registry.register(
            "prepared_pushed_executions",
            "Executions of prepared statements wholly pushed to one source, run without optimising again",
            planned_once.clone(),
        );
        let planned_again = Counter::default();
        registry.register(
            "prepared_replanned",
            "Prepared statements planned again because the policy, a release or a source's tables changed since they were planned",
            planned_again.clone(),
        );
        Self {
            planned_once,
            planned_again,
            registry,
            statements,
            duration,
            rows,
            bytes,
            connections,
            running,
            responding,
            source_up,
            source_latency,
            resident,
            engine_memory,
            violations,
            view_reads,
            view_reads_seen: Default::default(),
        }
    }

    /// Counts one finished (or failed) statement.
    pub fn observe(&self, entry: &AuditEntry) {
        let protocol = Protocol {
            protocol: entry.protocol.clone(),
        };
        let outcome = match entry.sqlstate.as_deref() {
            None => "ok",
            Some("42501") => "denied",
            Some("57014") => "canceled",
            Some(_) => "error",
        };
        self.statements
            .get_or_create(&Outcome {
                protocol: entry.protocol.clone(),
                outcome,
            })
            .inc();
        self.duration
            .get_or_create(&protocol)
            .observe(entry.duration_ms / 1000.0);
        self.rows.get_or_create(&protocol).inc_by(entry.rows);
        self.bytes.get_or_create(&protocol).inc_by(entry.bytes);
    }

    /// Counts one execution of a prepared statement that skipped optimisation.
    pub fn planned_once(&self) {
        self.planned_once.inc();
    }

    /// Counts one prepared statement planned again.
    pub fn planned_again(&self) {
        self.planned_again.inc();
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(self: &Arc<Self>, protocol: &str) -> Held {
        let gauge = self
            .connections
            .get_or_create(&Protocol {
                protocol: protocol.to_string(),
            })
            .clone();
        gauge.inc();
        Held(gauge)
    }

    /// Counts a running statement until the guard is dropped.
    pub fn running(&self) -> Held {
        self.running.inc();
        Held(self.running.clone())
    }

    /// Counts a connection as answering a statement until the guard is dropped.
    pub fn responding(&self) -> Held {
        self.responding.inc();
        Held(self.responding.clone())
    }

    /// Connections answering a statement now.
    pub fn responding_now(&self) -> i64 {
        self.responding.get()
    }

    /// Statements executing now.
    pub fn running_now(&self) -> i64 {
        self.running.get()
    }

    /// Open connections of a front end now.
    pub fn connections_now(&self, protocol: &str) -> i64 {
        self.connections
            .get_or_create(&Protocol {
                protocol: protocol.to_string(),
            })
            .get()
    }

    /// The text a scrape gets, after reading what is measured on demand.
    pub async fn render(&self, engine: &crate::engine::Engine) -> String {
        for schema in engine.catalog().sources() {
            let source = schema.source();
            let health = source.health().await;
            let labels = Source {
                source: source.name().to_string(),
            };
            self.source_up
                .get_or_create(&labels)
                .set(i64::from(health.ok));
            self.source_latency
                .get_or_create(&labels)
                .set(health.latency.as_secs_f64());
        }
        self.resident.set(resident_bytes().unwrap_or(0) as i64);
        self.engine_memory.set(engine.memory_reserved() as i64);
        let statistics = engine.statistics();
        for rule in &statistics.definitions().rules {
            if let Some(run) = statistics
                .results()
                .iter()
                .rev()
                .find(|r| r.rule == rule.id)
            {
                let value = match run.outcome {
                    amar_catalog::statistics::RuleOutcome::Failed => -1,
                    _ => run.violations as i64,
                };
                self.violations
                    .get_or_create(&Rule {
                        rule: rule.id.clone(),
                        severity: rule.severity.as_str().to_string(),
                    })
                    .set(value);
            }
        }
        {
            let now = statistics.kept_counts();
            let mut seen = self
                .view_reads_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (from, now, before) in [
                ("kept", now.kept, seen.kept),
                ("computed", now.computed, seen.computed),
            ] {
                self.view_reads
                    .get_or_create(&ViewRead { from })
                    .inc_by(now.saturating_sub(before));
            }
            *seen = now;
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics: {e}");
        }
        out
    }
}

/// Holds a gauge up by one while alive.
#[derive(Debug)]
pub struct Held(Gauge);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The process's resident memory, from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_up_and_back_down() {
        let metrics = Arc::new(Metrics::new());
        {
            let _a = metrics.connection("pgwire");
            let _b = metrics.connection("pgwire");
            let _r = metrics.running();
            assert_eq!(metrics.connections_now("pgwire"), 2);
            assert_eq!(metrics.running_now(), 1);
        }
        assert_eq!(metrics.connections_now("pgwire"), 0);
        assert_eq!(metrics.running_now(), 0);
    }
}
