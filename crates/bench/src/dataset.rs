//! The rows every scenario and limit uses, so that server and limit handle the same data.

use calamus_domain::Value;
use serde_json::{Value as Json, json};

/// The columns of the scenarios' item tables.
pub const ITEMS_COLUMNS_SQL: &str = "id BIGINT PRIMARY KEY, category TEXT NOT NULL, amount DOUBLE NOT NULL, note TEXT";

/// How many categories the items fall into (a filter on one selects 1/CATEGORIES).
pub const CATEGORIES: i64 = 10;

/// The item with primary key `id`: every other column follows from it.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The primary key.
    pub id: i64,
}

impl Item {
    /// The item `id`.
    pub fn new(id: i64) -> Self {
        Self { id }
    }

    /// Its category, `c0` to `c9`.
    pub fn category(&self) -> String {
        format!("c{}", self.id.rem_euclid(CATEGORIES))
    }

    /// Its amount.
    pub fn amount(&self) -> f64 {
        (self.id.rem_euclid(1000)) as f64 * 0.25
    }

    /// Its note: a short text, as apps store.
    pub fn note(&self) -> String {
        format!("item {} noted by the benchmark", self.id)
    }

    /// The values in column order, as the engine stores them.
    pub fn values(&self) -> Vec<Value> {
        vec![
            Value::BigInt(self.id),
            Value::Text(self.category()),
            Value::Double(self.amount()),
            Value::Text(self.note()),
        ]
    }

    /// The values as `$1..$4` parameters of an INSERT.
    pub fn params(&self) -> Vec<Json> {
        vec![
            json!(self.id),
            json!(self.category()),
            json!(self.amount()),
            json!(self.note()),
        ]
    }

    /// The row as a `VALUES` tuple.
    pub fn tuple(&self) -> String {
        format!(
            "({}, '{}', {:?}, '{}')",
            self.id,
            self.category(),
            self.amount(),
            self.note()
        )
    }
}

/// `INSERT INTO {table} VALUES` of the items `first..first + count`.
pub fn insert_values(table: &str, first: i64, count: usize) -> String {
    let tuples: Vec<String> = (first..first + count as i64).map(|id| Item::new(id).tuple()).collect();
    format!(
        "INSERT INTO {table} (id, category, amount, note) VALUES {}",
        tuples.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_the_same_everywhere() {
        let item = Item::new(1234);
        assert_eq!(item.category(), "c4");
        assert_eq!(item.amount(), 58.5);
        assert_eq!(item.tuple(), "(1234, 'c4', 58.5, 'item 1234 noted by the benchmark')");
        assert_eq!(item.params()[2], json!(58.5));
        assert_eq!(
            insert_values("t", 0, 2),
            "INSERT INTO t (id, category, amount, note) VALUES (0, 'c0', 0.0, 'item 0 noted by the benchmark'), (1, 'c1', 0.25, 'item 1 noted by the benchmark')"
        );
    }
}
