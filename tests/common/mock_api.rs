//! A stand-in for the SendPigeon REST API on loopback: a small HTTP/1.1 server (keep-alive,
//! Content-Length bodies) that records every request and answers as each test programs it,
//! including answers no well-behaved server gives (cut off mid-body, never, garbage).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A normal response, after `delay`.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Write these bytes, then close the connection.
    Raw(Vec<u8>),
    /// Never answer (the connection stays open).
    Hang,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16, body: &str) -> Answer {
        Answer::Respond {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        if let Answer::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn delayed(mut self, by: Duration) -> Answer {
        if let Answer::Respond { delay, .. } = &mut self {
            *delay = by;
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

#[derive(Clone)]
pub struct MockApi {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub connections: Arc<AtomicUsize>,
    handler: Arc<Mutex<Handler>>,
}

impl MockApi {
    /// Starts with the default behaviour: the key `valid_key` passes the key check, every
    /// send is accepted with ids `em_1`, `em_2`, ...
    pub async fn start(valid_key: &str) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api = MockApi {
            base,
            requests: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(AtomicUsize::new(0)),
            handler: Arc::new(Mutex::new(default_handler(valid_key))),
        };
        let server = api.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                server.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(server.clone().serve(tcp));
            }
        });
        api
    }

    /// Replaces the behaviour.
    pub fn answer(&self, handler: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// Answers sends with `send` and key checks as before.
    pub fn answer_sends(
        &self,
        valid_key: &str,
        send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static,
    ) {
        let keys = default_handler(valid_key);
        self.answer(move |r| if r.method == "POST" { send(r) } else { keys(r) });
    }

    pub fn sends(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "POST")
            .cloned()
            .collect()
    }

    pub fn key_checks(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    }

    async fn serve(self, mut tcp: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let Some(request) = read_request(&mut tcp, &mut buf).await else {
                return;
            };
            self.requests.lock().unwrap().push(request.clone());
            let handler = self.handler.lock().unwrap().clone();
            match handler(&request) {
                Answer::Respond {
                    status,
                    headers,
                    body,
                    delay,
                } => {
                    tokio::time::sleep(delay).await;
                    let mut head =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                    for (name, value) in headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    if tcp.write_all(head.as_bytes()).await.is_err()
                        || tcp.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
                Answer::Raw(bytes) => {
                    let _ = tcp.write_all(&bytes).await;
                    return;
                }
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
            }
        }
    }
}

fn default_handler(valid_key: &str) -> Handler {
    let bearer = format!("Bearer {valid_key}");
    let counter = Arc::new(AtomicUsize::new(0));
    Arc::new(
        move |r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/api-keys/current")
                if r.header("authorization") == Some(bearer.as_str()) =>
            {
                Answer::json(
                    200,
                    serde_json::json!({"key_id": "key_1", "can_send": true}),
                )
            }
            ("GET", "/v1/api-keys/current") => Answer::json(
                401,
                serde_json::json!({"error": {"code": "invalid_api_key", "message": "Invalid API key"}}),
            ),
            ("POST", "/v1/emails") => {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                Answer::json(200, serde_json::json!({"id": format!("em_{n}")}))
            }
            _ => Answer::status(404, ""),
        },
    )
}

async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end + 4);
    while buf.len() < length {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..length).collect();
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}
