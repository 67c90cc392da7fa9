//! `GET /search?q=`: a block index, a seq, a block hash, a leaf hash or a
//! sender key. One match redirects to its page; several (a number that is
//! both a block and a seq, a hash that is both…) are listed; none is
//! answered with a page that says what can be searched.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Page, PageError, html, queries};
use crate::db::{self, repo};
use crate::state::AppState;

/// What a search text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// Nothing: show the search page.
    Nothing,
    /// A block index, a seq, or both.
    Number {
        /// The number.
        n: u64,
        /// Look for a block with this index.
        block: bool,
        /// Look for a message with this seq.
        message: bool,
    },
    /// A block hash, a leaf hash or a sender key.
    Hash([u8; 32]),
}

/// Reads a search text: `12`, `block 12`, `#12`, `seq 12`, `message 12`,
/// 64 hex digits (any case, an optional `0x`). Anything else is explained.
pub(crate) fn parse(q: &str) -> Result<Wanted, String> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Wanted::Nothing);
    }
    let lower = q.to_ascii_lowercase();
    let (rest, block, message) = if let Some(rest) = lower.strip_prefix("block") {
        (rest, true, false)
    } else if let Some(rest) = lower.strip_prefix('#') {
        (rest, true, false)
    } else if let Some(rest) = lower.strip_prefix("message") {
        (rest, false, true)
    } else if let Some(rest) = lower.strip_prefix("seq") {
        (rest, false, true)
    } else {
        (lower.as_str(), true, true)
    };
    let rest = rest.trim();
    if !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()) {
        return rest
            .parse()
            .map(|n| Wanted::Number { n, block, message })
            .map_err(|_| format!("{rest} is larger than any block index or seq can be."));
    }
    let hex = rest.strip_prefix("0x").unwrap_or(rest);
    if block && message && hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return sealchain_shared::hexbytes::decode_hex::<32>(hex)
            .map(Wanted::Hash)
            .map_err(|e| e.to_string());
    }
    if block && message && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{q:?} has {} hex digits; block hashes, leaf hashes and sender keys have 64.",
            hex.len()
        ));
    }
    Err(format!("{q:?} is not a number or a 64-digit hex hash or key."))
}

/// One thing that matched.
#[derive(Debug, Clone)]
struct Hit {
    kind: &'static str,
    label: String,
    href: String,
}

/// The search page: the form, the matches, or why there are none.
#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: Page,
    query: String,
    hits: Vec<Hit>,
    problem: Option<String>,
}

/// Query of `/search`.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
}

pub(crate) async fn search(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    let q = query.q.clone().unwrap_or_default();
    let page = |problem: Option<String>, hits: Vec<Hit>, status: StatusCode| {
        let title = if q.trim().is_empty() {
            "Search".to_owned()
        } else {
            format!("Search: {}", q.trim())
        };
        SearchPage {
            page: Page::new(&state, title, "").with_query(q.trim()),
            query: q.trim().to_owned(),
            hits,
            problem,
        }
        .render()
        .map(|body| html(status, body))
        .map_err(|e| PageError::Internal(anyhow::anyhow!("rendering a page: {e}")))
    };
    let wanted = match parse(&q) {
        Ok(w) => w,
        Err(problem) => return page(Some(problem), Vec::new(), StatusCode::BAD_REQUEST),
    };
    let hits = match wanted {
        Wanted::Nothing => return page(None, Vec::new(), StatusCode::OK),
        Wanted::Number { n, block, message } => {
            let key = i64::try_from(n).unwrap_or(i64::MAX);
            let chain = db::run(&state.pool, |conn| Ok(repo::chain_state(conn)?)).await?;
            let mut hits = Vec::new();
            if block && key < chain.block_count {
                hits.push(Hit {
                    kind: "Block",
                    label: format!("Block {n}"),
                    href: format!("/blocks/{n}"),
                });
            }
            if message && key < chain.next_seq {
                hits.push(Hit {
                    kind: "Message",
                    label: format!("Message with seq {n}"),
                    href: format!("/messages/{n}"),
                });
            }
            hits
        }
        Wanted::Hash(h) => {
            let (block, seq, sender) = db::run(&state.pool, move |conn| {
                Ok((
                    repo::block_by_hash(conn, &h)?.map(|b| b.idx),
                    queries::seq_by_leaf_hash(conn, &h)?,
                    queries::sender_exists(conn, &h)?,
                ))
            })
            .await?;
            let hex = hex::encode(h);
            let mut hits = Vec::new();
            if let Some(index) = block {
                hits.push(Hit {
                    kind: "Block",
                    label: format!("Block {index}, by its hash"),
                    href: format!("/blocks/{index}"),
                });
            }
            if let Some(seq) = seq {
                hits.push(Hit {
                    kind: "Message",
                    label: format!("Message {seq}, by its leaf hash"),
                    href: format!("/messages/{seq}"),
                });
            }
            if sender {
                hits.push(Hit {
                    kind: "Sender",
                    label: "The messages of this sender key".into(),
                    href: format!("/senders/{hex}"),
                });
            }
            hits
        }
    };
    match hits.as_slice() {
        [] => page(
            Some(format!("Nothing on this chain matches {:?}.", q.trim())),
            hits,
            StatusCode::NOT_FOUND,
        ),
        [one] => Ok(HttpResponse::SeeOther()
            .insert_header((LOCATION, one.href.clone()))
            .finish()),
        _ => page(None, hits, StatusCode::OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_hashes_and_prefixes() {
        assert_eq!(parse("  "), Ok(Wanted::Nothing));
        let both = |n| Wanted::Number {
            n,
            block: true,
            message: true,
        };
        assert_eq!(parse("12"), Ok(both(12)));
        assert_eq!(
            parse("Block 7"),
            Ok(Wanted::Number {
                n: 7,
                block: true,
                message: false
            })
        );
        assert_eq!(parse("#7"), parse("block 7"));
        assert_eq!(
            parse("seq 9"),
            Ok(Wanted::Number {
                n: 9,
                block: false,
                message: true
            })
        );
        assert_eq!(parse("message 9"), parse("seq 9"));
        let hash = "AB".repeat(32);
        assert_eq!(parse(&hash), Ok(Wanted::Hash([0xab; 32])));
        assert_eq!(parse(&format!("0x{}", "cd".repeat(32))), Ok(Wanted::Hash([0xcd; 32])));
        assert!(parse("abc123").unwrap_err().contains("6 hex digits"));
        assert!(parse("99999999999999999999999").unwrap_err().contains("larger"));
        assert!(parse("hello world").unwrap_err().contains("not a number"));
        assert!(parse("block abc").is_err());
    }
}
