//! The explorer's style sheet, script and icon, compiled into the binary.
//! Pages link them with the first 16 hex digits of their SHA-256 as `?v=`,
//! so browsers may keep them for a year and still never run an old script
//! against a new page.

use std::sync::LazyLock;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use super::PageError;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/assets/`.
    pub name: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// `/assets/<name>?v=<digest>`.
    pub url: String,
    version: String,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        let version = hex::encode(&Sha256::digest(body)[..8]);
        Self {
            name,
            content_type,
            body,
            url: format!("/assets/{name}?v={version}"),
            version,
        }
    }
}

/// Every asset.
pub static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        Asset::new(
            "explorer.css",
            "text/css; charset=utf-8",
            include_bytes!("assets/explorer.css"),
        ),
        Asset::new(
            "explorer.js",
            "text/javascript; charset=utf-8",
            include_bytes!("assets/explorer.js"),
        ),
        Asset::new("icon.svg", "image/svg+xml", include_bytes!("assets/icon.svg")),
    ]
});

/// The URL of an asset by name (a constant of this module's list).
pub fn url(name: &str) -> &'static str {
    ASSETS.iter().find(|a| a.name == name).map_or("", |a| a.url.as_str())
}

/// Query of an asset request.
#[derive(Debug, serde::Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

/// `GET /assets/{name}`.
pub async fn asset(name: web::Path<String>, query: web::Query<AssetQuery>) -> Result<HttpResponse, PageError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name.as_str())
        .ok_or_else(|| PageError::not_found("No such file", format!("The explorer has no file named {name:?}.")))?;
    // Only the current version may be kept for long.
    let cache = if query.v.as_deref() == Some(asset.version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, asset.content_type))
        .insert_header((CACHE_CONTROL, cache))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(asset.body))
}
