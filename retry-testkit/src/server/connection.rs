//! Connections: the accept loop, and one connection served by hyper unless a fault takes the
//! raw socket over to reset it or to hang.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::Shared;
use super::decide::handle;
use super::wire::json_response;
use crate::body::ResponseBody;
use crate::responses::{self as r, Api};

/// Accepts connections until told to stop (or dropped), then aborts and awaits every connection task.
pub(super) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors or the like: do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// What the connection task does instead of letting hyper answer.
#[derive(Debug)]
pub(super) enum Takeover {
    /// Write these raw bytes (possibly none), then reset the connection.
    Reset(Bytes),
    /// Say nothing; keep the connection until the client closes it.
    Hang,
}

/// Serves one connection with hyper, unless a fault takes the socket over.
///
/// The socket's file descriptor is duplicated first: hyper owns one copy, this task keeps the other. A
/// takeover drops hyper's side (which sends nothing, since the socket stays open through the duplicate)
/// and then acts on the raw socket.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(std_stream) = stream.into_std() else { return };
    let Ok(raw) = std_stream.try_clone() else { return };
    let Ok(stream) = TcpStream::from_std(std_stream) else { return };

    let (takeover_tx, mut takeover_rx) = mpsc::channel::<Takeover>(1);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let takeover = takeover_tx.clone();
        async move { Ok::<_, Infallible>(handle(req, &shared, &takeover).await) }
    });
    let mut connection = Box::pin(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    let takeover = tokio::select! {
        _ = connection.as_mut() => None,
        takeover = takeover_rx.recv() => takeover,
    };
    drop(connection);
    let Some(takeover) = takeover else { return };
    let Ok(mut raw) = TcpStream::from_std(raw) else { return };
    match takeover {
        Takeover::Reset(prefix) => {
            if !prefix.is_empty() {
                if raw.write_all(&prefix).await.is_err() {
                    return;
                }
                let _ = raw.flush().await;
            }
            // Zero linger: closing sends RST instead of FIN.
            let _ = raw.set_zero_linger();
        }
        Takeover::Hang => {
            let mut sink = [0u8; 4096];
            while let Ok(n) = raw.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// Hands the socket to the connection task, which drops this future with hyper's connection.
pub(super) async fn take_over(takeover: &mpsc::Sender<Takeover>, what: Takeover) -> Response<ResponseBody> {
    if takeover.send(what).await.is_err() {
        // The connection task is gone, so nobody will read this.
        return json_response(500, &r::status_error(Api::OpenAi, 500));
    }
    std::future::pending().await
}
