//! A loopback address where nothing listens: [`RefusedPort`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpSocket;

/// A loopback port where connections are refused, reserved for as long as this value lives.
///
/// The port is bound but never listened on, so connecting gets `ECONNREFUSED` right away and no other
/// program can take the port meanwhile (unlike picking a free port and hoping it stays free).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use llm_retry_testkit::RefusedPort;
///
/// let refused = RefusedPort::bind().unwrap();
/// let err = tokio::net::TcpStream::connect(refused.addr()).await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
/// assert!(refused.openai_base().ends_with("/v1"));
/// # }
/// ```
#[derive(Debug)]
pub struct RefusedPort {
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusedPort {
    /// Reserves a port on `127.0.0.1` where connections are refused.
    ///
    /// # Errors
    /// If the operating system gives no socket or port.
    ///
    /// ```
    /// let refused = llm_retry_testkit::RefusedPort::bind().unwrap();
    /// assert!(refused.addr().ip().is_loopback());
    /// ```
    pub fn bind() -> io::Result<RefusedPort> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = socket.local_addr()?;
        Ok(RefusedPort { _socket: socket, addr })
    }

    /// The refusing address.
    ///
    /// ```
    /// let refused = llm_retry_testkit::RefusedPort::bind().unwrap();
    /// assert_ne!(refused.addr().port(), 0);
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    ///
    /// ```
    /// let refused = llm_retry_testkit::RefusedPort::bind().unwrap();
    /// assert!(refused.url().starts_with("http://127.0.0.1:"));
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`, to hand to an OpenAI client as its base URL.
    ///
    /// ```
    /// let refused = llm_retry_testkit::RefusedPort::bind().unwrap();
    /// assert_eq!(refused.openai_base(), format!("{}/v1", refused.url()));
    /// ```
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }
}
