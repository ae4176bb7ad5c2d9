//! Gemini v1 frames made from the real v2 tape: no v1 connection was recorded, and v1 carries
//! the same book changes and trades, one symbol a connection. Each v2 frame of the symbol
//! becomes one v1 frame, numbered by `socket_sequence` from 0 as a new connection is: the
//! symbol's first `l2_updates` is the `initial` update, later ones `place`/`cancel` changes,
//! each `trade` a trade event (v1 names the maker's side, the taker's opposite), and each
//! heartbeat of the connection after the book a v1 heartbeat.

#![allow(dead_code)]

use serde_json::{json, Value};

/// The v1 frames of `symbol` from one v2 connection's frames, in order.
pub fn from_v2(frames: &[&str], symbol: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_book = false;
    for text in frames {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let socket_sequence = out.len();
        let kind = frame["type"].as_str();
        if kind == Some("heartbeat") {
            // A v1 connection starts with its book.
            if seen_book {
                let heartbeat = json!({"type": "heartbeat", "socket_sequence": socket_sequence});
                out.push(heartbeat.to_string());
            }
            continue;
        }
        if frame["symbol"].as_str() != Some(symbol) {
            continue;
        }
        match kind {
            Some("l2_updates") => {
                let initial = !seen_book;
                seen_book = true;
                let events: Vec<Value> = frame["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|change| {
                        let qty = change[2].as_str().unwrap_or_default();
                        let reason = match (initial, qty.trim_matches('0').trim_matches('.')) {
                            (true, _) => "initial",
                            (false, "") => "cancel",
                            (false, _) => "place",
                        };
                        let side = if change[0] == "buy" { "bid" } else { "ask" };
                        json!({
                            "type": "change",
                            "side": side,
                            "price": change[1],
                            "remaining": qty,
                            "delta": qty,
                            "reason": reason,
                        })
                    })
                    .collect();
                out.push(
                    json!({
                        "type": "update",
                        "eventId": socket_sequence,
                        "socket_sequence": socket_sequence,
                        "events": events,
                    })
                    .to_string(),
                );
            }
            Some("trade") => {
                let maker_side = if frame["side"] == "buy" { "ask" } else { "bid" };
                let ms = frame["timestamp"].as_u64().unwrap_or(0);
                out.push(
                    json!({
                        "type": "update",
                        "eventId": frame["event_id"],
                        "timestamp": ms / 1000,
                        "timestampms": ms,
                        "socket_sequence": socket_sequence,
                        "events": [{
                            "type": "trade",
                            "tid": frame["event_id"],
                            "price": frame["price"],
                            "amount": frame["quantity"],
                            "makerSide": maker_side,
                        }],
                    })
                    .to_string(),
                );
            }
            _ => {}
        }
    }
    out
}
