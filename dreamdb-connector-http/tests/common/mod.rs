//! Shared test helpers: the radosgw location from the environment, unique
//! prefixes, a fault-injecting TCP proxy and a scripted fake S3 server (all
//! on 127.0.0.1).
#![allow(dead_code)]
// Test support code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dreamdb_connector_http::{HttpConfig, IfMatchForm, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `DREAMDB_TEST_S3_URL` (`http://127.0.0.1:PORT/bucket`). Fails (does not
/// skip) when it is missing.
pub fn s3_url() -> String {
    match std::env::var("DREAMDB_TEST_S3_URL") {
        Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
        _ => panic!(
            "DREAMDB_TEST_S3_URL is not set: these tests need a real S3 server. Run \
             `scripts/s3-server start` and `eval \"$(scripts/s3-server env)\"` first \
             (that also sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION)"
        ),
    }
}

/// The secret in the environment (for assertions that it never leaks).
pub fn secret() -> String {
    std::env::var("AWS_SECRET_ACCESS_KEY")
        .expect("AWS_SECRET_ACCESS_KEY is not set: eval \"$(scripts/s3-server env)\"")
}

/// A fresh prefix, unique per test and run.
pub fn unique_prefix(test: &str) -> String {
    format!("test-{test}-{:016x}", rand::random::<u64>())
}

/// `<s3_url>/<unique prefix>`.
pub fn prefixed_url(test: &str) -> String {
    format!("{}/{}", s3_url(), unique_prefix(test))
}

/// The config for a unique prefix on the real server.
pub fn config(test: &str) -> HttpConfig {
    HttpConfig::from_url(&prefixed_url(test)).expect("valid DREAMDB_TEST_S3_URL")
}

/// The real server's `host:port`.
pub fn upstream_addr() -> String {
    let url = s3_url();
    let rest = url
        .strip_prefix("http://")
        .expect("DREAMDB_TEST_S3_URL is http://");
    rest.split('/').next().unwrap().to_owned()
}

/// The bucket of `DREAMDB_TEST_S3_URL`.
pub fn bucket() -> String {
    HttpConfig::from_url(&s3_url()).unwrap().bucket
}

/// A config pointing at `127.0.0.1:port` (a proxy or fake) for `bucket/prefix`,
/// probe skipped (radosgw's form), fast retries.
pub fn config_via(port: u16, prefix: &str, retry: RetryPolicy) -> HttpConfig {
    HttpConfig::from_url(&format!("http://127.0.0.1:{port}/{}/{prefix}", bucket()))
        .unwrap()
        .with_if_match_form(Some(IfMatchForm::Unquoted))
        .with_retry(retry)
}

/// Retries that are quick enough for tests.
pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        max_elapsed: Duration::from_secs(20),
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

/// One parsed request: head and body.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request (head + Content-Length body). `None` on EOF.
async fn read_request(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>, SeenRequest)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    let seen = SeenRequest {
        method,
        target,
        headers,
        body: body.clone(),
    };
    Some((buf[..head_end].to_vec(), body, seen))
}

/// A canned HTTP answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Canned {
    pub fn new(status: u16, reason: &'static str) -> Self {
        Canned {
            status,
            reason,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn s3_error(mut self, code: &str) -> Self {
        self.body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>injected by the test</Message></Error>"
        );
        self.headers
            .push(("Content-Type".into(), "application/xml".into()));
        self
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

async fn answer(stream: &mut TcpStream, canned: &Canned, method: &str) {
    let _ = stream.write_all(&canned.bytes(method == "HEAD")).await;
    let _ = stream.shutdown().await;
}

/// What the fault proxy does with request number `n` (1-based).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer the first `n` requests with 503 SlowDown, forward the rest.
    SlowDownFirst(usize),
    /// Answer every request with 503 SlowDown.
    AlwaysSlowDown,
    /// Forward the first `n` requests but drop the connection instead of
    /// relaying the answer (the server did the work; the client never hears).
    DropAnswerFirst(usize),
    /// Never answer the first `n` requests (the client times out).
    StallFirst(usize),
}

/// A TCP proxy on 127.0.0.1 in front of the real server that injects faults.
/// Each forwarded request gets `Connection: close`, so every request arrives
/// on its own connection and is counted exactly.
pub struct FaultProxy {
    pub port: u16,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl FaultProxy {
    pub async fn start(fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream_addr();
        let (count2, seen2) = (Arc::clone(&count), Arc::clone(&seen));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let (count, seen, upstream) =
                    (Arc::clone(&count2), Arc::clone(&seen2), upstream.clone());
                tokio::spawn(async move {
                    let Some((head, body, request)) = read_request(&mut client).await else {
                        return;
                    };
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let method = request.method.clone();
                    seen.lock().unwrap().push(request);
                    let slow_down = Canned::new(503, "Slow Down").s3_error("SlowDown");
                    match fault {
                        Fault::AlwaysSlowDown => {
                            return answer(&mut client, &slow_down, &method).await
                        }
                        Fault::SlowDownFirst(k) if n <= k => {
                            return answer(&mut client, &slow_down, &method).await
                        }
                        Fault::StallFirst(k) if n <= k => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        _ => {}
                    }
                    // Forward with `Connection: close`.
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut rewritten: String = head
                        .trim_end_matches("\r\n")
                        .split("\r\n")
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .map(|l| format!("{l}\r\n"))
                        .collect();
                    rewritten.push_str("Connection: close\r\n\r\n");
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if server.write_all(rewritten.as_bytes()).await.is_err()
                        || server.write_all(&body).await.is_err()
                    {
                        return;
                    }
                    let mut answer = Vec::new();
                    let _ = server.read_to_end(&mut answer).await;
                    if matches!(fault, Fault::DropAnswerFirst(k) if n <= k) {
                        // The server has acted; the client never hears of it.
                        drop(client);
                        return;
                    }
                    let _ = client.write_all(&answer).await;
                    let _ = client.shutdown().await;
                });
            }
        });
        FaultProxy { port, count, seen }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The requests received, in arrival order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// A fake S3 server on 127.0.0.1 whose answers come from a function of the
/// request (and its 1-based number). It records every request.
pub struct FakeServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl FakeServer {
    pub async fn start<F>(respond: F) -> FakeServer
    where
        F: Fn(usize, &SeenRequest) -> Canned + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let (seen, respond) = (Arc::clone(&seen2), Arc::clone(&respond));
                tokio::spawn(async move {
                    let Some((_, _, request)) = read_request(&mut client).await else {
                        return;
                    };
                    let canned = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(request.clone());
                        respond(seen.len(), &request)
                    };
                    answer(&mut client, &canned, &request.method).await;
                });
            }
        });
        FakeServer { port, seen }
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}
