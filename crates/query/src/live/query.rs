//! A subscription's SQL, compiled once: the table and partition it reads, its filter and
//! projection as DataFusion physical expressions over the table's rows.
//!
//! The SQL is planned by DataFusion through the session's own catalog (so the role rules,
//! the caller's partition and name hiding are exactly those of a query), and the plan must
//! be a projection of an optional filter of one table scan.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use calamus_domain::arrow_rows::{build_array, table_schema};
use calamus_domain::model::{SEQ_COLUMN, TableDefinition};
use calamus_domain::{Partition, RowVersion};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;

use crate::engine::{QueryEngine, is_query};
use crate::error::{QueryError, QueryResult};
use crate::parser::parse_statements;
use crate::providers::KvTable;
use crate::session::Session;
use crate::statement::{Statement, UnavailableFeature};

/// What a subscription may be, for the errors that refuse others.
const SHAPE: &str = "a subscription is a SELECT of columns or expressions from one table, \
                     with an optional WHERE (no joins, grouping, ORDER BY, LIMIT or DISTINCT); \
                     use the last_rows option for the newest rows";

/// A compiled subscription query.
#[derive(Debug)]
pub struct LiveQuery {
    table: Arc<TableDefinition>,
    partition: Partition,
    filter: Option<Arc<dyn PhysicalExpr>>,
    projection: Vec<Arc<dyn PhysicalExpr>>,
    /// The rows sent: the projection, then `_seq` if the projection lacks it.
    schema: SchemaRef,
}

impl LiveQuery {
    /// The table read.
    pub fn table(&self) -> &Arc<TableDefinition> {
        &self.table
    }

    /// The partition read.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The schema of the rows sent to the subscriber.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `versions` as one batch of the table's full schema (columns, `_seq`, `_deleted`).
    pub fn rows_batch(&self, versions: &[&RowVersion]) -> QueryResult<RecordBatch> {
        let schema = table_schema(&self.table);
        let columns = &self.table.schema().columns;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (i, column) in columns.iter().enumerate() {
            arrays.push(build_array(&column.data_type, versions.len(), |r| {
                &versions[r].values[i]
            })?);
        }
        arrays.push(Arc::new(Int64Array::from_iter_values(versions.iter().map(|v| v.seq))));
        if self.table.kind.has_soft_delete() {
            arrays.push(Arc::new(BooleanArray::from_iter(
                versions.iter().map(|v| Some(v.deleted)),
            )));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(versions.len()));
        Ok(RecordBatch::try_new_with_options(schema, arrays, &options)?)
    }

    /// For each row of `batch` (from [`Self::rows_batch`]), whether it matches the filter
    /// (NULL does not).
    pub fn matches(&self, batch: &RecordBatch) -> QueryResult<Vec<bool>> {
        let Some(filter) = &self.filter else {
            return Ok(vec![true; batch.num_rows()]);
        };
        let result = filter.evaluate(batch)?.into_array(batch.num_rows())?;
        let flags = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| QueryError::InvalidStatement("the subscription's WHERE is not a condition".into()))?;
        Ok((0..flags.len()).map(|i| flags.is_valid(i) && flags.value(i)).collect())
    }

    /// The rows of `batch` (from [`Self::rows_batch`]) as the subscriber sees them.
    pub fn project(&self, batch: &RecordBatch) -> QueryResult<RecordBatch> {
        let mut arrays = self
            .projection
            .iter()
            .map(|e| Ok(e.evaluate(batch)?.into_array(batch.num_rows())?))
            .collect::<QueryResult<Vec<ArrayRef>>>()?;
        if arrays.len() < self.schema.fields().len() {
            let seq = batch.schema().index_of(SEQ_COLUMN)?;
            arrays.push(Arc::clone(batch.column(seq)));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &options,
        )?)
    }
}

