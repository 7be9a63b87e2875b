//! `amar.indicator_status`: units evaluated by the indicators.
//!
//! For each indicator with a norm, its latest period (the greatest value of its period
//! dimension) and each unit (the values of its area dimension, e.g. a province code),
//! one row: the value beside the norm and a status — on target, warning or off target.
//! Every row of a unit also carries the unit's weighted score (0–100: on target counts
//! 1, a warning 0.5, off target 0, weighted by each indicator's norm weight) and the
//! unit's rank among units by that score (1 is best; ties share a rank). An indicator
//! without an area dimension gives one national row, with no score or rank.
//!
//! It is computed from the indicators as the reader may see them: the public gets the
//! disclosure-controlled values (a suppressed cell has no value and status
//! `suppressed`). It is computed once per version of the data under the indicators
//! and kept until that changes (see [`Kept`]); `amar.unit_scores` likewise. Who may
//! read the table, and which of its rows, is the policy's business, like any other
//! table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use super::{DataStamp, Indicator, LIVE_MAX_AGE, SUPPRESSED_COLUMN, Statistics};
use crate::visible::SessionVisibility;

#[derive(Debug)]
pub(super) struct StatusTable {
    statistics: Arc<Statistics>,
    schema: SchemaRef,
    kept: Kept,
}

/// A computed table's rows in both forms (as computed and disclosure-controlled),
/// each kept while the data it was computed from stays the same: every source the
/// indicators read at the same [`data_version`](amar_connectors::Source::data_version)
/// and no rule run since. What was computed from a live database is kept for
/// [`LIVE_MAX_AGE`] at most. One reader computes; others asking meanwhile wait
/// for its result. Who may read which rows is still decided per reader, by the
/// policy, on top of these rows.
#[derive(Debug, Default)]
struct Kept {
    forms: std::sync::Mutex<[Option<(DataStamp, Instant, RecordBatch)>; 2]>,
    computing: tokio::sync::Mutex<()>,
}

impl Kept {
    async fn get<F, Fut>(
        &self,
        statistics: &Statistics,
        suppress: bool,
        compute: F,
    ) -> Result<RecordBatch>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<RecordBatch>>,
    {
        let mut evaluated: Vec<&Indicator> = vec![];
        for indicator in &statistics.definitions().indicators {
            if indicator.norm.is_some() {
                evaluated.push(indicator);
            }
        }
        let stamp = statistics.stamp(&evaluated).await?;
        if let Some(batch) = self.current(suppress, &stamp) {
            return Ok(batch);
        }
        let _turn = self.computing.lock().await;
        if let Some(batch) = self.current(suppress, &stamp) {
            return Ok(batch);
        }
        // Stamped before computing: data that changes meanwhile makes the next read
        // compute again.
        let batch = compute().await?;
        self.forms.lock().unwrap_or_else(|e| e.into_inner())[usize::from(suppress)] =
            Some((stamp, Instant::now(), batch.clone()));
        Ok(batch)
    }

    fn current(&self, suppress: bool, stamp: &DataStamp) -> Option<RecordBatch> {
        let forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, at, batch) = forms[usize::from(suppress)].as_ref()?;
        (kept == stamp && (!stamp.live() || at.elapsed() < LIVE_MAX_AGE)).then(|| batch.clone())
    }
}

/// One evaluated cell.
struct Row {
    indicator: String,
    title_fa: String,
    title_en: String,
    unit: Option<String>,
    period: Option<String>,
    value: Option<f64>,
    status: &'static str,
    points: Option<f64>,
    weight: f64,
    verified: bool,
}

