//! `indicators.<id>`: each indicator as a view with the definer's rights.
//!
//! An [`IndicatorView`] holds the indicator's logical plan, made by the engine's base
//! session (which reads every table), and deliberately does not offer it through
//! `TableProvider::get_logical_plan`: DataFusion would inline it while planning the
//! user's statement, and the policy layer would then check the user's grants on the
//! tables under it. Instead the scan stays a scan of `indicators.<id>` until the policy
//! layer has checked the grant on the indicator itself; it then inlines the plan (see
//! [`IndicatorView::definition`]) with the user's row filters on the tables under it.
//! Run without the policy layer (rules, the status table) the view executes its plan
//! as it is.
//!
//! Every view has the indicator's columns plus `suppressed`. For the public role the
//! plan is the disclosure-controlled one: a cell whose count is below `min_cell` has
//! every non-dimension column NULL and `suppressed` true (primary suppression), and
//! when exactly one unit of a period is suppressed, the unit with the next smallest
//! count is too, so that a published total minus the others does not give it away
//! (secondary suppression). Whatever a user aggregates on top sees only these rows.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;

use super::{Indicator, Statistics};

/// The schema indicators live in.
pub const INDICATORS_SCHEMA: &str = "indicators";
/// The flag column every indicator view ends with.
pub const SUPPRESSED_COLUMN: &str = "suppressed";

/// The `indicators` schema.
#[derive(Debug)]
pub struct IndicatorsSchema {
    statistics: Arc<Statistics>,
}

/// The public reads each indicator in its disclosure-controlled form.
#[async_trait]
impl crate::visible::PerReader for IndicatorsSchema {
    async fn table_for(
        &self,
        table: &str,
        reader: &dyn crate::visible::Visibility,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.view(table, reader.disclosure_control()).await
    }
}

impl IndicatorsSchema {
    pub fn new(statistics: Arc<Statistics>) -> Self {
        Self { statistics }
    }

    async fn view(&self, name: &str, suppress: bool) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(indicator) = self.statistics.indicator(name) else {
            return Ok(None);
        };
        let plan = self.statistics.view_plan(indicator, suppress).await?;
        Ok(Some(Arc::new(IndicatorView {
            statistics: self.statistics.clone(),
            id: indicator.id.clone(),
            schema: plan.schema().as_arrow().clone().into(),
            plan,
            suppressed: suppress,
        })))
    }
}

#[async_trait]
impl SchemaProvider for IndicatorsSchema {
    fn table_names(&self) -> Vec<String> {
        self.statistics
            .definitions()
            .indicators
            .iter()
            .map(|i| i.id.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.view(name, false).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.statistics.indicator(name).is_some()
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create \"{name}\" in schema \"{INDICATORS_SCHEMA}\": indicators are defined in the config"
        )))
    }
}

/// One indicator as a view.
#[derive(Debug)]
pub struct IndicatorView {
    statistics: Arc<Statistics>,
    id: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    suppressed: bool,
}

impl IndicatorView {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The plan that computes the view, with the definer's rights, for the policy layer
    /// to inline after it has checked the reader's grant on the view.
    pub fn definition(&self) -> &LogicalPlan {
        &self.plan
    }

    /// `plan`, this view's definition as one reader reads it (inlined with their row
    /// filters), replaced by a scan of its rows computed once per version of the data
    /// under it, where they can be kept (see [`super::kept`]).
    pub fn kept(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        self.statistics.kept_view(&self.id, self.suppressed, plan)
    }

    /// Whether this is the disclosure-controlled form.
    pub fn is_suppressed(&self) -> bool {
        self.suppressed
    }

    /// The view behind a table provider, if it is one.
    pub fn of(table: &dyn TableProvider) -> Option<&IndicatorView> {
        table.downcast_ref::<IndicatorView>()
    }
}

#[async_trait]
impl TableProvider for IndicatorView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    /// Not offered: see the module docs.
    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    fn get_table_definition(&self) -> Option<&str> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A user's session never runs the definer's plan as it is: the policy layer
        // inlines it with the user's row filters. Reaching here from one is a bug, and
        // failing closed is the only safe answer to it.
        if state
            .config()
            .get_extension::<crate::visible::SessionVisibility>()
            .is_some()
        {
            return Err(DataFusionError::Internal(format!(
                "indicator \"{}\" reached execution without the policy layer",
                self.id
            )));
        }
        let mut builder = datafusion::logical_expr::LogicalPlanBuilder::from(self.plan.clone());
        if let Some(projection) = projection {
            let columns = projection
                .iter()
                .map(|i| Expr::Column(self.plan.schema().columns()[*i].clone()))
                .collect::<Vec<_>>();
            builder = builder.project(columns)?;
        }
        if let Some(limit) = limit {
            builder = builder.limit(0, Some(limit))?;
        }
        let plan = state.create_physical_plan(&builder.build()?).await?;
        Ok(plan)
    }
}

impl Statistics {
    /// The indicator's plan: its SQL with `suppressed` added, and for the public the
    /// small cells suppressed.
    pub(crate) async fn view_plan(
        &self,
        indicator: &Indicator,
        suppress: bool,
    ) -> Result<LogicalPlan> {
        let definer = self.definer()?;
        let inner = definer
            .create_logical_plan(&indicator.sql)
            .await
            .map_err(|e| in_indicator(&indicator.id, e))?;
        let columns: Vec<String> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let sql = view_sql(indicator, &columns, suppress)?;
        definer
            .create_logical_plan(&sql)
            .await
            .map_err(|e| in_indicator(&indicator.id, e))
    }
}