impl QueryEngine {
    /// Compiles `sql` into a live query for `session`: the role rules and the session's
    /// partition apply exactly as for the same query over HTTP.
    pub async fn compile_live_query(&self, session: &Session, sql: &str) -> QueryResult<LiveQuery> {
        let mut statements = parse_statements(sql)?;
        if statements.len() != 1 {
            return Err(QueryError::InvalidStatement(
                "a subscription is exactly one SELECT statement".into(),
            ));
        }
        let statement = statements.remove(0);
        let query = match statement {
            Statement::Sql(ref inner)
                if is_query(inner) && matches!(**inner, datafusion::sql::sqlparser::ast::Statement::Query(_)) =>
            {
                self.authorize(session, &statement)?;
                let Statement::Sql(inner) = statement else {
                    unreachable!("matched above")
                };
                *inner
            }
            Statement::NotAvailable {
                feature: UnavailableFeature::Subscribe,
            } => {
                return Err(QueryError::InvalidStatement(
                    "over WebSocket, a subscription's sql is the SELECT itself (SELECT * FROM ns.t WHERE ...), \
                     without SUBSCRIBE TO"
                        .into(),
                ));
            }
            _ => return Err(QueryError::InvalidStatement(SHAPE.into())),
        };
        let state = self.state_for(session, None);
        let frame = self.plan_query(&state, query, &[]).await?;
        let plan = frame.logical_plan();
        let (projection, filter, input) = plan_shape(plan)?;
        let (table, partition) = scanned_table(input)?;
        let input_schema: &DFSchema = input.schema();
        let filter = filter
            .map(|expr| {
                refuse_subqueries(expr)?;
                Ok::<_, QueryError>(state.create_physical_expr(expr.clone(), input_schema)?)
            })
            .transpose()?;
        let mut fields: Vec<Field> = Vec::with_capacity(projection.len() + 1);
        let mut exprs = Vec::with_capacity(projection.len());
        for (expr, field) in projection.iter().zip(plan.schema().fields()) {
            refuse_subqueries(expr)?;
            exprs.push(state.create_physical_expr(expr.clone(), input_schema)?);
            fields.push(field.as_ref().clone());
        }
        if !fields.iter().any(|f| f.name() == SEQ_COLUMN) {
            fields.push(Field::new(SEQ_COLUMN, arrow::datatypes::DataType::Int64, false));
        }
        Ok(LiveQuery {
            table,
            partition,
            filter,
            projection: exprs,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

/// The projection, the filter and the node they read from, for a plan of the accepted shape.
fn plan_shape(plan: &LogicalPlan) -> QueryResult<(&[Expr], Option<&Expr>, &LogicalPlan)> {
    let LogicalPlan::Projection(projection) = plan else {
        return Err(QueryError::InvalidStatement(SHAPE.into()));
    };
    let (filter, input) = match projection.input.as_ref() {
        LogicalPlan::Filter(filter) => (Some(&filter.predicate), filter.input.as_ref()),
        other => (None, other),
    };
    Ok((&projection.expr, filter, input))
}

/// The table and partition a plan's input scans (through an optional alias).
fn scanned_table(input: &LogicalPlan) -> QueryResult<(Arc<TableDefinition>, Partition)> {
    let scan = match input {
        LogicalPlan::SubqueryAlias(alias) => alias.input.as_ref(),
        other => other,
    };
    let LogicalPlan::TableScan(scan) = scan else {
        return Err(QueryError::InvalidStatement(SHAPE.into()));
    };
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<KvTable>() else {
        return Err(QueryError::Unsupported(
            "live queries on system tables are not available; query them over HTTP".into(),
        ));
    };
    Ok((Arc::clone(table.definition()), table.partition().clone()))
}

fn refuse_subqueries(expr: &Expr) -> QueryResult<()> {
    let has_subquery = expr
        .exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) | Expr::OuterReferenceColumn(..)
            ))
        })
        .unwrap_or(true);
    if has_subquery {
        return Err(QueryError::InvalidStatement(format!(
            "{SHAPE}; subqueries are not allowed in a subscription"
        )));
    }
    Ok(())
}