impl StatusTable {
    pub(super) fn new(statistics: Arc<Statistics>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("indicator", DataType::Utf8, false),
            Field::new("title_fa", DataType::Utf8, false),
            Field::new("title_en", DataType::Utf8, false),
            Field::new("unit", DataType::Utf8, true),
            Field::new("period", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
            Field::new("target", DataType::Float64, false),
            Field::new("lower", DataType::Float64, true),
            Field::new("upper", DataType::Float64, true),
            Field::new("direction", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("verified", DataType::Boolean, false),
            Field::new("weight", DataType::Float64, false),
            Field::new("unit_score", DataType::Float64, true),
            Field::new("unit_rank", DataType::Int64, true),
            Field::new("unit_fa", DataType::Utf8, true),
            Field::new("unit_en", DataType::Utf8, true),
        ]));
        Self {
            statistics,
            schema,
            kept: Kept::default(),
        }
    }

    async fn status_rows(&self, suppress: bool) -> Result<Vec<Row>> {
        let definer = self.statistics.definer()?.clone();
        let ctx = SessionContext::new_with_state(definer);
        let mut rows = vec![];
        for indicator in &self.statistics.definitions().indicators {
            let Some(norm) = &indicator.norm else {
                continue;
            };
            let inputs = self.statistics.reads(indicator).await?;
            let verified = self.statistics.failing_rules(&inputs).is_empty();
            let plan = self.statistics.view_plan(indicator, suppress).await?;
            let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
            for cell in latest_cells(indicator, &batches)? {
                let (status, points) = match cell.value {
                    _ if cell.suppressed => ("suppressed", None),
                    Some(v) if v.is_finite() => {
                        let s = norm.status(v);
                        (s.as_str(), Some(s.points()))
                    }
                    _ => ("no value", None),
                };
                rows.push(Row {
                    indicator: indicator.id.clone(),
                    title_fa: indicator.title_fa.clone(),
                    title_en: indicator.title_en.clone(),
                    unit: cell.unit,
                    period: cell.period,
                    value: cell.value.filter(|_| !cell.suppressed),
                    status,
                    points,
                    weight: norm.weight,
                    verified,
                });
            }
        }
        Ok(rows)
    }

    fn batch(&self, rows: Vec<Row>) -> Result<RecordBatch> {
        // Scores per unit, over the indicators that have a status for it.
        let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for row in &rows {
            if let (Some(unit), Some(points)) = (&row.unit, row.points) {
                let entry = sums.entry(unit.as_str()).or_default();
                entry.0 += points * row.weight;
                entry.1 += row.weight;
            }
        }
        let scores: BTreeMap<&str, f64> = sums
            .iter()
            .filter(|(_, (_, w))| *w > 0.0)
            .map(|(u, (p, w))| (*u, 100.0 * p / w))
            .collect();
        let ranks: BTreeMap<&str, i64> = scores
            .iter()
            .map(|(u, s)| (*u, 1 + scores.values().filter(|o| *o > s).count() as i64))
            .collect();
        let n = rows.len();
        let mut indicator = StringBuilder::with_capacity(n, n * 16);
        let mut title_fa = StringBuilder::with_capacity(n, n * 32);
        let mut title_en = StringBuilder::with_capacity(n, n * 32);
        let mut unit = StringBuilder::with_capacity(n, n * 4);
        let mut period = StringBuilder::with_capacity(n, n * 8);
        let mut value = Float64Builder::with_capacity(n);
        let mut target = Float64Builder::with_capacity(n);
        let mut lower = Float64Builder::with_capacity(n);
        let mut upper = Float64Builder::with_capacity(n);
        let mut direction = StringBuilder::with_capacity(n, n * 8);
        let mut status = StringBuilder::with_capacity(n, n * 12);
        let mut verified = BooleanBuilder::with_capacity(n);
        let mut weight = Float64Builder::with_capacity(n);
        let mut unit_score = Float64Builder::with_capacity(n);
        let mut unit_rank = Int64Builder::with_capacity(n);
        let mut unit_fa = StringBuilder::with_capacity(n, n * 16);
        let mut unit_en = StringBuilder::with_capacity(n, n * 16);
        for row in &rows {
            let norm = self
                .statistics
                .indicator(&row.indicator)
                .and_then(|i| i.norm.as_ref());
            indicator.append_value(&row.indicator);
            title_fa.append_value(&row.title_fa);
            title_en.append_value(&row.title_en);
            unit.append_option(row.unit.as_deref());
            period.append_option(row.period.as_deref());
            value.append_option(row.value);
            target.append_value(norm.map_or(f64::NAN, |n| n.target));
            lower.append_option(norm.and_then(|n| n.lower));
            upper.append_option(norm.and_then(|n| n.upper));
            direction.append_value(norm.map_or("", |n| n.direction.as_str()));
            status.append_value(row.status);
            verified.append_value(row.verified);
            weight.append_value(row.weight);
            let u = row.unit.as_deref();
            unit_score.append_option(u.and_then(|u| scores.get(u).copied()));
            unit_rank.append_option(u.and_then(|u| ranks.get(u).copied()));
            // The unit by name, from the classification the area dimension uses.
            let label = self
                .statistics
                .indicator(&row.indicator)
                .zip(u)
                .and_then(|(i, u)| self.statistics.area_label(i, u));
            unit_fa.append_option(label.map(|l| l.label_fa.as_str()));
            unit_en.append_option(label.map(|l| l.label_en.as_str()));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(indicator.finish()),
            Arc::new(title_fa.finish()),
            Arc::new(title_en.finish()),
            Arc::new(unit.finish()),
            Arc::new(period.finish()),
            Arc::new(value.finish()),
            Arc::new(target.finish()),
            Arc::new(lower.finish()),
            Arc::new(upper.finish()),
            Arc::new(direction.finish()),
            Arc::new(status.finish()),
            Arc::new(verified.finish()),
            Arc::new(weight.finish()),
            Arc::new(unit_score.finish()),
            Arc::new(unit_rank.finish()),
            Arc::new(unit_fa.finish()),
            Arc::new(unit_en.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// One unit's value in a period.
struct Cell {
    unit: Option<String>,
    period: Option<String>,
    value: Option<f64>,
    suppressed: bool,
}

/// The cells of the indicator's latest period, one per unit (summed if its SQL
/// returned a unit twice in a period for other dimensions, which only a flow or stock
/// can mean; a ratio keeps the first).
fn latest_cells(indicator: &Indicator, batches: &[RecordBatch]) -> Result<Vec<Cell>> {
    let all = all_cells(indicator, batches)?;
    let latest = all.iter().filter_map(|c| c.period.clone()).max();
    Ok(per_unit(
        indicator,
        all.into_iter()
            .filter(|c| latest.is_none() || c.period == latest),
    ))
}

/// Every cell of the indicator, by period and unit (combined as [`latest_cells`]
/// combines them).
fn cells_by_period(indicator: &Indicator, batches: &[RecordBatch]) -> Result<Vec<Cell>> {
    let mut periods: BTreeMap<Option<String>, Vec<Cell>> = BTreeMap::new();
    for cell in all_cells(indicator, batches)? {
        periods.entry(cell.period.clone()).or_default().push(cell);
    }
    Ok(periods
        .into_values()
        .flat_map(|cells| per_unit(indicator, cells.into_iter()))
        .collect())
}

/// The indicator's rows as cells.
fn all_cells(indicator: &Indicator, batches: &[RecordBatch]) -> Result<Vec<Cell>> {
    let text = |batch: &RecordBatch, name: &str| -> Result<Option<ArrayRef>> {
        match batch.schema().index_of(name) {
            Ok(i) => Ok(Some(cast(batch.column(i), &DataType::Utf8)?)),
            Err(_) => Ok(None),
        }
    };
    let mut all = vec![];
    for batch in batches {
        let units = match &indicator.area {
            Some(a) => text(batch, a)?,
            None => None,
        };
        let periods = match &indicator.period {
            Some(p) => text(batch, p)?,
            None => None,
        };
        let values = cast(
            batch.column(batch.schema().index_of(&indicator.value)?),
            &DataType::Float64,
        )?;
        let values = values.as_primitive::<Float64Type>();
        let suppressed = batch.column(batch.schema().index_of(SUPPRESSED_COLUMN)?);
        let suppressed = suppressed.as_boolean();
        let get = |a: &Option<ArrayRef>, i: usize| {
            a.as_ref()
                .filter(|a| !a.is_null(i))
                .map(|a| a.as_string::<i32>().value(i).to_string())
        };
        for i in 0..batch.num_rows() {
            all.push(Cell {
                unit: get(&units, i),
                period: get(&periods, i),
                value: (!values.is_null(i)).then(|| values.value(i)),
                suppressed: suppressed.value(i),
            });
        }
    }
    Ok(all)
}

/// One cell per unit out of cells of one period.
fn per_unit(indicator: &Indicator, cells: impl Iterator<Item = Cell>) -> Vec<Cell> {
    let mut by_unit: BTreeMap<Option<String>, Cell> = BTreeMap::new();
    for cell in cells {
        match by_unit.get_mut(&cell.unit) {
            None => {
                by_unit.insert(cell.unit.clone(), cell);
            }
            Some(seen) => {
                seen.suppressed |= cell.suppressed;
                if indicator.additivity != super::Additivity::Ratio {
                    seen.value = match (seen.value, cell.value) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
    }
    by_unit.into_values().collect()
}

/// Whether the reading session sees indicators in their disclosure-controlled form.
fn disclosure_controlled(state: &dyn Session) -> bool {
    state
        .config()
        .get_extension::<SessionVisibility>()
        .is_some_and(|v| v.0.disclosure_control())
}

#[async_trait]
impl crate::computed::CatalogRows for StatusTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let suppress = disclosure_controlled(state);
        self.kept
            .get(&self.statistics, suppress, || async {
                let rows = self.status_rows(suppress).await?;
                self.batch(rows)
            })
            .await
    }
}

/// `amar.unit_scores`: each unit's score and rank as of every month an indicator's
/// period ends in, each indicator by its latest period ended by that month (a
/// quarterly indicator's `1403Q4` counts from 1403-12 on), as `amar.indicator_status`
/// scores the latest. A quarter's evaluation and its change since the quarter before
/// are read from here (the quarterly report does).
#[derive(Debug)]
pub(super) struct ScoresTable {
    statistics: Arc<Statistics>,
    schema: SchemaRef,
    kept: Kept,
}

impl ScoresTable {
    pub(super) fn new(statistics: Arc<Statistics>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("unit", DataType::Utf8, false),
            Field::new("period", DataType::Utf8, false),
            Field::new("score", DataType::Float64, false),
            Field::new("rank", DataType::Int64, false),
            Field::new("indicators", DataType::Int64, false),
            Field::new("on_target", DataType::Int64, false),
            Field::new("warning", DataType::Int64, false),
            Field::new("off_target", DataType::Int64, false),
            Field::new("unit_fa", DataType::Utf8, true),
            Field::new("unit_en", DataType::Utf8, true),
        ]));
        Self {
            statistics,
            schema,
            kept: Kept::default(),
        }
    }
}

/// The Jalali month a period key ends in: `1403-07` itself, `1403Q4` in its third
/// month, `1403` in Esfand. Other keys (weeks, days) are not scored.
fn period_end(period: &str) -> Option<(i32, u8)> {
    let year = |y: &str| (y.len() == 4).then(|| y.parse::<i32>().ok()).flatten();
    if let Some((y, q)) = period.split_once('Q') {
        let q: u8 = q.parse().ok()?;
        return (1..=4).contains(&q).then_some((year(y)?, q * 3));
    }
    if let Some((y, m)) = period.split_once('-') {
        let m: u8 = m.parse().ok()?;
        return (1..=12).contains(&m).then_some((year(y)?, m));
    }
    Some((year(period)?, 12))
}

/// A Jalali (year, month).
type Month = (i32, u8);
/// A unit and its value.
type UnitValue = (String, f64);

/// What a unit gathered in one period.
#[derive(Default)]
struct Tally {
    points: f64,
    weight: f64,
    indicators: i64,
    counts: [i64; 3],
}

#[async_trait]
impl crate::computed::CatalogRows for ScoresTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let suppress = disclosure_controlled(state);
        self.kept
            .get(&self.statistics, suppress, || self.compute(suppress))
            .await
    }
}

