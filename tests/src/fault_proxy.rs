//! A fault proxy in front of moto, for the services moto cannot make fail (SNS, S3): point a
//! client's endpoint at [`FaultProxy::url`], and each request either gets the answer of the
//! first matching [`Fault`] rule (which it uses up) or is forwarded to moto unchanged.
//!
//! The MWAA control plane has its own faults (`/_bed/faults`); this is for the rest. HTTP/1.1
//! with `Content-Length` bodies only (what the SDK sends to these services); loopback only.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// One rule: requests whose method is `method`, whose path contains `path` and whose body
/// contains `body` are answered `status` with `answer`, `count` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path: String,
    pub body: String,
    pub status: u16,
    pub answer: String,
    pub count: u32,
}

impl Fault {
    /// SNS (query protocol) refusing with `code`: `Throttling` (400), `InternalError` (500).
    pub fn sns(action: &str, status: u16, code: &str, count: u32) -> Fault {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        Fault {
            method: "POST",
            path: "/".into(),
            body: format!("Action={action}&"),
            status,
            answer: format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
                 <Type>{kind}</Type><Code>{code}</Code><Message>Injected by the fault proxy\
                 </Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
            count,
        }
    }

    /// S3 answering `status` (`InternalError` 500, `SlowDown` 503) to `method` on keys
    /// containing `key`.
    pub fn s3(method: &'static str, key: &str, status: u16, count: u32) -> Fault {
        let code = if status == 503 {
            "SlowDown"
        } else {
            "InternalError"
        };
        Fault {
            method,
            path: key.into(),
            body: String::new(),
            status,
            answer: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
                 <Message>Injected by the fault proxy</Message><RequestId>fault-proxy\
                 </RequestId></Error>"
            ),
            count,
        }
    }
}

/// A served request: `"<METHOD> <path>"` and the status answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub request: String,
    pub status: u16,
    pub faulted: bool,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    served: Vec<Served>,
}

/// The running proxy; it stops with the test's runtime.
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, upstream) = (state.clone(), upstream.trim_end_matches('/').to_owned());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while let Ok((socket, _)) = listener.accept().await {
                let (state, upstream, http) = (shared.clone(), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &state, &upstream, &http).await;
                });
            }
        });
        FaultProxy { url, state }
    }

    /// Appends rules (used in order, like the control plane's).
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Rules not used up yet.
    pub fn pending(&self) -> Vec<Fault> {
        self.state.lock().unwrap().faults.clone()
    }

    /// Takes back the rules not used up yet (an outage that ends): what they had left.
    pub fn withdraw(&self) -> Vec<Fault> {
        std::mem::take(&mut self.state.lock().unwrap().faults)
    }

    /// Every request so far.
    pub fn served(&self) -> Vec<Served> {
        self.state.lock().unwrap().served.clone()
    }
}

fn take_fault(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> Option<Fault> {
    let body = String::from_utf8_lossy(body);
    let mut state = state.lock().unwrap();
    let i = state
        .faults
        .iter()
        .position(|f| f.method == method && path.contains(&f.path) && body.contains(&f.body))?;
    state.faults[i].count -= 1;
    let fault = state.faults[i].clone();
    if fault.count == 0 {
        state.faults.remove(i);
    }
    Some(fault)
}

async fn serve(
    mut socket: TcpStream,
    state: &Mutex<State>,
    upstream: &str,
    http: &reqwest::Client,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    // The connection is kept for the next request.
    while let Some(crate::http::Request {
        method,
        path,
        headers,
        body,
    }) = crate::http::read_request(&mut socket, &mut buf).await?
    {
        let (status, out_headers, out_body, faulted) =
            if let Some(fault) = take_fault(state, &method, &path, &body) {
                let xml = if method == "HEAD" {
                    vec![]
                } else {
                    fault.answer.into_bytes()
                };
                let headers = vec![("Content-Type".to_owned(), "text/xml".to_owned())];
                (fault.status, headers, xml, true)
            } else {
                let mut request = http.request(
                    method.parse().expect("an HTTP method"),
                    format!("{upstream}{path}"),
                );
                for (k, v) in &headers {
                    if !["host", "content-length", "connection", "transfer-encoding"]
                        .contains(&k.to_ascii_lowercase().as_str())
                    {
                        request = request.header(k, v);
                    }
                }
                let response = request
                    .body(body)
                    .send()
                    .await
                    .map_err(std::io::Error::other)?;
                let status = response.status().as_u16();
                let headers: Vec<(String, String)> = response
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        !["connection", "transfer-encoding", "keep-alive"].contains(&k.as_str())
                            && (method == "HEAD" || k.as_str() != "content-length")
                    })
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let bytes = response.bytes().await.map_err(std::io::Error::other)?;
                (status, headers, bytes.to_vec(), false)
            };
        state.lock().unwrap().served.push(Served {
            request: format!("{method} {path}"),
            status,
            faulted,
        });
        let mut answer = format!("HTTP/1.1 {status} Fault-Proxy\r\n");
        for (k, v) in &out_headers {
            answer.push_str(&format!("{k}: {v}\r\n"));
        }
        if method != "HEAD" || !out_headers.iter().any(|(k, _)| k == "content-length") {
            answer.push_str(&format!("content-length: {}\r\n", out_body.len()));
        }
        answer.push_str("\r\n");
        socket.write_all(answer.as_bytes()).await?;
        if method != "HEAD" {
            socket.write_all(&out_body).await?;
        }
    }
    Ok(())
}
