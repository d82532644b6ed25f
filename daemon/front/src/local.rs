//! A client of the front's local API, for the `lethe` command line
//! (`lethe status`): one HTTP/1.1 request over the Unix socket.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::Duration;

/// Why the local API did not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// No daemon at that socket (or no permission to reach it).
    #[error("cannot reach lethe serve at {path}: {why} (is the daemon running? see `systemctl status lethe`)")]
    Connect {
        /// The socket.
        path: String,
        /// Why.
        why: String,
    },
    /// The HTTP exchange failed.
    #[error("local API: {0}")]
    Http(String),
    /// No answer in time.
    #[error("local API: no answer within {0:?}")]
    Timeout(Duration),
}

/// An answer: its status and JSON body (or text, for `/metrics`).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, LocalError> {
        serde_json::from_slice(&self.body).map_err(|e| LocalError::Http(e.to_string()))
    }

    /// The API's error message, if the answer is an error.
    pub fn error_message(&self) -> Option<String> {
        if self.status.is_success() {
            return None;
        }
        let v = self.json().ok()?;
        v["error"]["message"].as_str().map(str::to_string)
    }
}

/// `method path` with an optional JSON body, on the local API at `socket`.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Answer, LocalError> {
    let go = async {
        let stream =
            tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| LocalError::Connect {
                    path: socket.display().to_string(),
                    why: e.to_string(),
                })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| LocalError::Http(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| LocalError::Http(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| LocalError::Http(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| LocalError::Http(e.to_string()))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Answer { status, body })
    };
    let limit = Duration::from_secs(30);
    tokio::time::timeout(limit, go)
        .await
        .map_err(|_| LocalError::Timeout(limit))?
}

/// A blocking `GET`, for a command-line process without a runtime.
pub fn get_blocking(socket: &Path, path: &str) -> Result<Answer, LocalError> {
    block_on(request(socket, Method::GET, path, None))
}

/// A blocking `POST` with a JSON body.
pub fn post_blocking(
    socket: &Path,
    path: &str,
    body: serde_json::Value,
) -> Result<Answer, LocalError> {
    block_on(request(socket, Method::POST, path, Some(body)))
}

fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, LocalError>>,
) -> Result<T, LocalError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LocalError::Http(format!("starting a runtime: {e}")))?
        .block_on(f)
}
