//! Filters on the primary key, pushed down into a key range of the partition.

use std::ops::Bound;

use calamus_domain::arrow_rows::array_values;
use calamus_domain::keys::encode_key_value;
use calamus_domain::model::TableSchema;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

/// The range of encoded row ids that can hold rows matching every filter.
#[derive(Debug, Clone, PartialEq)]
pub struct RowIdRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl RowIdRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    fn tighten_start(&mut self, bound: Bound<Vec<u8>>) {
        let tighter = match (&self.start, &bound) {
            (Bound::Unbounded, _) => true,
            (_, Bound::Unbounded) => false,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b)) => b > a,
            (Bound::Included(a), Bound::Excluded(b)) => b >= a,
            (Bound::Excluded(a), Bound::Excluded(b)) => b > a,
        };
        if tighter {
            self.start = bound;
        }
    }

    fn tighten_end(&mut self, bound: Bound<Vec<u8>>) {
        let tighter = match (&self.end, &bound) {
            (Bound::Unbounded, _) => true,
            (_, Bound::Unbounded) => false,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b)) => b < a,
            (Bound::Included(a), Bound::Excluded(b)) => b <= a,
            (Bound::Excluded(a), Bound::Excluded(b)) => b < a,
        };
        if tighter {
            self.end = bound;
        }
    }
}

/// Whether `filter` compares the primary key with a value (`pk OP value`, `value OP pk`,
/// OP one of `=`, `<`, `<=`, `>`, `>=`, the value a literal or a parameter, maybe cast):
/// a filter a scan keyed by the primary key answers exactly, through its key range when
/// [`narrows_exactly`], else by applying it to the rows it reads. The shape is the same
/// before a parameter is bound and after, whatever value it is bound to.
pub fn compares_key(schema: &TableSchema, filter: &Expr) -> bool {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return false;
    };
    let Some(pk) = schema.primary_key_column() else {
        return false;
    };
    let is_key = |e: &Expr| matches!(e, Expr::Column(c) if c.name == pk.name.as_str());
    let is_value = |e: &Expr| match e {
        Expr::Literal(..) | Expr::Placeholder(_) => true,
        Expr::Cast(cast) => matches!(cast.expr.as_ref(), Expr::Literal(..) | Expr::Placeholder(_)),
        _ => false,
    };
    matches!(
        op,
        Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    ) && ((is_key(left) && is_value(right)) || (is_value(left) && is_key(right)))
}

/// Whether the key range of [`row_id_range`] holds `filter` exactly: a comparison of the
/// primary key with a value that converts to the key's type without loss (not NULL).
pub fn narrows_exactly(schema: &TableSchema, filter: &Expr) -> bool {
    key_comparison(schema, filter).is_some()
}

/// The key range allowed by the primary-key comparisons among `filters` (a superset of
/// the matching rows: DataFusion still applies every filter).
pub fn row_id_range(schema: &TableSchema, filters: &[Expr]) -> RowIdRange {
    let mut range = RowIdRange::all();
    for filter in filters {
        let Some((op, key)) = key_comparison(schema, filter) else {
            continue;
        };
        match op {
            Operator::Eq => {
                range.tighten_start(Bound::Included(key.clone()));
                range.tighten_end(Bound::Included(key));
            }
            Operator::Gt => range.tighten_start(Bound::Excluded(key)),
            Operator::GtEq => range.tighten_start(Bound::Included(key)),
            Operator::Lt => range.tighten_end(Bound::Excluded(key)),
            Operator::LtEq => range.tighten_end(Bound::Included(key)),
            _ => {}
        }
    }
    range
}

/// `pk OP literal` (or `literal OP pk`) as the operator seen from the key's side and the
/// literal's encoded key, when the literal converts to the key's type exactly.
fn key_comparison(schema: &TableSchema, filter: &Expr) -> Option<(Operator, Vec<u8>)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    let pk = schema.primary_key_column()?;
    let (literal, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), value) if c.name == pk.name.as_str() => (constant(value)?, *op),
        (value, Expr::Column(c)) if c.name == pk.name.as_str() => (constant(value)?, op.swap()?),
        _ => return None,
    };
    let literal = &literal;
    if !matches!(
        op,
        Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    ) || literal.is_null()
    {
        return None;
    }
    let target = pk.data_type.arrow_type();
    let cast = literal.cast_to(&target).ok()?;
    // Only exact conversions narrow the range: 2.5 must not become key 2.
    if cast.cast_to(&literal.data_type()).ok()? != *literal {
        return None;
    }
    let array = ScalarValue::iter_to_array(std::iter::once(cast)).ok()?;
    let value = array_values(array.as_ref(), &pk.data_type).ok()?.pop()?;
    Some((op, encode_key_value(&value).ok()?))
}

/// The value of a literal, or of a cast of one (a bound parameter keeps the cast the
/// planner put around it, since a reused plan is not simplified again).
fn constant(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(cast) => match cast.expr.as_ref() {
            Expr::Literal(v, _) => v.cast_to(cast.field.data_type()).ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamus_domain::ColumnName;
    use calamus_domain::model::ColumnDefinition;
    use calamus_domain::types::{DataType, Value};
    use datafusion::logical_expr::expr::Placeholder;
    use datafusion::logical_expr::{cast, col, lit};

    fn schema() -> TableSchema {
        let column = |id: u32, name: &str| ColumnDefinition {
            id,
            name: ColumnName::new(name).unwrap(),
            data_type: DataType::BigInt,
            nullable: false,
            default: None,
            added_in_version: 1,
            missing_value: None,
        };
        TableSchema {
            version: 1,
            columns: vec![column(1, "id"), column(2, "n")],
            primary_key: Some(1),
            created_at: 0,
        }
    }

    fn key(v: i64) -> Vec<u8> {
        encode_key_value(&Value::BigInt(v)).unwrap()
    }

    #[test]
    fn a_parameter_on_the_key_is_pushed_down_and_narrows_once_bound() {
        let parameter = Expr::Placeholder(Placeholder::new_with_field("$1".into(), None));
        let schema = schema();
        assert!(compares_key(&schema, &col("id").eq(parameter.clone())));
        assert!(compares_key(
            &schema,
            &cast(parameter.clone(), arrow::datatypes::DataType::Int64).lt(col("id"))
        ));
        assert!(!compares_key(&schema, &col("n").eq(parameter)));
        // Bound, the parameter may keep the cast the planner put around it.
        let bound = col("id").eq(cast(lit(5i32), arrow::datatypes::DataType::Int64));
        let range = row_id_range(&schema, &[bound]);
        assert_eq!(
            (range.start, range.end),
            (Bound::Included(key(5)), Bound::Included(key(5)))
        );
        // An unbound parameter narrows nothing.
        let unbound = col("id").eq(Expr::Placeholder(Placeholder::new_with_field("$1".into(), None)));
        assert_eq!(row_id_range(&schema, &[unbound]), RowIdRange::all());
    }
}
