//! Filling a chain: many signed messages from a few clients, sent
//! concurrently, with bodies that look like an application's.

use futures_util::future::join_all;
use sealchain_client::api::NodeClient;
use sealchain_shared::SigningKey;
use sealchain_shared::api::{NodeInfo, Receipt};

use crate::seal;

/// Sends `count` messages from `clients` identities (round robin, up to 8
/// in flight) and returns their receipts in seq order.
pub async fn send(client: &NodeClient, info: &NodeInfo, clients: &[SigningKey], count: usize) -> Vec<Receipt> {
    send_with(client, info, clients, count, 8).await
}

/// Like [`send`], with up to `in_flight` messages in flight.
pub async fn send_with(
    client: &NodeClient,
    info: &NodeInfo,
    clients: &[SigningKey],
    count: usize,
    in_flight: usize,
) -> Vec<Receipt> {
    let mut receipts = Vec::with_capacity(count);
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(in_flight.max(1));
        let answers = join_all((sent..sent + batch).map(|i| {
            let key = &clients[i % clients.len()];
            let body = serde_json::json!({
                "sensor": format!("t-{}", i % clients.len()),
                "reading": 20.5 + (i % 7) as f64 / 2.0,
                "unit": "C",
                "n": i,
            });
            let envelope = seal::envelope(key, info, "sensors/temperature", body);
            async move { client.submit(&envelope).await }
        }))
        .await;
        for answer in answers {
            receipts.push(answer.expect("the node accepts the message"));
        }
        sent += batch;
    }
    receipts.sort_by_key(|r| r.seq);
    receipts
}

/// `n` fresh client identities.
pub fn identities(n: usize) -> Vec<SigningKey> {
    (0..n).map(|_| seal::identity()).collect()
}
