//! Calamus's SQL functions: `SNOWFLAKE_ID()`, `UUID_V7()`, `ULID()`, `CURRENT_USER()`,
//! `CURRENT_ROLE()`. (`NOW()` is DataFusion's.)

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::DataType;
use calamus_domain::ids::{SnowflakeGenerator, new_ulid, new_uuid_v7};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// Which id a [`GeneratedId`] function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IdKind {
    Snowflake,
    UuidV7,
    Ulid,
}

/// A function that makes a new id for every row.
#[derive(Debug)]
struct GeneratedId {
    kind: IdKind,
    name: &'static str,
    signature: Signature,
    snowflake: Arc<SnowflakeGenerator>,
}

impl PartialEq for GeneratedId {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}
impl Eq for GeneratedId {}
impl std::hash::Hash for GeneratedId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state)
    }
}

impl ScalarUDFImpl for GeneratedId {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            IdKind::Snowflake => DataType::Int64,
            IdKind::UuidV7 | IdKind::Ulid => DataType::Utf8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows.max(1);
        let array: ArrayRef = match self.kind {
            IdKind::Snowflake => Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|_| self.snowflake.next_id()),
            )),
            IdKind::UuidV7 => Arc::new(StringArray::from_iter_values((0..rows).map(|_| new_uuid_v7()))),
            IdKind::Ulid => Arc::new(StringArray::from_iter_values((0..rows).map(|_| new_ulid()))),
        };
        Ok(ColumnarValue::Array(array))
    }
}

/// A function returning one fixed text for the statement: the session's user or role.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionText {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl ScalarUDFImpl for SessionText {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(self.value.clone()))))
    }
}

/// The id-making functions, sharing the server's Snowflake generator.
pub fn id_functions(snowflake: &Arc<SnowflakeGenerator>) -> Vec<ScalarUDF> {
    [
        (IdKind::Snowflake, "snowflake_id"),
        (IdKind::UuidV7, "uuid_v7"),
        (IdKind::Ulid, "ulid"),
    ]
    .into_iter()
    .map(|(kind, name)| {
        ScalarUDF::from(GeneratedId {
            kind,
            name,
            signature: Signature::nullary(Volatility::Volatile),
            snowflake: Arc::clone(snowflake),
        })
    })
    .collect()
}

/// `current_user()` and `current_role()` for one session.
pub fn session_functions(user: &str, role: &str) -> Vec<ScalarUDF> {
    [("current_user", user), ("current_role", role)]
        .into_iter()
        .map(|(name, value)| {
            ScalarUDF::from(SessionText {
                name,
                value: value.to_owned(),
                signature: Signature::nullary(Volatility::Stable),
            })
        })
        .collect()
}
