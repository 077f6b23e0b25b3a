//! One HTTP/1.1 exchange per connection on loopback, with request headers and the
//! reply's headers (Transmission's session id, qBittorrent's cookie): the crate's
//! [`crate::http`] sends neither. Bodies may be large (`sync/maindata` of 10,000
//! torrents is megabytes), sized by `Content-Length`, chunked, or read to the close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Time to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Time any one read or write may wait: a daemon busy adding torrents can be slow.
const IO_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest reply accepted.
const MAX_REPLY: usize = 1 << 30;

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` with `headers` and `body` to `addr` on a new connection and reads
/// the whole reply.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .with_context(|| format!("cannot connect to http://{addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .with_context(|| format!("sending {method} {path} to http://{addr}"))?;
    read_reply(&mut stream).with_context(|| format!("reply to {method} {path} from http://{addr}"))
}

/// Reads a reply: the head, then the body by its length, or to the close.
fn read_reply(stream: &mut impl Read) -> Result<Reply> {
    let mut raw = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut eof = false;
    let mut more = |raw: &mut Vec<u8>| -> Result<bool> {
        let n = stream.read(&mut chunk)?;
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_REPLY {
            bail!("reply longer than {MAX_REPLY} bytes");
        }
        Ok(n > 0)
    };
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if !more(&mut raw)? {
            bail!("connection closed before the end of the HTTP head");
        }
    };
    let (status, headers) = parse_head(&raw[..head_end])?;
    let start = head_end + 4;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(len) if !chunked => {
            while raw.len() < start + len {
                if !more(&mut raw)? {
                    bail!(
                        "connection closed {} bytes into a {len}-byte body",
                        raw.len() - start
                    );
                }
            }
            raw.truncate(start + len);
        }
        _ => {
            while !eof {
                eof = !more(&mut raw)?;
            }
        }
    }
    let body = raw.split_off(start);
    let body = if chunked { dechunk(&body)? } else { body };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// The status code and headers (names lowercased) of a head without its final CRLFCRLF.
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>)> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    Ok((status, headers))
}

/// A chunked body, decoded.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line not terminated")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            bail!("chunk of {size} bytes cut short at {}", body.len());
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_reply_stops_at_its_length() {
        let mut raw: &[u8] = b"HTTP/1.1 409 Conflict\r\nX-Transmission-Session-Id: abc\r\n\
                               Content-Length: 3\r\n\r\nxyzEXTRA";
        let reply = read_reply(&mut raw).unwrap();
        assert_eq!(reply.status, 409);
        assert_eq!(reply.header("X-Transmission-Session-Id"), Some("abc"));
        assert_eq!(reply.body, b"xyz");
    }

    #[test]
    fn chunked_and_unsized_replies_run_to_the_close() {
        let mut raw: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(read_reply(&mut raw).unwrap().body, b"abcde");
        let mut raw: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(read_reply(&mut raw).unwrap().body, b"all of it");
    }

    #[test]
    fn short_replies_are_errors() {
        let mut raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(read_reply(&mut raw).is_err());
        let mut raw: &[u8] = b"HTTP/1.1 200 OK\r\nContent-";
        assert!(read_reply(&mut raw).is_err());
    }
}
