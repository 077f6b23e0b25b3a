//! A tiny HTTP/1.0 client for loopback services (opentracker announces, aria2's
//! JSON-RPC), so the harness needs no HTTP crate. Every socket operation is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Timeout for connecting and for each read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body accepted.
const MAX_BODY_LEN: usize = 16 << 20;

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// `GET path_and_query` from `addr`.
pub fn get(addr: SocketAddr, path_and_query: &str) -> Result<Response> {
    let head =
        format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, head.as_bytes())
}

/// `POST path` to `addr` with a JSON body.
pub fn post_json(addr: SocketAddr, path: &str, body: &str) -> Result<Response> {
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, request.as_bytes())
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .with_context(|| format!("cannot connect to http://{addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request)?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(response) = parse_response(&raw)? {
            return Ok(response);
        }
        let n = stream
            .read(&mut chunk)
            .with_context(|| format!("reading response from http://{addr}"))?;
        if n == 0 {
            return complete_at_eof(&raw).with_context(|| format!("response from http://{addr}"));
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_BODY_LEN {
            bail!("response from http://{addr} longer than {MAX_BODY_LEN} bytes");
        }
    }
}

/// Splits `raw` into (status, headers, body start) once the head is complete.
fn parse_head(raw: &[u8]) -> Result<Option<(u16, String, usize)>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
    Ok(Some((status, head, end + 4)))
}

/// A complete response if `raw` holds the head and all `Content-Length` bytes.
fn parse_response(raw: &[u8]) -> Result<Option<Response>> {
    let Some((status, head, body_start)) = parse_head(raw)? else {
        return Ok(None);
    };
    let content_len = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match content_len {
        Some(len) if raw.len() >= body_start + len => Ok(Some(Response {
            status,
            body: raw[body_start..body_start + len].to_vec(),
        })),
        _ => Ok(None),
    }
}

/// The response when the server closed the connection (the body runs to EOF).
fn complete_at_eof(raw: &[u8]) -> Result<Response> {
    match parse_head(raw)? {
        Some((status, _, body_start)) => Ok(Response {
            status,
            body: raw[body_start..].to_vec(),
        }),
        None => bail!("connection closed before the end of the HTTP head"),
    }
}

/// Percent-encodes every byte that is not unreserved (RFC 3986), e.g. an info-hash.
pub fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_with_content_length_is_complete_without_eof() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA";
        let r = parse_response(raw).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
    }

    #[test]
    fn response_without_content_length_waits_for_eof() {
        let raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nd8:intervali5ee";
        assert!(parse_response(raw).unwrap().is_none());
        let r = complete_at_eof(raw).unwrap();
        assert_eq!(r.body, b"d8:intervali5ee");
    }

    #[test]
    fn partial_head_is_incomplete() {
        assert!(parse_response(b"HTTP/1.0 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert!(complete_at_eof(b"HTTP/1.0 200").is_err());
    }

    #[test]
    fn garbage_status_line_is_an_error() {
        assert!(parse_response(b"hello\r\n\r\n").is_err());
    }

    #[test]
    fn percent_encode_keeps_unreserved() {
        assert_eq!(percent_encode(b"aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode(&[0x00, 0xff, b' ', b'%']), "%00%FF%20%25");
    }
}
