//! The explorer's pages as HTML, without a browser: what a reader without
//! JavaScript sees, the search box's answers, the 404 pages, the embedded
//! assets, and the index plans that keep its pages fast on a big chain.
//! (The checks its script runs are in `browser.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use sealchain_shared::api::Receipt;
use sealchain_shared::{VerifyingKey, receipt};
use sealchain_tests::{NodeOptions, TestDb, TestNode, fill};

/// Status, headers and body of a GET, without following redirects.
struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    csp: Option<String>,
    cache: Option<String>,
    body: String,
}

async fn get(base: &str, path: &str, accept: &str) -> Answer {
    let client = awc::Client::builder().disable_redirects().finish();
    let mut response = client
        .get(format!("{base}{path}"))
        .insert_header(("Accept", accept))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, location, csp, cache) = (
        header("content-type").unwrap_or_default(),
        header("location"),
        header("content-security-policy"),
        header("cache-control"),
    );
    let body = response.body().limit(16 << 20).await.unwrap();
    Answer {
        status: response.status().as_u16(),
        content_type,
        location,
        csp,
        cache,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

async fn page(base: &str, path: &str) -> String {
    let answer = get(base, path, HTML).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    assert_eq!(answer.content_type, "text/html; charset=utf-8", "{path}");
    let csp = answer.csp.unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{path}: {csp}"
    );
    answer.body
}

/// The text between `start` and the next `end`, after `start`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?} in the page")) + start.len();
    let to = text[from..].find(end).unwrap() + from;
    &text[from..to]
}

/// HTML text back to what it says (askama escapes these five).
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[actix_rt::test]
async fn every_page_reads_without_javascript() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 5)).await;
    let clients = fill::identities(3);
    let receipts = fill::send(&node.client, &node.info, &clients, 13).await;
    let key = node.info.signing_key.to_string();

    let overview = page(&node.base, "/").await;
    for needle in [
        key.as_str(),
        &node.info.encryption_key.to_string(),
        &node.info.origin,
        &node.info.verifier_key,
        "<dd data-live=\"blocks\">2</dd>",
        "<dd data-live=\"messages\">13</dd>",
        "5 messages",
        "Latest checkpoint",
        "msg/s",
    ] {
        assert!(overview.contains(needle), "the overview lacks {needle:?}");
    }
    assert!(overview.contains(&format!("<meta name=\"sealchain-node-key\" content=\"{key}\">")));
    assert!(overview.contains("<noscript>"), "says what needs JavaScript");

    // Newest first, with links to each block.
    let blocks = page(&node.base, "/blocks").await;
    let (one, zero) = (
        blocks.find("href=\"/blocks/1\"").unwrap(),
        blocks.find("href=\"/blocks/0\"").unwrap(),
    );
    assert!(one < zero, "block 1 is listed before block 0");
    let older = page(&node.base, "/blocks?from=0&limit=1").await;
    assert!(older.contains("href=\"/blocks/0\"") && !older.contains("href=\"/blocks/1\">1<"));
    assert!(
        older.contains("href=\"/blocks?from=1&amp;limit=1\""),
        "a link to newer blocks"
    );

    // A block: every header field, its messages with topic and pretty body.
    let block = node.client.block(1).await.unwrap();
    let html = page(&node.base, "/blocks/1").await;
    for field in [
        block.summary.hash.to_string(),
        block.summary.prev_hash.to_string(),
        block.summary.merkle_root.to_string(),
        block.summary.signer.to_string(),
        block.summary.signature.to_string(),
        block.summary.sealed_at.to_string(),
    ] {
        assert!(html.contains(&field), "block 1 lacks {field}");
    }
    assert!(html.contains("href=\"/blocks/0\"") && !html.contains("href=\"/blocks/2\""));
    for m in &block.messages {
        assert!(html.contains(&format!("href=\"/messages/{}\"", m.seq)));
        assert!(html.contains(&format!("href=\"/senders/{}\"", m.sender)));
    }
    assert!(html.contains("sensors/temperature"));
    assert!(
        html.contains("  &#34;unit&#34;: &#34;C&#34;"),
        "bodies are pretty-printed"
    );

    // A message: the receipt the node signed, which verifies.
    let seq = receipts[7].seq;
    let html = page(&node.base, &format!("/messages/{seq}")).await;
    let shown: Receipt =
        serde_json::from_str(&unescape(between(&html, "<pre class=\"json\" data-receipt>", "</pre>"))).unwrap();
    assert_eq!(shown, receipts[7], "the page shows the original receipt");
    let node_key = VerifyingKey::from_bytes(&node.info.signing_key.0).unwrap();
    let signature = sealchain_shared::Signature::from_bytes(&shown.signature.0);
    assert!(receipt::verify(
        &node_key,
        shown.seq,
        &shown.leaf_hash.0,
        shown.received_at,
        &signature
    ));
    assert!(html.contains(&format!("href=\"/v1/messages/{seq}/proof\"")));
    assert!(html.contains(&format!("href=\"/v1/log/proof/inclusion?seq={seq}\"")));
    // A message of the open block says so.
    let open = page(&node.base, "/messages/12").await;
    assert!(open.contains("Block 2 is still open"), "{open}");

    // A sender: only its own messages, newest first.
    let sender = hex::encode(clients[1].verifying_key().to_bytes());
    let mut mine = Vec::new();
    for seq in 0..13 {
        if node.client.message(seq).await.unwrap().sender.to_string() == sender {
            mine.push(seq);
        }
    }
    let html = page(&node.base, &format!("/senders/{sender}")).await;
    let link = "<td><a href=\"/messages/";
    let shown: Vec<u64> = html
        .match_indices(link)
        .map(|(i, _)| html[i + link.len()..].split('"').next().unwrap().parse().unwrap())
        .collect();
    let newest_first: Vec<u64> = mine.iter().rev().copied().collect();
    assert_eq!(shown, newest_first);
    assert!(html.contains(&format!("<dd>{}</dd>", mine.len())), "the count");
    node.stop().await;
}

