//! The book alone, on the levels of the real Binance tapes: the tick ladder against the
//! `BTreeMap` book it replaced (`support/tree_book.rs`).
//!
//! `cargo bench -p lobfeed-core --bench book`. For each tape:
//! - `<tape>/apply/{ladder,btreemap}`: every level of every depth frame after the REST
//!   snapshot, applied to a book holding that snapshot (throughput in levels);
//! - `<tape>/read/{ladder,btreemap}`: best bid, best ask and the top 20 levels of each side.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flate2::read::GzDecoder;
use lobfeed_core::{Book, Decimal, Side};

#[path = "support/tree_book.rs"]
mod tree_book;

use tree_book::TreeBook;

type Change = (Side, Decimal, Decimal);

/// The REST snapshot's levels and the levels of every depth frame after it, in order.
fn levels(name: &str) -> (Vec<Change>, Vec<Change>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/tapes")
        .join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (clone ../shared beside the repo)", path.display()));
    let mut snapshot = Vec::new();
    let mut deltas = Vec::new();
    let read = |value: &serde_json::Value, out: &mut Vec<Change>| {
        for (side, key) in [
            (Side::Bid, "b"),
            (Side::Ask, "a"),
            (Side::Bid, "bids"),
            (Side::Ask, "asks"),
        ] {
            for level in value[key].as_array().into_iter().flatten() {
                let price = Decimal::parse(level[0].as_str().unwrap()).unwrap();
                let qty = Decimal::parse(level[1].as_str().unwrap()).unwrap();
                out.push((side, price, qty));
            }
        }
    };
    for line in BufReader::new(GzDecoder::new(file)).lines() {
        let record: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let Some(data) = record["data"].as_str() else {
            continue;
        };
        match record["type"].as_str() {
            Some("http") if snapshot.is_empty() => {
                read(&serde_json::from_str(data).unwrap(), &mut snapshot);
            }
            Some("recv") if !snapshot.is_empty() && data.contains("depthUpdate") => {
                let frame: serde_json::Value = serde_json::from_str(data).unwrap();
                read(&frame["data"], &mut deltas);
            }
            _ => {}
        }
    }
    (snapshot, deltas)
}

fn bench_book(c: &mut Criterion) {
    for name in [
        "binance-ethusdt-20240808",
        "binance-usdm-ethusdt-20240808",
        "binance-coinm-ethusd_perp-20240808",
    ] {
        let (snapshot, deltas) = levels(&format!("{name}.jsonl.gz"));
        let mut ladder = Book::new();
        let mut tree = TreeBook::default();
        for &(side, price, qty) in &snapshot {
            ladder.apply(side, price, qty).unwrap();
            tree.apply(side, price, qty).unwrap();
        }
        let mut group = c.benchmark_group(format!("{name}/apply"));
        group.measurement_time(Duration::from_secs(3));
        group.sample_size(20);
        group.throughput(Throughput::Elements(deltas.len() as u64));
        group.bench_function("ladder", |b| {
            b.iter_batched(
                || ladder.clone(),
                |mut book| {
                    for &(side, price, qty) in &deltas {
                        book.apply(side, price, qty).unwrap();
                    }
                    book
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function("btreemap", |b| {
            b.iter_batched(
                || {
                    let mut copy = TreeBook::default();
                    for &(side, price, qty) in &snapshot {
                        copy.apply(side, price, qty).unwrap();
                    }
                    copy
                },
                |mut book| {
                    for &(side, price, qty) in &deltas {
                        book.apply(side, price, qty).unwrap();
                    }
                    book
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();

        for &(side, price, qty) in &deltas {
            ladder.apply(side, price, qty).unwrap();
            tree.apply(side, price, qty).unwrap();
        }
        let mut group = c.benchmark_group(format!("{name}/read"));
        group.measurement_time(Duration::from_secs(2));
        group.sample_size(20);
        group.bench_function("ladder", |b| {
            b.iter(|| {
                let mut sum = 0i64;
                sum += ladder.best_bid().map_or(0, |l| l.price.mantissa());
                sum += ladder.best_ask().map_or(0, |l| l.price.mantissa());
                for level in ladder.top(Side::Bid, 20).chain(ladder.top(Side::Ask, 20)) {
                    sum += level.qty.mantissa();
                }
                sum
            })
        });
        group.bench_function("btreemap", |b| {
            b.iter(|| {
                let mut sum = 0i64;
                sum += tree.best_bid().map_or(0, |l| l.price.mantissa());
                sum += tree.best_ask().map_or(0, |l| l.price.mantissa());
                for level in tree.bids_iter().take(20).chain(tree.asks_iter().take(20)) {
                    sum += level.qty.mantissa();
                }
                sum
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_book);
criterion_main!(benches);