/// A column name as a quoted SQL identifier (always quoted: `order` is a fine name).
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn in_indicator(id: &str, e: DataFusionError) -> DataFusionError {
    DataFusionError::Context(format!("indicator \"{id}\""), Box::new(e))
}

/// The SQL of an indicator's view, over its own SQL's columns.
fn view_sql(indicator: &Indicator, columns: &[String], suppress: bool) -> Result<String> {
    let missing = |what: &str, name: &str| {
        DataFusionError::Plan(format!(
            "indicator \"{}\": its {what} column \"{name}\" is not among the columns its SQL returns ({})",
            indicator.id,
            columns.join(", ")
        ))
    };
    if columns.iter().any(|c| c == SUPPRESSED_COLUMN) {
        return Err(DataFusionError::Plan(format!(
            "indicator \"{}\": its SQL returns a column named \"{SUPPRESSED_COLUMN}\", which Amar adds itself",
            indicator.id
        )));
    }
    for d in &indicator.dimensions {
        if !columns.contains(d) {
            return Err(missing("dimension", d));
        }
    }
    if !columns.contains(&indicator.value) {
        return Err(missing("value", &indicator.value));
    }
    let base = format!("({}) AS amar_base", indicator.sql);
    let listed = columns.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    if !suppress {
        return Ok(format!(
            "SELECT {listed}, false AS {SUPPRESSED_COLUMN} FROM {base}"
        ));
    }
    let Some(count) = indicator.count.as_deref() else {
        // No count to judge cells by: nothing can be shown safely but the dimensions.
        let nulled = columns
            .iter()
            .map(|c| {
                if indicator.dimensions.contains(c) {
                    q(c)
                } else {
                    format!("NULL AS {}", q(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(format!(
            "SELECT {nulled}, true AS {SUPPRESSED_COLUMN} FROM {base}"
        ));
    };
    if !columns.iter().any(|c| c == count) {
        return Err(missing("count", count));
    }
    let count = q(count);
    let min = indicator.min_cell;
    // Secondary suppression is among the units of one cell of the other dimensions.
    let partition: Vec<String> = indicator
        .dimensions
        .iter()
        .filter(|d| Some(*d) != indicator.area.as_ref())
        .map(|d| q(d))
        .collect();
    let over = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {}", partition.join(", "))
    };
    // The unit to hide beside a lone suppressed one is the one with the smallest
    // count among the shown (ties: all of them). Found with a window that does not
    // sort by count: an ordering by the hidden counts would leave the rows in that
    // order, and the public could read it off an unsorted answer.
    let secondary = if indicator.area.is_some() {
        format!("OR (amar_primaries = 1 AND {count} = amar_next)")
    } else {
        String::new()
    };
    let shown = columns
        .iter()
        .map(|c| {
            let quoted = q(c);
            if indicator.dimensions.contains(c) {
                quoted
            } else {
                format!("CASE WHEN amar_hidden THEN NULL ELSE {quoted} END AS {quoted}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Rows leave in the order of what they show, never of what they hide.
    let order = indicator
        .dimensions
        .iter()
        .map(|d| format!("{} NULLS FIRST", q(d)))
        .collect::<Vec<_>>();
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    Ok(format!(
        "SELECT {shown}, amar_hidden AS {SUPPRESSED_COLUMN} FROM (\
           SELECT *, amar_primary {secondary} AS amar_hidden FROM (\
             SELECT *, \
               sum(CASE WHEN amar_primary THEN 1 ELSE 0 END) OVER ({over}) AS amar_primaries, \
               min(CASE WHEN amar_primary THEN NULL ELSE {count} END) OVER ({over}) AS amar_next \
             FROM (SELECT {listed}, coalesce({count} < {min}, true) AS amar_primary FROM {base}) AS amar_flagged\
           ) AS amar_ranked\
         ) AS amar_cells{order}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::Additivity;

    fn indicator() -> Indicator {
        Indicator {
            id: "x".into(),
            title_fa: String::new(),
            title_en: String::new(),
            definition_fa: String::new(),
            definition_en: String::new(),
            counting: String::new(),
            unit: String::new(),
            periodicity: "monthly".into(),
            department: String::new(),
            dimensions: vec!["province".into(), "period".into()],
            area: Some("province".into()),
            period: Some("period".into()),
            value: "value".into(),
            count: Some("n".into()),
            min_cell: 5,
            additivity: Additivity::Flow,
            norm: None,
            concepts: vec![],
            classifications: Default::default(),
            sql: "SELECT 1".into(),
        }
    }

    #[test]
    fn a_missing_value_column_is_named() {
        let cols = vec!["province".to_string(), "period".to_string()];
        let e = view_sql(&indicator(), &cols, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("value column \"value\""), "{e}");
    }

    #[test]
    fn secondary_suppression_partitions_by_the_other_dimensions() {
        let cols: Vec<String> = ["province", "period", "value", "n"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let sql = view_sql(&indicator(), &cols, true).unwrap();
        assert!(sql.contains("PARTITION BY \"period\""), "{sql}");
        assert!(
            sql.contains("amar_primaries = 1 AND \"n\" = amar_next"),
            "{sql}"
        );
        assert!(
            !sql.contains("ORDER BY \"n\""),
            "no window sorts by the hidden count: {sql}"
        );
        assert!(
            sql.ends_with("ORDER BY \"province\" NULLS FIRST, \"period\" NULLS FIRST"),
            "{sql}"
        );
        assert!(sql.contains("coalesce(\"n\" < 5, true)"), "{sql}");
    }
}