/// Asserts that searching `q` leads to `to` (303 See Other).
async fn redirects(base: &str, q: &str, to: &str) {
    let a = get(base, &format!("/search?q={q}"), HTML).await;
    assert_eq!(
        (a.status, a.location.as_deref()),
        (303, Some(to)),
        "search {q}: {}",
        a.body
    );
}

#[actix_rt::test]
async fn search_finds_each_kind_and_explains_a_miss() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 4)).await;
    let clients = fill::identities(2);
    let receipts = fill::send(&node.client, &node.info, &clients, 10).await;
    let block = node.client.block(1).await.unwrap();
    let sender = hex::encode(clients[0].verifying_key().to_bytes());
    redirects(&node.base, &block.summary.hash.to_string(), "/blocks/1").await;
    redirects(&node.base, &block.summary.hash.to_string().to_uppercase(), "/blocks/1").await;
    redirects(&node.base, &format!("0x{}", block.summary.hash), "/blocks/1").await;
    redirects(&node.base, &receipts[6].leaf_hash.to_string(), "/messages/6").await;
    redirects(&node.base, &sender, &format!("/senders/{sender}")).await;
    redirects(&node.base, "block%201", "/blocks/1").await;
    redirects(&node.base, "%231", "/blocks/1").await;
    redirects(&node.base, "seq%209", "/messages/9").await;
    // 9 is a seq but no block: one match.
    redirects(&node.base, "9", "/messages/9").await;

    // 1 is both a block and a seq: both are offered.
    let a = get(&node.base, "/search?q=1", HTML).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("href=\"/blocks/1\"") && a.body.contains("href=\"/messages/1\""));

    let miss = get(&node.base, &format!("/search?q={}", "ab".repeat(32)), HTML).await;
    assert_eq!(miss.status, 404);
    assert!(miss.body.contains("Nothing on this chain matches"), "{}", miss.body);
    assert!(miss.body.contains("64 hex digits"), "says what can be searched");
    assert_eq!(get(&node.base, "/search?q=block%2099", HTML).await.status, 404);
    let junk = get(&node.base, "/search?q=hello", HTML).await;
    assert_eq!(junk.status, 400);
    assert!(junk.body.contains("is not a number or a 64-digit hex hash or key"));
    let short = get(&node.base, "/search?q=abcdef", HTML).await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("has 6 hex digits"));
    let empty = get(&node.base, "/search", HTML).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("<label for=\"q2\">"), "the search form, labelled");
    node.stop().await;
}

