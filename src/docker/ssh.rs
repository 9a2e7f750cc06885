//! `ssh://` endpoints, reached the way the docker CLI reaches them: one
//! `ssh [-l USER] [-p PORT] -- HOST docker system dial-stdio` per connection, whose stdout
//! and stdin carry the API. The connections are pooled (bollard's own clients open one per
//! request, which over ssh would be a login per request).
//!
//! ssh runs with `BatchMode=yes`: a login must work without a prompt (a key, an agent), because
//! a run opens several connections and nothing may stop to ask for a password halfway
//! through a day. Host keys are checked as the operator's ssh configuration says.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long the first connection (ssh's login and the remote docker's answer) may take.
const FIRST_ANSWER: Duration = Duration::from_secs(60);

/// An `ssh://[USER@]HOST[:PORT][/SOCKET]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// A socket path on the remote, for `docker --host unix://PATH` there.
    pub socket: Option<String>,
}

impl SshTarget {
    /// Reads an endpoint as the docker CLI does: a user but no password, a host, an optional
    /// port and remote socket path, nothing else.
    ///
    /// Errors: the text to show, naming what is wrong with the address.
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let rest = url.strip_prefix("ssh://").ok_or("an ssh endpoint starts with ssh://")?;
        if rest.contains(['?', '#']) {
            return Err("an ssh endpoint takes no query or fragment".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                if u.contains(':') {
                    return Err("a password in the address is not supported; use a key or an ssh agent".into());
                }
                (Some(u.to_string()).filter(|u| !u.is_empty()), h)
            }
            None => (None, authority),
        };
        let (host, port) = split_port(hostport)?;
        if host.is_empty() {
            return Err("no host in the address".into());
        }
        let socket = Some(path.to_string()).filter(|p| !p.is_empty() && p != "/");
        // Both end up on the remote's command line: nothing a shell would read as syntax.
        let plain = |t: &str, extra: &[char]| {
            t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(&c))
        };
        if socket.as_deref().is_some_and(|p| !plain(p, &['/'])) {
            return Err("the remote socket path may hold only letters, digits and . _ - /".into());
        }
        if user.as_deref().is_some_and(|u| !plain(u, &[])) || !plain(&host, &[':']) {
            return Err("the user and host may hold only letters, digits and . _ - (and : in an IPv6 address)".into());
        }
        Ok(SshTarget { user, host, port, socket })
    }

    /// The ssh command line for one connection, as the docker CLI builds it (plus batch mode).
    fn command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-o", "ConnectTimeout=30", "-o", "BatchMode=yes", "-T"]);
        if let Some(user) = &self.user {
            cmd.args(["-l", user]);
        }
        if let Some(port) = self.port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(["--", &self.host, "docker"]);
        if let Some(socket) = &self.socket {
            cmd.arg(format!("--host=unix://{socket}"));
        }
        cmd.args(["system", "dial-stdio"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }
}

/// The address as it may be shown: a password in it (which is refused) replaced by `***`.
pub fn shown(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else { return address.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        _ => address.to_string(),
    }
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn split_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let port_of = |p: &str| p.parse::<u16>().map(Some).map_err(|_| format!("`{p}` is not a port"));
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address lacks its closing ]")?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), port_of(p)?)),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(format!("`{after}` after the IPv6 address")),
        };
    }
    match hostport.split_once(':') {
        Some((h, p)) => Ok((h.to_string(), port_of(p)?)),
        None => Ok((hostport.to_string(), None)),
    }
}

/// The connector of a pooled HTTP client: each new connection is one ssh running
/// `docker system dial-stdio`; the pool keeps it for the requests that follow, as the
/// docker CLI keeps its one connection.
#[derive(Clone, Debug)]
pub struct SshConnector(Arc<SshTarget>);

impl SshConnector {
    /// Checks that the remote answers (ssh logs in, the remote docker reaches its daemon)
    /// before any request is made.
    ///
    /// Errors: why the first connection failed, in ssh's own words where ssh failed (a host
    /// key that does not match, a refused login, no docker on the remote).
    pub async fn open(target: SshTarget) -> Result<SshConnector, String> {
        first_answer(&target).await?;
        Ok(SshConnector(Arc::new(target)))
    }
}

impl tower_service::Service<Uri> for SshConnector {
    type Response = SshStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<SshStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let target = Arc::clone(&self.0);
        Box::pin(async move {
            let mut child = target.command().spawn()?;
            let (Some(stdin), Some(stdout), Some(stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(std::io::Error::other("ssh started without its pipes"));
            };
            // What ssh says later (a dropped connection) goes to the log, not the terminal.
            let host = target.host.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!("ssh {host}: {line}");
                }
            });
            Ok(SshStream { io: TokioIo::new(tokio::io::join(stdout, stdin)), _child: child })
        })
    }
}