impl ScoresTable {
    async fn compute(&self, suppress: bool) -> Result<RecordBatch> {
        let definer = self.statistics.definer()?.clone();
        let ctx = SessionContext::new_with_state(definer);
        // Units by name, from the first classification an area dimension uses.
        let class = self
            .statistics
            .definitions()
            .indicators
            .iter()
            .find_map(|i| i.classifications.get(i.area.as_ref()?))
            .and_then(|c| self.statistics.classification(c));
        // Each indicator's evaluated cells, by the month its period ends in.
        let mut evaluated: Vec<(&super::Norm, BTreeMap<Month, Vec<UnitValue>>)> = vec![];
        for indicator in &self.statistics.definitions().indicators {
            let Some(norm) = &indicator.norm else {
                continue;
            };
            if indicator.area.is_none() || indicator.period.is_none() {
                continue;
            }
            let plan = self.statistics.view_plan(indicator, suppress).await?;
            let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
            let mut by_end: BTreeMap<Month, (String, Vec<UnitValue>)> = BTreeMap::new();
            for cell in cells_by_period(indicator, &batches)? {
                let (Some(unit), Some(period), Some(value)) = (cell.unit, cell.period, cell.value)
                else {
                    continue;
                };
                let Some(end) = period_end(&period) else {
                    continue;
                };
                if cell.suppressed || !value.is_finite() {
                    continue;
                }
                // Two period keys ending in one month (a month and its quarter in one
                // indicator): the first in order, the month, counts.
                let entry = by_end
                    .entry(end)
                    .or_insert_with(|| (period.clone(), vec![]));
                if entry.0 == period {
                    entry.1.push((unit, value));
                }
            }
            evaluated.push((norm, by_end.into_iter().map(|(k, (_, v))| (k, v)).collect()));
        }
        // Scored as of each month any indicator's period ends in: every indicator
        // by its latest period ended by then, as amar.indicator_status scores the
        // latest.
        let months: std::collections::BTreeSet<(i32, u8)> = evaluated
            .iter()
            .flat_map(|(_, by_end)| by_end.keys().copied())
            .collect();
        let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for month in &months {
            let key = format!("{}-{:02}", month.0, month.1);
            for (norm, by_end) in &evaluated {
                let Some((_, cells)) = by_end.range(..=*month).next_back() else {
                    continue;
                };
                for (unit, value) in cells {
                    let status = norm.status(*value);
                    let tally = tallies.entry((key.clone(), unit.clone())).or_default();
                    tally.points += status.points() * norm.weight;
                    tally.weight += norm.weight;
                    tally.indicators += 1;
                    let slot = match status {
                        super::Status::OnTarget => 0,
                        super::Status::Warning => 1,
                        super::Status::OffTarget => 2,
                    };
                    tally.counts[slot] += 1;
                }
            }
        }
        let scored: Vec<((String, String), f64, &Tally)> = tallies
            .iter()
            .filter(|(_, t)| t.weight > 0.0)
            .map(|(k, t)| (k.clone(), 100.0 * t.points / t.weight, t))
            .collect();
        let n = scored.len();
        let mut unit = StringBuilder::with_capacity(n, n * 4);
        let mut period = StringBuilder::with_capacity(n, n * 8);
        let mut score = Float64Builder::with_capacity(n);
        let mut rank = Int64Builder::with_capacity(n);
        let mut indicators = Int64Builder::with_capacity(n);
        let mut counts = [
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
        ];
        let mut unit_fa = StringBuilder::with_capacity(n, n * 16);
        let mut unit_en = StringBuilder::with_capacity(n, n * 16);
        for ((p, u), s, tally) in &scored {
            // 1 is best; ties share a rank, among the units of the same period.
            let above = scored
                .iter()
                .filter(|((op, _), os, _)| op == p && os > s)
                .count();
            unit.append_value(u);
            period.append_value(p);
            score.append_value(*s);
            rank.append_value(1 + above as i64);
            indicators.append_value(tally.indicators);
            for (builder, count) in counts.iter_mut().zip(tally.counts) {
                builder.append_value(count);
            }
            let label = class.and_then(|c| c.code(u));
            unit_fa.append_option(label.map(|l| l.label_fa.as_str()));
            unit_en.append_option(label.map(|l| l.label_en.as_str()));
        }
        let [mut on, mut warn, mut off] = counts;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(unit.finish()),
            Arc::new(period.finish()),
            Arc::new(score.finish()),
            Arc::new(rank.finish()),
            Arc::new(indicators.finish()),
            Arc::new(on.finish()),
            Arc::new(warn.finish()),
            Arc::new(off.finish()),
            Arc::new(unit_fa.finish()),
            Arc::new(unit_en.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::period_end;

    #[test]
    fn periods_end_in_their_last_month() {
        assert_eq!(period_end("1403-07"), Some((1403, 7)));
        assert_eq!(period_end("1403Q4"), Some((1403, 12)));
        assert_eq!(period_end("1403Q1"), Some((1403, 3)));
        assert_eq!(period_end("1403"), Some((1403, 12)));
        assert_eq!(period_end("1403-W05"), None);
        assert_eq!(period_end("1403Q5"), None);
        assert_eq!(period_end("03-07"), None);
    }
}