#[actix_rt::test]
async fn unknown_pages_are_html_and_the_api_keeps_problem_json() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 4)).await;
    fill::send(&node.client, &node.info, &fill::identities(1), 6).await;
    let html_404 = |path: &'static str, status: u16, says: &'static str| {
        let base = node.base.clone();
        async move {
            // Explorer paths answer HTML whatever the client accepts.
            for accept in [HTML, "*/*"] {
                let a = get(&base, path, accept).await;
                assert_eq!(a.status, status, "{path}: {}", a.body);
                assert_eq!(a.content_type, "text/html; charset=utf-8", "{path}");
                assert!(a.body.contains(says), "{path} does not say {says:?}: {}", a.body);
                assert!(a.body.contains("action=\"/search\""), "{path} offers the search box");
            }
        }
    };
    html_404("/blocks/7", 404, "The chain has 1 sealed blocks").await;
    html_404("/blocks/1", 404, "Block 1 is still open: it holds 2 of its 4 messages").await;
    html_404("/blocks/abc", 400, "is not a block index").await;
    html_404("/blocks/99999999999999999999", 400, "is not a block index").await;
    html_404("/messages/6", 404, "The node has stored 6 messages").await;
    html_404("/senders/xyz", 400, "64 hex digits").await;
    html_404("/blocks?limit=0", 400, "Show 1 to 200 blocks").await;
    html_404("/blocks?from=x", 400, "must be a number").await;
    html_404("/assets/nope.js", 404, "no file named").await;
    let nobody = format!("/senders/{}", "cd".repeat(32));
    let a = get(&node.base, &nobody, HTML).await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("No messages from this sender"));

    // Elsewhere a browser gets the HTML page, any other client problem+json.
    let a = get(&node.base, "/no/such/page", HTML).await;
    assert_eq!((a.status, a.content_type.as_str()), (404, "text/html; charset=utf-8"));
    assert!(a.body.contains("There is no page at /no/such/page"));
    let a = get(&node.base, "/no/such/page", "application/json").await;
    assert_eq!((a.status, a.content_type.as_str()), (404, "application/problem+json"));
    // The API's paths never answer HTML.
    for path in ["/v1/nope", "/v1/blocks/7", "/tile/nope", "/v1/blocks/abc"] {
        let a = get(&node.base, path, HTML).await;
        assert_eq!(a.content_type, "application/problem+json", "{path}");
    }
    node.stop().await;
}

#[actix_rt::test]
async fn assets_are_embedded_and_cached_by_version() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default()).await;
    let overview = page(&node.base, "/").await;
    for (name, kind) in [
        ("explorer.css", "text/css; charset=utf-8"),
        ("explorer.js", "text/javascript; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let url = format!(
            "/assets/{name}?v={}",
            between(&overview, &format!("/assets/{name}?v="), "\"")
        );
        let a = get(&node.base, &url, "*/*").await;
        assert_eq!((a.status, a.content_type.as_str()), (200, kind), "{url}");
        assert_eq!(a.cache.as_deref(), Some("public, max-age=31536000, immutable"), "{url}");
        assert!(!a.body.is_empty());
        // Another version may not be cached: it is not this file.
        let stale = get(&node.base, &format!("/assets/{name}?v=0000"), "*/*").await;
        assert_eq!(stale.cache.as_deref(), Some("no-cache"));
    }
    // No page loads anything from elsewhere.
    assert!(!overview.contains("http://") && !overview.contains("https://") && !overview.contains("//cdn"));
    node.stop().await;
}

