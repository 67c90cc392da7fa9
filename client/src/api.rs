//! A typed client for the node's REST API (PROTOCOL §7).
//!
//! Every call returns [`ApiError`]: the node unreachable, an answer with a
//! problem (`code` and `detail` from the node), or an answer this client
//! cannot read.

use std::fmt;
use std::time::Duration;

use awc::http::StatusCode;
use sealchain_shared::api::{
    Block, BlockCount, BlockList, BlockSummary, ClientEntry, ClientList, ConsistencyProof, InclusionProof,
    LogInclusionProof, MessageRecord, NewClient, NodeInfo, Problem, Receipt,
};
use sealchain_shared::envelope::Envelope;
use sealchain_shared::hexbytes::HexBytes;
use sealchain_shared::tlog::TileId;
use serde::de::DeserializeOwned;

/// The raw bytes of an event stream (`GET /v1/events`), as they arrive.
pub type EventBytes = futures_util::stream::LocalBoxStream<'static, Result<Vec<u8>, String>>;

/// Largest response body read (a block of many large messages).
const MAX_RESPONSE_BYTES: usize = sealchain_shared::api::MAX_BLOCK_JSON_BYTES as usize;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No HTTP answer (connection refused, timeout, DNS).
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The node's base URL.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{status} {}: {}", .problem.code, .problem.detail)]
    Problem {
        /// HTTP status.
        status: u16,
        /// The problem object (synthesized if the body was not one).
        problem: Problem,
        /// `Retry-After` seconds, on 503.
        retry_after: Option<u64>,
    },
    /// The answer is not what the protocol says.
    #[error("unexpected answer from the node: {0}")]
    BadResponse(String),
}

impl ApiError {
    /// The problem `code`, when the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Problem { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }

    /// The HTTP status, when the node answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How a submission is retried: on `503 unavailable` and `429
/// rate_limited` (after the node's `Retry-After`) and when no answer came (a timeout, a refused or reset
/// connection: the message may have been committed anyway), with the same
/// envelope, so a message stored without its answer is answered with its
/// original receipt (PROTOCOL §4). Other answers are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Longest single wait between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before another attempt after attempt number `attempt`
    /// (1-based) failed with `error`, or `None` to give up.
    pub fn delay(&self, attempt: u32, error: &ApiError) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let wait = match error {
            ApiError::Problem {
                status: 503 | 429,
                retry_after,
                ..
            } => Duration::from_secs(retry_after.unwrap_or(1).max(1)),
            // No answer: back off 0.5 s, 1 s, 2 s, …
            ApiError::Unreachable { .. } => Duration::from_millis(500) * 2u32.saturating_pow(attempt - 1),
            _ => return None,
        };
        Some(wait.min(self.max_delay))
    }
}

/// A receipt and how many attempts it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The node's receipt.
    pub receipt: Receipt,
    /// Attempts made (1 when the first one was answered).
    pub attempts: u32,
}

/// The `Retry-After` seconds of an answer, if it has them.
fn retry_after<S>(response: &awc::ClientResponse<S>) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// How long an idle connection may wait in the pool and still be used.
/// Below the node's own keep-alive (5 s), after which it closes an idle
/// connection: the pool's other check, a read of the socket, sees that
/// close only if this thread's event loop ran since, and a client busy on
/// CPU (sealing envelopes, say) would send on the closed connection and
/// get no answer.
pub const IDLE_CONNECTION_REUSE: Duration = Duration::from_secs(4);

/// A connection to one node.
#[derive(Clone)]
pub struct NodeClient {
    base: String,
    http: awc::Client,
}

impl fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeClient").field("base", &self.base).finish()
    }
}

