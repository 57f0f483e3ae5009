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
    fn all() -> Self {
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

/// Whether a filter compares the primary key with a literal, so it narrows the key range.
pub fn is_primary_key_filter(schema: &TableSchema, filter: &Expr) -> bool {
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
        (Expr::Column(c), Expr::Literal(v, _)) if c.name == pk.name.as_str() => (v, *op),
        (Expr::Literal(v, _), Expr::Column(c)) if c.name == pk.name.as_str() => (v, op.swap()?),
        _ => return None,
    };
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
