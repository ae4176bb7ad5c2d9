//! Heap bytes per resident price level: 1,000 books of 1,000 levels a side, built the way a
//! venue fills them (a REST snapshot in price order, then deltas), counted by a global allocator.
//! `cargo run --release -p lobfeed-core --example memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use lobfeed_core::{Book, Decimal, Side};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the pointer came from `alloc` above with the same layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BOOKS: usize = 1_000;
const LEVELS: i64 = 1_000;

fn main() {
    let before = LIVE.load(Ordering::Relaxed);
    let mut books = Vec::with_capacity(BOOKS);
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..BOOKS {
        let mut book = Book::new();
        // Snapshot: best first on each side, as venues list them.
        for i in 0..LEVELS {
            let bid = Decimal::new(1_000_000 - i, 2).unwrap();
            let ask = Decimal::new(1_000_001 + i, 2).unwrap();
            let qty = Decimal::new(1 + i % 97, 3).unwrap();
            book.apply(Side::Bid, bid, qty).unwrap();
            book.apply(Side::Ask, ask, qty).unwrap();
        }
        // Churn near the top: deletes and re-inserts, the steady state of a live book.
        for _ in 0..2_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let offset = (rng % 50) as i64;
            let qty = Decimal::new((rng % 3) as i64, 3).unwrap();
            let (side, price) = if rng & 1 == 0 {
                (Side::Bid, 1_000_000 - offset)
            } else {
                (Side::Ask, 1_000_001 + offset)
            };
            book.apply(side, Decimal::new(price, 2).unwrap(), qty)
                .unwrap();
        }
        books.push(book);
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let levels: usize = books
        .iter()
        .map(|b| b.len(Side::Bid) + b.len(Side::Ask))
        .sum();
    println!(
        "{BOOKS} books, {levels} resident levels, {:.1} MiB heap, {:.1} bytes per level",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / levels as f64
    );
}
