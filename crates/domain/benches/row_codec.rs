//! Row codec throughput: encode and decode of a typical 6-column row.
//!
//! Each iteration handles a batch of [`BATCH`] rows, so criterion's throughput line reads
//! directly as rows per second. Run with `cargo bench -p calamus-domain --bench row_codec`.

use std::hint::black_box;

use calamus_domain::model::{ColumnDefinition, TableSchema};
use calamus_domain::{ColumnName, DataType, RowCodec, RowVersion, Value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Rows per measured iteration.
const BATCH: usize = 1_000;

fn column(id: u32, name: &str, data_type: DataType, nullable: bool) -> ColumnDefinition {
    ColumnDefinition {
        id,
        name: ColumnName::new(name).expect("a valid column name"),
        data_type,
        nullable,
        default: None,
        added_in_version: 1,
        missing_value: None,
    }
}

/// `(id BIGINT PRIMARY KEY, name TEXT, qty INT, price DOUBLE, active BOOLEAN, created TIMESTAMP)`.
fn schema() -> TableSchema {
    TableSchema {
        version: 1,
        columns: vec![
            column(1, "id", DataType::BigInt, false),
            column(2, "name", DataType::Text, true),
            column(3, "qty", DataType::Int, true),
            column(4, "price", DataType::Double, true),
            column(5, "active", DataType::Boolean, true),
            column(6, "created", DataType::Timestamp, true),
        ],
        primary_key: Some(1),
        created_at: 1_700_000_000_000_000,
    }
}

/// `BATCH` rows with a ~40-byte text value each.
fn rows() -> Vec<RowVersion> {
    (0..BATCH as i64)
        .map(|i| RowVersion {
            seq: 7_000_000_000_000_000 + i,
            deleted: false,
            values: vec![
                Value::BigInt(1_000_000 + i),
                Value::Text(format!("customer-{i:06} <customer{i:06}@example.com>")),
                Value::Int((i % 500) as i32),
                Value::Double(i as f64 * 1.25),
                Value::Boolean(i % 2 == 0),
                Value::Timestamp(1_700_000_000_000_000 + i * 1_000),
            ],
        })
        .collect()
}

fn bench_row_codec(c: &mut Criterion) {
    let schema = schema();
    let codec = RowCodec::new(&schema);
    let rows = rows();
    let encoded: Vec<Vec<u8>> = rows.iter().map(|r| codec.encode(r).expect("encodes")).collect();
    let text_len = match &rows[0].values[1] {
        Value::Text(s) => s.len(),
        _ => 0,
    };
    let avg_bytes = encoded.iter().map(Vec::len).sum::<usize>() / encoded.len();
    eprintln!("row_codec: {BATCH} rows per iteration, text {text_len} bytes, encoded row ~{avg_bytes} bytes");
    assert_eq!(codec.decode(&encoded[0]).expect("decodes"), rows[0]);

    let mut group = c.benchmark_group("row_codec");
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("encode", |b| {
        b.iter(|| {
            for row in &rows {
                black_box(codec.encode(black_box(row)).expect("encodes"));
            }
        })
    });

    group.bench_function("encode_into_reused_buffer", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            for row in &rows {
                codec.encode_into(black_box(row), &mut out).expect("encodes");
                black_box(&out);
            }
        })
    });

    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(codec.decode(black_box(bytes)).expect("decodes"));
            }
        })
    });

    group.finish();
}

criterion_group!(benches, bench_row_codec);
criterion_main!(benches);
