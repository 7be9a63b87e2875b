//! The definitions as system tables: `amar.indicators` (with whether each is
//! verified), `amar.glossary`, `amar.validation_rules` and `amar.validation_results`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;

use super::Statistics;
use super::validation::RuleRun;
use crate::system::SystemSchema;
use crate::visible::{SessionVisibility, Visibility};

pub(super) fn install(statistics: &Arc<Statistics>, system: &SystemSchema) {
    for kind in [
        Kind::Indicators,
        Kind::Glossary,
        Kind::Rules,
        Kind::Results,
        Kind::Classifications,
    ] {
        system.add_table(
            kind.name(),
            crate::computed::Computed::table(Listing {
                schema: kind.schema(),
                kind,
                statistics: statistics.clone(),
            }),
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Indicators,
    Glossary,
    Rules,
    Results,
    Classifications,
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn text_or_null(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn number(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Indicators => "indicators",
            Kind::Glossary => "glossary",
            Kind::Rules => "validation_rules",
            Kind::Results => "validation_results",
            Kind::Classifications => "classifications",
        }
    }

    fn schema(self) -> SchemaRef {
        Arc::new(Schema::new(match self {
            Kind::Indicators => vec![
                text("id"),
                text("title_fa"),
                text("title_en"),
                text("definition_fa"),
                text("definition_en"),
                text("counting_logic"),
                text("unit"),
                text("periodicity"),
                text("department"),
                text("dimensions"),
                text_or_null("area_dimension"),
                text_or_null("period_dimension"),
                text("value_column"),
                text_or_null("count_column"),
                text("additivity"),
                Field::new("min_cell", DataType::Int64, false),
                number("target"),
                number("lower"),
                number("upper"),
                text_or_null("direction"),
                number("weight"),
                text("concepts"),
                Field::new("verified", DataType::Boolean, false),
                text_or_null("failing_rules"),
                text("sql"),
                text_or_null("classifications"),
            ],
            Kind::Glossary => vec![
                text("term"),
                text("title_fa"),
                text("title_en"),
                text("definition_fa"),
                text("definition_en"),
            ],
            Kind::Rules => vec![
                text("id"),
                text("title_fa"),
                text("title_en"),
                text("severity"),
                text_or_null("guards"),
                text_or_null("every"),
                text("sql"),
            ],
            Kind::Classifications => vec![
                text("classification"),
                text("title_fa"),
                text("title_en"),
                text("code"),
                text("label_fa"),
                text("label_en"),
                text_or_null("parent"),
                Field::new("level", DataType::Int64, false),
            ],
            Kind::Results => vec![
                text("rule"),
                text("severity"),
                Field::new(
                    "run_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                text("trigger"),
                text("outcome"),
                Field::new("violations", DataType::Int64, true),
                text_or_null("sample"),
                text_or_null("error"),
                Field::new("duration_ms", DataType::Float64, false),
                text("guards"),
            ],
        }))
    }
}

#[derive(Debug)]
struct Listing {
    kind: Kind,
    schema: SchemaRef,
    statistics: Arc<Statistics>,
}

impl Listing {
    /// For each run, whether the user sees every row its rule read: only then are
    /// its count and sample of violating rows theirs to see. A provincial analyst
    /// sees whether a rule passed, not how many rows of other provinces broke it.
    async fn rows_seen(&self, runs: &[RuleRun], visibility: &dyn Visibility) -> Vec<bool> {
        let defs = self.statistics.definitions();
        let mut seen_by_rule = std::collections::HashMap::new();
        for rule in &defs.rules {
            let seen = match self.statistics.rule_reads(rule).await {
                Ok(tables) => tables.iter().all(|t| {
                    let (schema, table) = t.split_once('.').unwrap_or(("public", t));
                    visibility.sees_all_rows(schema, table)
                }),
                // What cannot be judged is withheld.
                Err(_) => false,
            };
            seen_by_rule.insert(rule.id.clone(), seen);
        }
        runs.iter()
            .map(|r| seen_by_rule.get(&r.rule).copied().unwrap_or(false))
            .collect()
    }

    async fn batch(&self, visibility: Option<Arc<dyn Visibility>>) -> Result<RecordBatch> {
        let defs = self.statistics.definitions();
        let columns: Vec<ArrayRef> = match self.kind {
            Kind::Indicators => {
                let mut verified = BooleanBuilder::new();
                let mut failing = StringBuilder::new();
                for indicator in &defs.indicators {
                    // An indicator that cannot even be planned is not verified.
                    let failed = match self.statistics.inputs(indicator).await {
                        Ok(inputs) => self.statistics.failing_rules(&inputs),
                        Err(e) => vec![format!("cannot be planned: {e}")],
                    };
                    verified.append_value(failed.is_empty());
                    if failed.is_empty() {
                        failing.append_null();
                    } else {
                        failing.append_value(failed.join(", "));
                    }
                }
                let list = &defs.indicators;
                let norm = |f: fn(&super::Norm) -> Option<f64>| {
                    let mut b = Float64Builder::new();
                    for i in list {
                        b.append_option(i.norm.as_ref().and_then(f));
                    }
                    Arc::new(b.finish()) as ArrayRef
                };
                vec![
                    strings(list.iter().map(|i| Some(i.id.as_str()))),
                    strings(list.iter().map(|i| Some(i.title_fa.as_str()))),
                    strings(list.iter().map(|i| Some(i.title_en.as_str()))),
                    strings(list.iter().map(|i| Some(i.definition_fa.as_str()))),
                    strings(list.iter().map(|i| Some(i.definition_en.as_str()))),
                    strings(list.iter().map(|i| Some(i.counting.as_str()))),
                    strings(list.iter().map(|i| Some(i.unit.as_str()))),
                    strings(list.iter().map(|i| Some(i.periodicity.as_str()))),
                    strings(list.iter().map(|i| Some(i.department.as_str()))),
                    owned(list.iter().map(|i| Some(i.dimensions.join(", ")))),
                    strings(list.iter().map(|i| i.area.as_deref())),
                    strings(list.iter().map(|i| i.period.as_deref())),
                    strings(list.iter().map(|i| Some(i.value.as_str()))),
                    strings(list.iter().map(|i| i.count.as_deref())),
                    strings(list.iter().map(|i| Some(i.additivity.as_str()))),
                    {
                        let mut b = Int64Builder::new();
                        for i in list {
                            b.append_value(i64::from(i.min_cell));
                        }
                        Arc::new(b.finish())
                    },
                    norm(|n| Some(n.target)),
                    norm(|n| n.lower),
                    norm(|n| n.upper),
                    strings(
                        list.iter()
                            .map(|i| i.norm.as_ref().map(|n| n.direction.as_str())),
                    ),
                    norm(|n| Some(n.weight)),
                    owned(list.iter().map(|i| Some(i.concepts.join(", ")))),
                    Arc::new(verified.finish()),
                    Arc::new(failing.finish()),
                    strings(list.iter().map(|i| Some(i.sql.as_str()))),
                    owned(list.iter().map(|i| {
                        (!i.classifications.is_empty()).then(|| {
                            i.classifications
                                .iter()
                                .map(|(d, c)| format!("{d}: {c}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                    })),
                ]
            }
            Kind::Glossary => {
                let list = &defs.glossary;
                vec![
                    strings(list.iter().map(|g| Some(g.term.as_str()))),
                    strings(list.iter().map(|g| Some(g.title_fa.as_str()))),
                    strings(list.iter().map(|g| Some(g.title_en.as_str()))),
                    strings(list.iter().map(|g| Some(g.definition_fa.as_str()))),
                    strings(list.iter().map(|g| Some(g.definition_en.as_str()))),
                ]
            }
            Kind::Rules => {
                let list = &defs.rules;
                vec![
                    strings(list.iter().map(|r| Some(r.id.as_str()))),
                    strings(list.iter().map(|r| Some(r.title_fa.as_str()))),
                    strings(list.iter().map(|r| Some(r.title_en.as_str()))),
                    strings(list.iter().map(|r| Some(r.severity.as_str()))),
                    owned(
                        list.iter()
                            .map(|r| (!r.guards.is_empty()).then(|| r.guards.join(", "))),
                    ),
                    owned(
                        list.iter()
                            .map(|r| r.every.map(|d| format!("{} s", d.as_secs()))),
                    ),
                    strings(list.iter().map(|r| Some(r.sql.as_str()))),
                ]
            }
            Kind::Classifications => {
                let rows: Vec<(&super::Classification, &super::ClassCode)> = defs
                    .classifications
                    .iter()
                    .flat_map(|c| c.codes.iter().map(move |code| (c, code)))
                    .collect();
                let mut level = Int64Builder::new();
                for (class, code) in &rows {
                    level.append_value(class.level(&code.code) as i64);
                }
                vec![
                    strings(rows.iter().map(|(c, _)| Some(c.id.as_str()))),
                    strings(rows.iter().map(|(c, _)| Some(c.title_fa.as_str()))),
                    strings(rows.iter().map(|(c, _)| Some(c.title_en.as_str()))),
                    strings(rows.iter().map(|(_, k)| Some(k.code.as_str()))),
                    strings(rows.iter().map(|(_, k)| Some(k.label_fa.as_str()))),
                    strings(rows.iter().map(|(_, k)| Some(k.label_en.as_str()))),
                    strings(rows.iter().map(|(_, k)| k.parent.as_deref())),
                    Arc::new(level.finish()),
                ]
            }
            Kind::Results => {
                let mut runs = self.statistics.results();
                let shown = match visibility {
                    Some(visibility) => self.rows_seen(&runs, visibility.as_ref()).await,
                    None => vec![true; runs.len()],
                };
                let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                let mut violations = Int64Builder::new();
                let mut took = Float64Builder::new();
                for (run, shown) in runs.iter_mut().zip(&shown) {
                    at.append_value(run.at_micros);
                    if *shown {
                        violations.append_value(run.violations as i64);
                    } else {
                        violations.append_null();
                        run.sample = None;
                    }
                    took.append_value(run.duration_ms);
                }
                vec![
                    strings(runs.iter().map(|r| Some(r.rule.as_str()))),
                    strings(runs.iter().map(|r| Some(r.severity.as_str()))),
                    Arc::new(at.finish()),
                    strings(runs.iter().map(|r| Some(r.trigger.as_str()))),
                    strings(runs.iter().map(|r| Some(r.outcome.as_str()))),
                    Arc::new(violations.finish()),
                    strings(runs.iter().map(|r| r.sample.as_deref())),
                    strings(runs.iter().map(|r| r.error.as_deref())),
                    Arc::new(took.finish()),
                    owned(runs.iter().map(|r| Some(r.guards.join(", ")))),
                ]
            }
        };
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn owned(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

#[async_trait]
impl crate::computed::CatalogRows for Listing {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let visibility = state
            .config()
            .get_extension::<SessionVisibility>()
            .map(|v| v.0.clone())
            .filter(|v| !v.sees_everything());
        self.batch(visibility).await
    }
}