/// One connection: the API over an ssh's stdout and stdin. Dropping it kills the ssh.
pub struct SshStream {
    io: TokioIo<tokio::io::Join<ChildStdout, ChildStdin>>,
    _child: Child,
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// One `GET /_ping` through a fresh ssh: the remote's daemon must answer 200.
async fn first_answer(target: &SshTarget) -> Result<(), String> {
    let mut child = target.command().spawn().map_err(|e| format!("cannot run ssh: {e}"))?;
    let attempt = async {
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(None);
        };
        let _ = stdin.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").await;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(None),
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let status = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
        if status.split_whitespace().nth(1) == Some("200") { Ok(()) } else { Err(Some(status)) }
    };
    let outcome = tokio::time::timeout(FIRST_ANSWER, attempt).await;
    match outcome {
        Ok(Ok(())) => {
            let _ = child.kill().await;
            Ok(())
        }
        Ok(Err(Some(status))) => {
            let _ = child.kill().await;
            Err(format!("the remote docker answered `{status}` through ssh"))
        }
        Ok(Err(None)) => Err(ssh_reason(child).await),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("no answer through ssh within {}s", FIRST_ANSWER.as_secs()))
        }
    }
}

/// What ssh (or the remote command) said when the connection closed without an answer.
async fn ssh_reason(mut child: Child) -> String {
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut text)).await;
    }
    let said = last_lines(&text);
    let code = match status {
        Ok(Ok(s)) => s.code().map(|c| format!("ssh exited with {c}")),
        _ => None,
    };
    match (said.is_empty(), code) {
        (false, Some(code)) => format!("{said} ({code})"),
        (false, None) => said,
        (true, Some(code)) => format!("{code} and said nothing"),
        (true, None) => "the connection closed without an answer".into(),
    }
}

/// ssh's last two lines, without the banner of `@` it draws around a changed host key.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('@')).collect();
    lines[lines.len().saturating_sub(2)..].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: Option<&str>, host: &str, port: Option<u16>, socket: Option<&str>) -> SshTarget {
        SshTarget { user: user.map(str::to_string), host: host.to_string(), port, socket: socket.map(str::to_string) }
    }

    #[test]
    fn addresses_read_as_the_docker_cli_reads_them() {
        assert_eq!(SshTarget::parse("ssh://host").unwrap(), t(None, "host", None, None));
        assert_eq!(
            SshTarget::parse("ssh://root@10.0.0.2:2222").unwrap(),
            t(Some("root"), "10.0.0.2", Some(2222), None)
        );
        assert_eq!(SshTarget::parse("ssh://me@[::1]:22/").unwrap(), t(Some("me"), "::1", Some(22), None));
        assert_eq!(
            SshTarget::parse("ssh://me@h/run/user/1000/docker.sock").unwrap(),
            t(Some("me"), "h", None, Some("/run/user/1000/docker.sock"))
        );
    }

    #[test]
    fn a_password_a_query_or_no_host_is_refused_with_the_reason() {
        assert!(SshTarget::parse("ssh://me:secret@h").unwrap_err().contains("password"));
        assert!(SshTarget::parse("ssh://h?x=1").unwrap_err().contains("query"));
        assert!(SshTarget::parse("ssh://me@").unwrap_err().contains("no host"));
        assert!(SshTarget::parse("ssh://h:port").unwrap_err().contains("not a port"));
        assert!(SshTarget::parse("ssh://h/x;reboot").unwrap_err().contains("socket path"), "no remote shell syntax");
        assert!(SshTarget::parse("ssh://a$(id)@h").unwrap_err().contains("user and host"));
        assert!(SshTarget::parse("ssh://-oProxyCommand=x").is_err(), "a host is not an ssh option");
    }

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(shown("ssh://me:secret@h:22/x"), "ssh://me:***@h:22/x");
        assert_eq!(shown("ssh://me@h"), "ssh://me@h");
        assert_eq!(shown("unix:///var/run/docker.sock"), "unix:///var/run/docker.sock");
    }

    #[test]
    fn the_command_is_the_docker_clis_in_batch_mode() {
        let cmd = SshTarget::parse("ssh://root@127.0.0.1:2222").unwrap().command();
        let args: Vec<String> = cmd.as_std().get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "-o",
                "ConnectTimeout=30",
                "-o",
                "BatchMode=yes",
                "-T",
                "-l",
                "root",
                "-p",
                "2222",
                "--",
                "127.0.0.1",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
    }

    #[test]
    fn a_changed_host_key_is_told_without_its_banner() {
        let said = "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@\n\
                    IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
                    Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\n\
                    Host key verification failed.\n";
        assert_eq!(
            last_lines(said),
            "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking. Host key verification failed."
        );
    }
}
