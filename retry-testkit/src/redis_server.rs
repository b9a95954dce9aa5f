//! A real `redis-server` for tests and examples: started on a free loopback port in a fresh
//! temporary directory, killed, paused, resumed and restarted on demand, and removed when
//! dropped.
//!
//! Nothing here is a Redis client: [`RedisServer::command`] speaks just enough RESP over a
//! plain TCP connection to check readiness and to send the odd administrative command
//! (`SCRIPT FLUSH`, `CLIENT PAUSE 2000`, `ACL SETUSER ...`).
//!
//! Where `redis-server` is not installed, [`RedisServer::start`] returns `Ok(None)` and a test
//! skips with [`skip_notice`], unless `LLM_RETRY_REQUIRE_REDIS=1` (as CI sets it), which
//! turns a missing server into an error.
//!
//! ```no_run
//! use llm_retry_testkit::redis_server::{RedisServer, skip_notice};
//!
//! let Some(mut server) = RedisServer::start().expect("redis-server") else {
//!     skip_notice("my_test");
//!     return;
//! };
//! assert_eq!(server.command(&["PING"]).unwrap(), "PONG");
//! let url = server.url(); // redis://127.0.0.1:<port>
//! server.pause().unwrap(); // SIGSTOP: commands now hang
//! server.resume().unwrap();
//! server.kill().unwrap(); // SIGKILL
//! server.restart().unwrap(); // the same port and directory
//! # let _ = url;
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that makes a missing `redis-server` an error rather than a skip.
pub const REQUIRE_ENV: &str = "LLM_RETRY_REQUIRE_REDIS";

/// How long a server may take to answer its first `PING`.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How long one administrative command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS server's files, in PEM: its certificate and private key, and the CA certificate that
/// signed it (which clients are told to trust). See [`RedisServer::start_tls`].
///
/// ```
/// use llm_retry_testkit::redis_server::Tls;
/// let dir = std::path::Path::new("/tmp/certs");
/// let tls = Tls { cert: dir.join("redis.crt"), key: dir.join("redis.key"), ca: dir.join("ca.crt") };
/// # let _ = tls;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// The CA certificate that signed [`Tls::cert`].
    pub ca: PathBuf,
}

/// A `redis-server` child process on `127.0.0.1`, with no persistence, in a directory of its
/// own. Dropping it kills the process and removes the directory.
///
/// ```no_run
/// let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().expect("installed");
/// println!("{} (pid {:?})", server.url(), server.pid());
/// ```
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    /// TLS beside the plain port, on this port with these files.
    tls: Option<(u16, Tls)>,
    /// The cluster bus port, in cluster mode (for [`crate::redis_cluster`]).
    bus_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

