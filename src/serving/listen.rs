//! The accept loop: HTTP/1.1 connections with a cap on how many are open, time limits on
//! a request's head, on a silent keep-alive and (see [`TimedBody`]) on its body, and a
//! shutdown that waits for in-flight requests within a grace period.
//!
//! At the cap, a new connection closes the connection that has been idle longest (no request
//! in flight: a silent socket, a half-sent head, a keep-alive between requests). Idle sockets
//! therefore cannot lock clients out, and the process never runs out of file descriptors;
//! only when every open connection has a request in flight is a new one answered 503.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Time limits and the connection cap.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// From the first byte of a request's head to its end.
    pub header_timeout: Duration,
    /// From the handler's first read of the body to its end.
    pub body_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// The default connection cap: what the open-file limit leaves, less a margin for the model,
/// logs and the blocking pool, at most 10,000.
pub fn default_max_connections() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 1024 };
    (soft as usize).saturating_sub(128).clamp(16, 10_000)
}

/// One open connection: whether a request is in flight, when it last was, and how to close it.
struct Conn {
    busy: AtomicUsize,
    /// Milliseconds since the server started, at the last request's end (or the accept).
    last: AtomicU64,
    close: Notify,
}

struct Open {
    started: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Connections whose socket is still open (a closed one leaves `conns` at once, and this
    /// count once its socket is dropped).
    alive: AtomicUsize,
    /// Signalled whenever a connection's socket is dropped.
    ended: Notify,
}

impl Open {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Close (and forget) the connection idle the longest; false when all are busy.
    fn evict_idlest(&self) -> bool {
        let mut conns = self.conns.lock().expect("connection table");
        let idlest = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))
            .map(|(&id, _)| id);
        match idlest.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Close every connection idle for longer than `limit`.
    fn reap(&self, limit: Duration) -> usize {
        let now = self.now();
        let limit = limit.as_millis() as u64;
        let mut conns = self.conns.lock().expect("connection table");
        let before = conns.len();
        conns.retain(|_, c| {
            let idle =
                c.busy.load(Ordering::Acquire) == 0 && now.saturating_sub(c.last.load(Ordering::Relaxed)) > limit;
            if idle {
                c.close.notify_one();
            }
            !idle
        });
        before - conns.len()
    }
}

/// Serve `app` on `listener` until `stop` resolves; then finish in-flight requests within the
/// grace period and close what is still open.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Open {
        started: Instant::now(),
        next: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        alive: AtomicUsize::new(0),
        ended: Notify::new(),
    });
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let reaper = {
        let open = open.clone();
        let every = (limits.idle_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let n = open.reap(limits.idle_timeout);
                if n > 0 {
                    tracing::debug!(closed = n, "idle connections closed");
                }
            }
        })
    };
    let app = app.layer(axum::middleware::from_fn(move |req, next| body_deadline(limits.body_timeout, req, next)));
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        if open.alive.load(Ordering::Acquire) >= limits.max_connections {
            if !open.evict_idlest() {
                tokio::spawn(refuse(stream));
                continue;
            }
            // Wait for the evicted socket to be dropped, so descriptors stay within the cap.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while open.alive.load(Ordering::Acquire) >= limits.max_connections {
                let ended = open.ended.notified();
                if open.alive.load(Ordering::Acquire) < limits.max_connections
                    || tokio::time::timeout_at(deadline, ended).await.is_err()
                {
                    break;
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let id = open.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn { busy: AtomicUsize::new(0), last: AtomicU64::new(open.now()), close: Notify::new() });
        open.conns.lock().expect("connection table").insert(id, conn.clone());
        open.alive.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(connection(stream, app.clone(), conn, open.clone(), id, limits, stopping_rx.clone()));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
    loop {
        let ended = open.ended.notified();
        if open.alive.load(Ordering::Acquire) == 0 {
            break;
        }
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            tracing::warn!(
                grace = ?limits.shutdown_grace,
                open = open.alive.load(Ordering::Acquire),
                "shutdown grace period over: closing the connections still open"
            );
            break;
        }
    }
    reaper.abort();
    Ok(())
}

/// Every connection open and busy: say so, and close.
async fn refuse(mut stream: TcpStream) {
    let msg = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 52\r\n\r\n{\"error\":\"too many connections busy; retry shortly\"}";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(msg)).await;
}

async fn connection(
    stream: TcpStream,
    app: Router,
    conn: Arc<Conn>,
    open: Arc<Open>,
    id: u64,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let tracked = conn.clone();
    let clock = open.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        let tracked = tracked.clone();
        let clock = clock.clone();
        tracked.busy.fetch_add(1, Ordering::AcqRel);
        async move {
            let resp = tower::ServiceExt::oneshot(app, req.map(Body::new)).await;
            tracked.last.store(clock.now(), Ordering::Relaxed);
            tracked.busy.fetch_sub(1, Ordering::AcqRel);
            resp
        }
    });
    let mut http = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service),
    );
    let mut draining = *stopping.borrow();
    if draining {
        http.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = http.as_mut() => break,
            _ = conn.close.notified() => break,
            changed = stopping.changed(), if !draining => {
                if changed.is_err() || *stopping.borrow() {
                    draining = true;
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
    drop(http);
    open.conns.lock().expect("connection table").remove(&id);
    open.alive.fetch_sub(1, Ordering::AcqRel);
    open.ended.notify_waiters();
}

/// Every request body must arrive within `limit` of the handler's first read.
async fn body_deadline(
    limit: Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    next.run(req.map(|b| Body::new(TimedBody { inner: b, limit, deadline: None }))).await
}

/// A request body that fails with [`BodyTimeout`] when it is not complete in time.
pub struct TimedBody {
    inner: Body,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error of a body that did not arrive in time (answered 408).
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TIMED_OUT}: not complete within {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for TimedBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether the text of a body-read rejection (axum's `Bytes` or multipart extractor, which
/// keep only the error's text) reports a [`BodyTimeout`].
pub fn timed_out(rejection_text: &str) -> bool {
    rejection_text.contains(TIMED_OUT)
}

/// The start of a [`BodyTimeout`]'s message, as rejections repeat it.
const TIMED_OUT: &str = "request body timed out";