/// The explorer's queries (node/src/explorer/queries.rs) have plans that
/// read an index in order: no sequential scan, no sort, whatever the size of
/// the chain. (On a table this small Postgres prefers scans and sorts, so
/// they are priced out here; it still picks them when no index fits, so what
/// remains shows that an index exists and fits.)
#[actix_rt::test]
async fn explorer_queries_read_indexes_in_order() {
    let db = TestDb::new();
    let node = TestNode::spawn(&db, NodeOptions::default().arg("--block-size", 2)).await;
    let clients = fill::identities(2);
    let receipts = fill::send(&node.client, &node.info, &clients, 6).await;
    let sender = hex::encode(clients[0].verifying_key().to_bytes());
    // How the queries name a sender: by the number of its key.
    let number = format!("(SELECT id FROM senders WHERE key = '\\x{sender}')");
    let leaf = receipts[3].leaf_hash.to_string();
    let mut conn = db.connect();
    for setting in ["enable_seqscan", "enable_bitmapscan", "enable_sort"] {
        diesel::sql_query(format!("SET {setting} = off"))
            .execute(&mut conn)
            .unwrap();
    }
    for (sql, index) in [
        // A page of a sender's messages, newest first.
        (
            format!(
                "SELECT m.*, (SELECT key FROM senders WHERE id = m.sender_id) FROM messages m \
                 WHERE m.sender_id = {number} AND m.seq < 9223372036854775807 ORDER BY m.seq DESC LIMIT 51"
            ),
            "messages_sender_seq",
        ),
        // The capped count of a sender's messages.
        (
            format!("SELECT seq FROM messages WHERE sender_id = {number} ORDER BY sender_id, seq LIMIT 10001"),
            "messages_sender_seq",
        ),
        // A sender's first message.
        (
            format!("SELECT seq, received_at FROM messages WHERE sender_id = {number} ORDER BY seq ASC LIMIT 1"),
            "messages_sender_seq",
        ),
        // A block's messages, each with its sender's key: one primary key
        // probe per message, never a scan of every sender.
        (
            "SELECT m.*, (SELECT key FROM senders WHERE id = m.sender_id) FROM messages m \
             WHERE m.seq >= 0 AND m.seq < 2 ORDER BY m.seq"
                .to_owned(),
            "senders_pkey",
        ),
        // A sender's number, the subquery of the three above.
        (
            format!("SELECT id FROM senders WHERE key = '\\x{sender}'"),
            "senders_key_key",
        ),
        // Search by leaf hash.
        (
            format!("SELECT seq FROM messages WHERE leaf_hash = '\\x{leaf}' LIMIT 1"),
            "messages_leaf_hash",
        ),
        // Blocks, newest first.
        (
            "SELECT * FROM blocks WHERE idx <= 9223372036854775807 ORDER BY idx DESC LIMIT 25".to_owned(),
            "blocks_pkey",
        ),
        // The checkpoint of a minute ago.
        (
            "SELECT * FROM checkpoints WHERE published_at <= 0 ORDER BY tree_size DESC LIMIT 1".to_owned(),
            "checkpoints_pkey",
        ),
    ] {
        let plan = sealchain_tests::db::explain(&mut conn, &sql);
        let reads = |line: &str| line.contains("Index") && line.contains(&format!(" using {index} "));
        assert!(plan.lines().any(reads), "{sql} does not read {index}:\n{plan}");
        assert!(!plan.contains("Seq Scan") && !plan.contains("Sort"), "{sql}\n{plan}");
    }
    // Equality is all the search asks, so its index is a hash index.
    let method: AccessMethod = diesel::sql_query(
        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'messages_leaf_hash'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(method.amname, "hash");
    node.stop().await;
}

#[derive(diesel::QueryableByName)]
struct AccessMethod {
    #[diesel(sql_type = Text)]
    amname: String,
}