impl RedisServer {
    /// Starts a server on a free port and waits (at most about 5 s) until it answers `PING`.
    ///
    /// # Errors
    ///
    /// `Ok(None)` when `redis-server` is not on the `PATH`, unless `LLM_RETRY_REQUIRE_REDIS=1`:
    /// then an error saying how to install it. An error when it does not start or answer.
    ///
    /// ```no_run
    /// match llm_retry_testkit::redis_server::RedisServer::start() {
    ///     Ok(Some(server)) => println!("running at {}", server.url()),
    ///     Ok(None) => println!("redis-server is not installed"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    pub fn start() -> Result<Option<RedisServer>, String> {
        RedisServer::start_with(None, false)
    }

    /// Starts a server that also listens with TLS on a port of its own ([`RedisServer::tls_url`]),
    /// with the certificate and key of `tls`; clients need no certificate of their own. The plain
    /// port stays open, for [`RedisServer::command`]. Skips and fails as [`RedisServer::start`].
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`]; also when the files cannot be read or redis-server was built
    /// without TLS.
    ///
    /// ```no_run
    /// use llm_retry_testkit::redis_server::{RedisServer, Tls};
    /// let dir = std::path::Path::new("/tmp/certs");
    /// let tls = Tls { cert: dir.join("redis.crt"), key: dir.join("redis.key"), ca: dir.join("ca.crt") };
    /// let server = RedisServer::start_tls(&tls).unwrap().expect("installed");
    /// assert!(server.tls_url().unwrap().starts_with("rediss://127.0.0.1:"));
    /// ```
    pub fn start_tls(tls: &Tls) -> Result<Option<RedisServer>, String> {
        RedisServer::start_with(Some(tls), false)
    }

    pub(crate) fn start_with(tls: Option<&Tls>, cluster: bool) -> Result<Option<RedisServer>, String> {
        let Some(binary) = find_on_path("redis-server") else {
            return if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                Err(format!(
                    "redis-server is not on the PATH, and {REQUIRE_ENV}=1 requires it: install it \
                     (`apt-get install -y redis-server`)"
                ))
            } else {
                Ok(None)
            };
        };
        let dir = fresh_dir()?;
        // Another process may take the free port between our look and the server's bind: try
        // a few ports.
        let mut last = String::new();
        for _ in 0..5 {
            let [port, tls_port, bus_port] = free_ports()?;
            let mut server = RedisServer {
                binary: binary.clone(),
                port,
                tls: tls.map(|tls| (tls_port, tls.clone())),
                bus_port: cluster.then_some(bus_port),
                dir: dir.clone(),
                child: None,
                stopped: false,
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(Some(server)),
                Err(e) => {
                    last = e;
                    // Dropping would remove the directory the next try uses.
                    server.stop_child();
                    server.dir = PathBuf::new();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last)
    }

    /// `redis://127.0.0.1:<port>`.
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert!(server.url().starts_with("redis://127.0.0.1:"));
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:<TLS port>`, when started with [`RedisServer::start_tls`].
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert_eq!(server.tls_url(), None);
    /// ```
    pub fn tls_url(&self) -> Option<String> {
        self.tls.as_ref().map(|(port, _)| format!("rediss://127.0.0.1:{port}"))
    }

    /// The port it listens on.
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert_ne!(server.port(), 0);
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs (`None` after [`RedisServer::kill`]).
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert!(server.pid().is_some());
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's directory (its log is `redis.log` there).
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert!(server.dir().join("redis.log").exists());
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server (SIGKILL), as a crash would: connections drop at once.
    ///
    /// # Errors
    ///
    /// When it was not running.
    ///
    /// ```no_run
    /// # let mut server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// server.kill().unwrap();
    /// assert!(server.command(&["PING"]).is_err());
    /// ```
    pub fn kill(&mut self) -> Result<(), String> {
        if self.child.is_none() {
            return Err("the server is not running".to_owned());
        }
        self.stop_child();
        Ok(())
    }

    /// Stops the process (SIGSTOP) without closing anything: connections stay open and
    /// commands hang, as on a server stuck in a long command or a frozen host.
    ///
    /// # Errors
    ///
    /// When it is not running, or `kill` fails.
    ///
    /// ```no_run
    /// # let mut server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// server.pause().unwrap();
    /// server.resume().unwrap();
    /// ```
    pub fn pause(&mut self) -> Result<(), String> {
        self.signal("-STOP")?;
        self.stopped = true;
        Ok(())
    }

    /// Continues a paused process (SIGCONT).
    ///
    /// # Errors
    ///
    /// When it is not running, or `kill` fails.
    ///
    /// ```no_run
    /// # let mut server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// server.pause().unwrap();
    /// server.resume().unwrap();
    /// assert_eq!(server.command(&["PING"]).unwrap(), "PONG");
    /// ```
    pub fn resume(&mut self) -> Result<(), String> {
        self.signal("-CONT")?;
        self.stopped = false;
        Ok(())
    }

    /// Starts the server again on the same port and directory (after [`RedisServer::kill`];
    /// a running server is killed first), and waits until it answers. It starts empty: no
    /// data, no scripts.
    ///
    /// # Errors
    ///
    /// When it does not start or answer within about 5 s.
    ///
    /// ```no_run
    /// # let mut server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// let port = server.port();
    /// server.kill().unwrap();
    /// server.restart().unwrap();
    /// assert_eq!(server.port(), port);
    /// ```
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop_child();
        self.spawn_and_wait()
    }

    /// Sends one command and returns its reply as text: a status or a bulk string as it is,
    /// an integer in decimal, nil as `(nil)`, an array as its items on lines of their own.
    ///
    /// # Errors
    ///
    /// The server's error reply (`ERR ...`), or why it could not be reached or read.
    ///
    /// ```no_run
    /// # let server = llm_retry_testkit::redis_server::RedisServer::start().unwrap().unwrap();
    /// assert_eq!(server.command(&["SET", "k", "v"]).unwrap(), "OK");
    /// assert_eq!(server.command(&["GET", "k"]).unwrap(), "v");
    /// assert_eq!(server.command(&["SCRIPT", "FLUSH"]).unwrap(), "OK");
    /// ```
    pub fn command(&self, args: &[&str]) -> Result<String, String> {
        command_at(self.addr(), args, COMMAND_TIMEOUT)
    }

    /// The port a cluster tells clients: the TLS port when the nodes talk TLS.
    pub(crate) fn client_port(&self) -> u16 {
        self.tls.as_ref().map_or(self.port, |(port, _)| *port)
    }

    /// The cluster bus port, in cluster mode.
    pub(crate) fn bus_port(&self) -> Option<u16> {
        self.bus_port
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(self.extra_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        self.stopped = false;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server exited ({status}) on port {}: {}", self.port, log_tail(&log)));
            }
            if command_at(self.addr(), &["PING"], Duration::from_millis(200)).is_ok_and(|r| r == "PONG") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop_child();
                return Err(format!("redis-server did not answer PING within {READY_WITHIN:?}: {}", log_tail(&log)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// TLS beside the plain port (clients need no certificate), and cluster mode with its bus
    /// on a port of its own (the default, the port + 10000, may be taken or out of range).
    fn extra_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some((port, tls)) = &self.tls {
            args.extend(["--tls-port".to_owned(), port.to_string()]);
            for (name, path) in
                [("--tls-cert-file", &tls.cert), ("--tls-key-file", &tls.key), ("--tls-ca-cert-file", &tls.ca)]
            {
                args.extend([name.to_owned(), path.display().to_string()]);
            }
            args.extend(["--tls-auth-clients".to_owned(), "no".to_owned()]);
        }
        if let Some(bus) = self.bus_port {
            args.extend(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"].map(str::to_owned));
            args.extend(["--cluster-port".to_owned(), bus.to_string()]);
            if self.tls.is_some() {
                // Nodes talk TLS to each other, and tell TLS clients their TLS ports.
                args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
            }
        }
        args
    }

    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.pid().ok_or("the server is not running")?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|e| format!("could not run kill {signal}: {e}"))?;
        if status.success() { Ok(()) } else { Err(format!("kill {signal} {pid} failed: {status}")) }
    }

    /// Kills and reaps the process, if any. A stopped process dies of SIGKILL as well; it is
    /// continued first so that nothing is left half-stopped if the kill were refused.
    fn stop_child(&mut self) {
        if self.stopped {
            let _ = self.signal("-CONT");
            self.stopped = false;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop_child();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Prints, plainly, that `test` was skipped because `redis-server` is not installed.
///
/// ```
/// llm_retry_testkit::redis_server::skip_notice("pacer_spacing");
/// ```
pub fn skip_notice(test: &str) {
    eprintln!(
        "SKIPPED {test}: redis-server is not installed (apt-get install -y redis-server; \
         set {REQUIRE_ENV}=1 to make this an error)"
    );
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// `N` distinct free ports: every listener is held until all are found.
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let no = |e: std::io::Error| format!("no free port: {e}");
    let listeners =
        (0..N).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(no)).collect::<Result<Vec<_>, _>>()?;
    let ports =
        listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(no)).collect::<Result<Vec<_>, _>>()?;
    ports.try_into().map_err(|_| "no free port".to_owned())
}

fn fresh_dir() -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!("llm-retry-redis-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// One command over a fresh connection.
pub(crate) fn command_at(addr: SocketAddr, args: &[&str], timeout: Duration) -> Result<String, String> {
    let io = |e: std::io::Error| format!("{addr}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request).map_err(io)?;
    read_reply(&mut BufReader::new(stream), 0)
}

/// One RESP2 reply as text.
fn read_reply(r: &mut impl BufRead, depth: usize) -> Result<String, String> {
    if depth > 8 {
        return Err("a reply nested too deep".to_owned());
    }
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("reading the reply: {e}"))?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or("the connection closed before a reply")?;
    let len = || rest.parse::<i64>().map_err(|_| format!("a malformed reply: {line:?}"));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => match usize::try_from(len()?) {
            Err(_) => Ok("(nil)".to_owned()),
            Ok(n) => {
                let mut body = vec![0; n.saturating_add(2)];
                r.read_exact(&mut body).map_err(|e| format!("reading the reply: {e}"))?;
                body.truncate(n);
                Ok(String::from_utf8_lossy(&body).into_owned())
            }
        },
        "*" => match usize::try_from(len()?) {
            Err(_) => Ok("(nil)".to_owned()),
            Ok(n) => {
                let items: Result<Vec<String>, String> = (0..n).map(|_| read_reply(r, depth + 1)).collect();
                Ok(items?.join("\n"))
            }
        },
        _ => Err(format!("a reply of an unknown kind: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(test: &str) -> Option<RedisServer> {
        let server = RedisServer::start().expect("redis-server");
        if server.is_none() {
            skip_notice(test);
        }
        server
    }

    #[test]
    fn it_starts_answers_and_runs_commands() {
        let Some(server) = server("it_starts_answers_and_runs_commands") else { return };
        assert_eq!(server.command(&["PING"]).unwrap(), "PONG");
        assert_eq!(server.command(&["SET", "k", "a value\r\nwith lines"]).unwrap(), "OK");
        assert_eq!(server.command(&["GET", "k"]).unwrap(), "a value\r\nwith lines");
        assert_eq!(server.command(&["GET", "missing"]).unwrap(), "(nil)");
        assert_eq!(server.command(&["RPUSH", "l", "a", "b"]).unwrap(), "2");
        assert_eq!(server.command(&["LRANGE", "l", "0", "-1"]).unwrap(), "a\nb");
        assert!(server.command(&["NO-SUCH-COMMAND"]).unwrap_err().starts_with("ERR"));
        assert_eq!(server.command(&["CONFIG", "GET", "save"]).unwrap(), "save\n");
        assert_eq!(server.command(&["CONFIG", "GET", "bind"]).unwrap(), "bind\n127.0.0.1");
        assert!(server.url().ends_with(&server.port().to_string()));
    }

    #[test]
    fn it_is_killed_and_restarted_on_the_same_port() {
        let Some(mut server) = server("it_is_killed_and_restarted_on_the_same_port") else { return };
        server.command(&["SET", "k", "v"]).unwrap();
        let (port, pid) = (server.port(), server.pid());
        server.kill().unwrap();
        assert_eq!(server.pid(), None);
        assert!(server.command(&["PING"]).is_err());
        assert!(server.kill().is_err());
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), pid);
        assert_eq!(server.command(&["PING"]).unwrap(), "PONG");
        // No persistence: it starts empty.
        assert_eq!(server.command(&["GET", "k"]).unwrap(), "(nil)");
    }

    #[test]
    fn a_paused_server_hangs_until_resumed() {
        let Some(mut server) = server("a_paused_server_hangs_until_resumed") else { return };
        server.pause().unwrap();
        let t = Instant::now();
        assert!(command_at(server.addr(), &["PING"], Duration::from_millis(100)).is_err());
        assert!(t.elapsed() >= Duration::from_millis(100));
        server.resume().unwrap();
        assert_eq!(server.command(&["PING"]).unwrap(), "PONG");
        // Dropping a paused server still ends it.
        server.pause().unwrap();
    }

    #[test]
    fn drop_kills_it_and_removes_its_directory() {
        let Some(server) = server("drop_kills_it_and_removes_its_directory") else { return };
        let dir = server.dir().to_owned();
        let addr = server.addr();
        assert!(dir.join("redis.log").exists());
        drop(server);
        assert!(!dir.exists());
        assert!(command_at(addr, &["PING"], Duration::from_millis(200)).is_err());
    }

    #[test]
    fn replies_are_read_defensively() {
        let read = |bytes: &[u8]| read_reply(&mut BufReader::new(bytes), 0);
        assert_eq!(read(b"+OK\r\n"), Ok("OK".to_owned()));
        assert_eq!(read(b":-3\r\n"), Ok("-3".to_owned()));
        assert_eq!(read(b"$-1\r\n"), Ok("(nil)".to_owned()));
        assert_eq!(read(b"*2\r\n$1\r\na\r\n:1\r\n"), Ok("a\n1".to_owned()));
        assert!(read(b"").is_err());
        assert!(read(b"$5\r\nab").is_err());
        assert!(read(b"$x\r\n").is_err());
        assert!(read(b"?what\r\n").is_err());
        assert!(read(&b"*1\r\n".repeat(20)).is_err());
    }
}