impl NodeClient {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`), with
    /// a per-request timeout and up to `connections` concurrent connections.
    pub fn new(base: &str, timeout: Duration, connections: usize) -> Self {
        Self::build(base, timeout, connections, None)
    }

    /// Like [`NodeClient::new`], and for `https://` also trusting the CA
    /// certificates of `ca_pem` (PEM) beside the public web roots.
    pub fn with_ca(base: &str, timeout: Duration, connections: usize, ca_pem: &[u8]) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("holds no PEM certificate".into());
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::build(base, timeout, connections, Some(std::sync::Arc::new(tls))))
    }

    fn build(
        base: &str,
        timeout: Duration,
        connections: usize,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        let mut connector = awc::Connector::new()
            .limit(connections.max(1))
            .conn_keep_alive(IDLE_CONNECTION_REUSE);
        if let Some(tls) = tls {
            connector = connector.rustls_0_23(tls);
        }
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .disable_redirects()
            .finish();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, e: impl fmt::Display) -> ApiError {
        ApiError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    /// Sends a request and returns the status and body bytes of any answer.
    async fn exchange(
        &self,
        request: awc::ClientRequest,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Option<u64>, Vec<u8>), ApiError> {
        let sent = match body {
            Some(b) => request.content_type("application/json").send_body(b).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| self.unreachable(e))?;
        let retry_after = retry_after(&response);
        let bytes = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?;
        Ok((response.status(), retry_after, bytes.to_vec()))
    }

    /// Decodes a success body as `T`, or the problem of an error answer.
    fn decode<T: DeserializeOwned>(status: StatusCode, retry_after: Option<u64>, bytes: &[u8]) -> Result<T, ApiError> {
        if status.is_success() {
            return serde_json::from_slice(bytes).map_err(|e| ApiError::BadResponse(format!("{status}: {e}")));
        }
        let problem = serde_json::from_slice::<Problem>(bytes).unwrap_or_else(|_| Problem {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: String::from_utf8_lossy(bytes).chars().take(200).collect(),
            code: format!("http_{}", status.as_u16()),
        });
        Err(ApiError::Problem {
            status: status.as_u16(),
            problem,
            retry_after,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let (status, retry, bytes) = self.exchange(self.http.get(self.url(path)), None).await?;
        Self::decode(status, retry, &bytes)
    }

    /// The body of a successful `GET` as bytes, or the problem.
    async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let (status, retry, bytes) = self.exchange(self.http.get(self.url(path)), None).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        Self::decode::<serde_json::Value>(status, retry, &bytes).map(|_| Vec::new())
    }

    /// `GET /checkpoint`: the log's newest checkpoint note, unverified.
    pub async fn checkpoint_note(&self) -> Result<Vec<u8>, ApiError> {
        self.get_bytes("/checkpoint").await
    }

    /// `GET /tile/...`: a tile or entry bundle, unverified.
    pub async fn tile(&self, id: &TileId) -> Result<Vec<u8>, ApiError> {
        self.get_bytes(&format!("/{}", id.path())).await
    }

    /// `GET /v1/log/proof/inclusion?seq=S&tree_size=N`.
    pub async fn log_inclusion(&self, seq: u64, tree_size: u64) -> Result<LogInclusionProof, ApiError> {
        self.get(&format!("/v1/log/proof/inclusion?seq={seq}&tree_size={tree_size}"))
            .await
    }

    /// `GET /v1/log/proof/consistency?from=M&to=N`.
    pub async fn log_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, ApiError> {
        self.get(&format!("/v1/log/proof/consistency?from={from}&to={to}"))
            .await
    }

    /// `GET /v1/node`.
    pub async fn node_info(&self) -> Result<NodeInfo, ApiError> {
        self.get("/v1/node").await
    }

    /// `POST /v1/messages` with an envelope; the receipt on 202.
    pub async fn submit(&self, envelope: &Envelope) -> Result<Receipt, ApiError> {
        self.submit_raw(envelope.to_json().into_bytes()).await
    }

    /// `POST /v1/messages` with any body (tests of malformed input). The
    /// receipt on `202 Accepted`, or on `200 OK` when the node had stored
    /// this very message before (a resend: the original receipt).
    pub async fn submit_raw(&self, body: Vec<u8>) -> Result<Receipt, ApiError> {
        let (status, retry, bytes) = self
            .exchange(self.http.post(self.url("/v1/messages")), Some(body))
            .await?;
        if status.is_success() && status != StatusCode::ACCEPTED && status != StatusCode::OK {
            return Err(ApiError::BadResponse(format!(
                "expected 202 Accepted or 200 OK, got {status}"
            )));
        }
        Self::decode(status, retry, &bytes)
    }

    /// Submits an envelope, retrying as `policy` says with the very same
    /// bytes. The error of the last attempt when it gives up.
    pub async fn submit_retrying(&self, body: Vec<u8>, policy: RetryPolicy) -> Result<Submitted, (ApiError, u32)> {
        let mut attempt = 1;
        loop {
            match self.submit_raw(body.clone()).await {
                Ok(receipt) => {
                    return Ok(Submitted {
                        receipt,
                        attempts: attempt,
                    });
                }
                Err(e) => match policy.delay(attempt, &e) {
                    Some(wait) => {
                        actix_rt::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err((e, attempt)),
                },
            }
        }
    }

    /// `GET /v1/messages/{seq}`.
    pub async fn message(&self, seq: u64) -> Result<MessageRecord, ApiError> {
        self.get(&format!("/v1/messages/{seq}")).await
    }

    /// `GET /v1/messages/{seq}/proof`.
    pub async fn proof(&self, seq: u64) -> Result<InclusionProof, ApiError> {
        self.get(&format!("/v1/messages/{seq}/proof")).await
    }

    /// `GET /v1/blocks/count`.
    pub async fn block_count(&self) -> Result<u64, ApiError> {
        self.get::<BlockCount>("/v1/blocks/count").await.map(|c| c.count)
    }

    /// `GET /v1/blocks/{index}`.
    pub async fn block(&self, index: u64) -> Result<Block, ApiError> {
        self.get(&format!("/v1/blocks/{index}")).await
    }

    /// `GET /v1/blocks/{index}`, the body undecoded: decode it with
    /// [`NodeClient::decode_block`] (on another thread, say).
    pub async fn block_bytes(&self, index: u64) -> Result<Vec<u8>, ApiError> {
        self.get_bytes(&format!("/v1/blocks/{index}")).await
    }

    /// Decodes the body of [`NodeClient::block_bytes`] as
    /// [`NodeClient::block`] does.
    pub fn decode_block(bytes: &[u8]) -> Result<Block, ApiError> {
        Self::decode(StatusCode::OK, None, bytes)
    }

    /// `GET /v1/blocks/head`.
    pub async fn head(&self) -> Result<Block, ApiError> {
        self.get("/v1/blocks/head").await
    }

    /// `GET /v1/blocks/hash/{hash}`.
    pub async fn block_by_hash(&self, hash: &HexBytes<32>) -> Result<Block, ApiError> {
        self.get(&format!("/v1/blocks/hash/{hash}")).await
    }

    /// `GET /v1/blocks/hash/{hash}/previous`.
    pub async fn previous(&self, hash: &HexBytes<32>) -> Result<Block, ApiError> {
        self.get(&format!("/v1/blocks/hash/{hash}/previous")).await
    }

    /// `GET /v1/blocks?from=I&limit=N`.
    pub async fn blocks_page(&self, from: u64, limit: u64) -> Result<BlockList, ApiError> {
        self.get(&format!("/v1/blocks?from={from}&limit={limit}")).await
    }

    /// The header of block `index` (`GET /v1/blocks?from=index&limit=1`),
    /// or `None` if it is not sealed.
    pub async fn block_header(&self, index: u64) -> Result<Option<BlockSummary>, ApiError> {
        let page = self.blocks_page(index, 1).await?;
        match page.blocks.into_iter().next() {
            None => Ok(None),
            Some(b) if b.index == index => Ok(Some(b)),
            Some(b) => Err(ApiError::BadResponse(format!(
                "asked for the header of block {index}, got block {}",
                b.index
            ))),
        }
    }

    /// `GET /v1/events?from=I`: the node's Server-Sent Events from block
    /// `from` on, as raw bytes (parse them with `eventsource-stream`). The
    /// stream has no deadline of its own: the node sends a comment at least
    /// every 15 s, so a reader can tell a quiet chain from a lost node.
    pub async fn events(&self, from: u64) -> Result<EventBytes, ApiError> {
        use futures_util::StreamExt;
        let request = self
            .http
            .get(self.url(&format!("/v1/events?from={from}")))
            .insert_header(("Accept", "text/event-stream"));
        let mut response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(&response);
            let bytes = response
                .body()
                .limit(64 * 1024)
                .await
                .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?;
            return Err(match Self::decode::<serde_json::Value>(status, retry_after, &bytes) {
                Err(e) => e,
                Ok(_) => ApiError::BadResponse(format!("{status} instead of an event stream")),
            });
        }
        Ok(response
            .map(|chunk| chunk.map(|b| b.to_vec()).map_err(|e| e.to_string()))
            .boxed_local())
    }

    /// `GET` of any path, decoded as `T` (for paths not wrapped above).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.get(path).await
    }

    /// `POST /v1/clients` (admin).
    pub async fn add_client(&self, token: &str, client_id: [u8; 32]) -> Result<ClientEntry, ApiError> {
        let body = serde_json::to_vec(&NewClient {
            client_id: HexBytes(client_id),
        })
        .map_err(|e| ApiError::BadResponse(e.to_string()))?;
        let request = self.http.post(self.url("/v1/clients")).bearer_auth(token);
        let (status, retry, bytes) = self.exchange(request, Some(body)).await?;
        Self::decode(status, retry, &bytes)
    }

    /// `GET /v1/clients` (admin).
    pub async fn list_clients(&self, token: &str) -> Result<ClientList, ApiError> {
        let request = self.http.get(self.url("/v1/clients")).bearer_auth(token);
        let (status, retry, bytes) = self.exchange(request, None).await?;
        Self::decode(status, retry, &bytes)
    }

    /// `DELETE /v1/clients/{key}` (admin).
    pub async fn remove_client(&self, token: &str, client_id: [u8; 32]) -> Result<(), ApiError> {
        let request = self
            .http
            .delete(self.url(&format!("/v1/clients/{}", hex::encode(client_id))))
            .bearer_auth(token);
        let (status, retry, bytes) = self.exchange(request, None).await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(status, retry, &bytes).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(retry_after: Option<u64>) -> ApiError {
        ApiError::Problem {
            status: 503,
            problem: Problem {
                type_: "about:blank".into(),
                title: "Service Unavailable".into(),
                status: 503,
                detail: String::new(),
                code: "unavailable".into(),
            },
            retry_after,
        }
    }

    #[test]
    fn unavailable_and_unanswered_are_retried_within_bounds() {
        let p = RetryPolicy {
            attempts: 4,
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(p.delay(1, &unavailable(Some(2))), Some(Duration::from_secs(2)));
        let limited = match unavailable(Some(3)) {
            ApiError::Problem {
                problem, retry_after, ..
            } => ApiError::Problem {
                status: 429,
                problem,
                retry_after,
            },
            other => other,
        };
        assert_eq!(p.delay(1, &limited), Some(Duration::from_secs(3)));
        assert_eq!(p.delay(1, &unavailable(None)), Some(Duration::from_secs(1)));
        assert_eq!(
            p.delay(1, &unavailable(Some(0))),
            Some(Duration::from_secs(1)),
            "never a busy loop"
        );
        assert_eq!(
            p.delay(2, &unavailable(Some(3600))),
            Some(Duration::from_secs(5)),
            "capped"
        );
        let gone = ApiError::Unreachable {
            url: "http://x".into(),
            reason: "timeout".into(),
        };
        assert_eq!(p.delay(1, &gone), Some(Duration::from_millis(500)));
        assert_eq!(p.delay(3, &gone), Some(Duration::from_secs(2)));
        assert_eq!(p.delay(4, &gone), None, "4 attempts in all");
        assert_eq!(p.delay(4, &unavailable(None)), None);
    }

    #[test]
    fn final_answers_are_not_retried() {
        let p = RetryPolicy::default();
        let duplicate = ApiError::Problem {
            status: 409,
            problem: Problem {
                type_: "about:blank".into(),
                title: "Conflict".into(),
                status: 409,
                detail: String::new(),
                code: "duplicate".into(),
            },
            retry_after: None,
        };
        assert_eq!(p.delay(1, &duplicate), None);
        assert_eq!(p.delay(1, &ApiError::BadResponse("x".into())), None);
        let no_retries = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(no_retries.delay(1, &unavailable(None)), None);
    }
}
