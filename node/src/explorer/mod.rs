//! The block explorer, served by the node at `/`.
//!
//! Server-rendered HTML (askama templates in `templates/`), readable with
//! JavaScript off. The one script (`assets/explorer.js`) adds what a page
//! cannot say about itself: on block and message pages it fetches the raw
//! objects from the JSON API and recomputes every hash and signature with
//! WebCrypto, against the node key pinned in the page (and in the browser on
//! first visit); on the overview it follows `GET /v1/events`. Style sheet,
//! script and icon are compiled into the binary ([`assets`]).
//!
//! | path | page |
//! | --- | --- |
//! | `/` | overview: node keys, origin, counts, latest checkpoint, ingest rate, newest blocks (live) |
//! | `/blocks?from=I` | blocks, newest first, 25 a page starting at index `I` |
//! | `/blocks/{index}` | one block: header, messages, checks |
//! | `/messages/{seq}` | one message: receipt, body, proofs, checks |
//! | `/senders/{key}?before=S` | a sender's messages, newest first |
//! | `/search?q=` | block index, seq, block hash, leaf hash or sender key |
//!
//! Unknown pages get an HTML 404; the JSON API's paths keep their
//! problem+json answers ([`wants_html`]).

pub mod assets;
mod format;
mod pages;
mod queries;
mod search;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::db::StoreError;
use crate::state::AppState;

/// Registers the explorer's pages and assets.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::overview))
        .route("/blocks", web::get().to(pages::blocks))
        .route("/blocks/{index}", web::get().to(pages::block))
        .route("/messages/{seq}", web::get().to(pages::message))
        .route("/senders/{key}", web::get().to(pages::sender))
        .route("/search", web::get().to(search::search))
        .route("/assets/{name}", web::get().to(assets::asset));
}

/// Paths of the JSON API and the log: never answered with HTML.
const API_PREFIXES: &[&str] = &[
    "/v1",
    "/tile",
    "/checkpoint",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
];
/// Paths of the explorer: always answered with HTML.
const PAGE_PREFIXES: &[&str] = &["/blocks", "/messages", "/senders", "/search", "/assets"];

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether an unknown route is answered with the explorer's 404 page:
/// always under the explorer's paths, never under the API's, and elsewhere
/// when the client asks for HTML (a browser), else problem+json.
pub fn wants_html(req: &HttpRequest) -> bool {
    let path = req.path();
    if API_PREFIXES.iter().any(|p| under(path, p)) {
        return false;
    }
    if PAGE_PREFIXES.iter().any(|p| under(path, p)) {
        return true;
    }
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The explorer's answer to an unknown page.
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    PageError::not_found(
        "Page not found",
        format!(
            "There is no page at {}. Search for a block, a message or a sender below.",
            req.path()
        ),
    )
    .error_response()
}

/// What every page's layout needs.
#[derive(Debug, Clone)]
pub struct Page {
    /// `<title>` and `<h1>`.
    pub title: String,
    /// Which navigation entry is current (`overview`, `blocks`, or none).
    pub nav: &'static str,
    /// The search box's text.
    pub query: String,
    /// The node's signing key, hex: what the page's checks verify against.
    pub node_key: Option<String>,
    /// The log's origin (checkpoint key name).
    pub origin: Option<String>,
    /// Messages per block.
    pub block_size: u32,
    /// Style sheet URL.
    pub css: &'static str,
    /// Script URL.
    pub js: &'static str,
    /// Icon URL.
    pub icon: &'static str,
}

impl Page {
    /// A page of this node.
    pub fn new(state: &AppState, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            node_key: Some(hex::encode(state.verifying_key.to_bytes())),
            origin: Some(state.log.name().to_owned()),
            block_size: state.block_size,
            nav,
            ..Self::bare(title)
        }
    }

    /// A page without the node's details (error pages).
    pub fn bare(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            nav: "",
            query: String::new(),
            node_key: None,
            origin: None,
            block_size: 0,
            css: assets::url("explorer.css"),
            js: assets::url("explorer.js"),
            icon: assets::url("icon.svg"),
        }
    }

    /// The same page with the search box filled in.
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = query.to_owned();
        self
    }
}

/// An HTML answer with the explorer's headers: no inline script or style
/// may run (everything is in `/assets/`), no framing, no referrer.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// Renders a template as a `200 OK` page.
pub fn render(template: &impl Template) -> Result<HttpResponse, PageError> {
    let body = template
        .render()
        .map_err(|e| PageError::Internal(anyhow::anyhow!("rendering a page: {e}")))?;
    Ok(html(StatusCode::OK, body))
}

/// Why a page cannot be shown; answered with an HTML page that says so.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// 404: no such block, message, sender or page.
    #[error("{title}: {detail}")]
    NotFound {
        /// Headline.
        title: String,
        /// What to do instead.
        detail: String,
    },
    /// 400: a path or query that means nothing.
    #[error("{title}: {detail}")]
    BadRequest {
        /// Headline.
        title: String,
        /// What was expected.
        detail: String,
    },
    /// 503: the database does not answer now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug (details only in the log).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl PageError {
    /// A 404 page.
    pub fn not_found(title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::NotFound {
            title: title.into(),
            detail: detail.into(),
        }
    }

    /// A 400 page.
    pub fn bad_request(title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            title: title.into(),
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::NotFound => Self::not_found("Not found", "The chain has no such entry."),
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    status: u16,
    detail: String,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, detail) = match self {
            Self::NotFound { title, detail } | Self::BadRequest { title, detail } => (title.clone(), detail.clone()),
            Self::Unavailable(detail) => {
                tracing::warn!(detail, "explorer page answered 503");
                (
                    "The node's database does not answer".to_owned(),
                    "The page cannot be read right now; try again in a moment.".to_owned(),
                )
            }
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "explorer page failed");
                (
                    "Something went wrong".to_owned(),
                    "The node could not show this page; its log says why.".to_owned(),
                )
            }
        };
        let status = self.status_code();
        let page = ErrorPage {
            page: Page::bare(title),
            status: status.as_u16(),
            detail,
        };
        let mut response = match page.render() {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(error = %e, "rendering the error page failed");
                HttpResponse::build(status).body(self.to_string())
            }
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(crate::error::RETRY_AFTER_SECS));
        }
        response
    }
}
