//! A blocking client of the qBittorrent Web API v2 as `bt daemon` serves it: it logs in
//! first and sends the `SID` cookie with every request, as qBittorrent clients do.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

/// How long to wait for the daemon to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may take (`torrents/add` of a URL makes the daemon fetch it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read (a `torrents/info` of many thousands of torrents).
const MAX_ANSWER: u64 = 256 << 20;

/// Why a request to the daemon failed.
#[derive(Debug)]
pub enum ApiError {
    /// Nothing answered at the API's address.
    Unreachable {
        /// The API's base URL.
        base: String,
        /// What the connection attempt said.
        cause: String,
    },
    /// The daemon answered with an error status.
    Status {
        /// The endpoint, e.g. `torrents/properties`.
        endpoint: String,
        /// The HTTP status.
        code: u16,
        /// The answer's text.
        body: String,
    },
    /// Anything else: a broken connection, an answer that is not what the API gives.
    Other {
        /// The endpoint, or the base URL.
        what: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable { base, cause } => write!(f, "no bt daemon at {base}: {cause}"),
            ApiError::Status {
                endpoint,
                code,
                body,
            } => {
                let text = body.lines().next().unwrap_or("").trim();
                if text.is_empty() {
                    write!(f, "{endpoint}: HTTP {code}")
                } else {
                    write!(f, "{endpoint}: HTTP {code}: {text}")
                }
            }
            ApiError::Other { what, message } => write!(f, "{what}: {message}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The HTTP status, if the daemon answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The answer's text, if the daemon answered with an error status.
    pub fn body(&self) -> Option<&str> {
        match self {
            ApiError::Status { body, .. } => Some(body.trim()),
            _ => None,
        }
    }
}

/// A file field of a multipart form: its name, file name and bytes.
pub struct FilePart<'a> {
    /// The form field's name (`torrents`).
    pub field: &'a str,
    /// The file name sent with it.
    pub file_name: &'a str,
    /// The file's bytes.
    pub bytes: &'a [u8],
}

/// A logged-in connection to a daemon's API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    cookie: Option<String>,
}

impl Client {
    /// Logs in to the API at `base` (e.g. `http://127.0.0.1:8080`) and keeps its cookie.
    pub fn connect(base: &str) -> Result<Client, ApiError> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .build();
        let mut client = Client {
            base: base.to_string(),
            agent,
            cookie: None,
        };
        // bt's daemon lets loopback clients in without credentials (qBittorrent's
        // localhost bypass); logging in anyway gives the session cookie a qBittorrent
        // with that bypass also expects.
        let endpoint = "auth/login";
        let req = client.agent.post(&client.url(endpoint));
        let resp = match req.send_form(&[]) {
            Ok(r) => r,
            Err(e) => return Err(client.error(endpoint, e)),
        };
        client.cookie = resp
            .all("set-cookie")
            .into_iter()
            .filter_map(|c| c.split(';').next())
            .find(|c| c.trim_start().starts_with("SID="))
            .map(|c| c.trim().to_string());
        let body = read_body(&client.base, resp)?;
        if body.trim() != "Ok." {
            return Err(ApiError::Other {
                what: client.base.clone(),
                message: format!(
                    "the API refused to log in without credentials ({:?})",
                    body.trim()
                ),
            });
        }
        Ok(client)
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/v2/{endpoint}", self.base)
    }

    fn request(&self, method: &str, endpoint: &str) -> ureq::Request {
        let req = self.agent.request(method, &self.url(endpoint));
        match &self.cookie {
            Some(c) => req.set("Cookie", c),
            None => req,
        }
    }

    /// GETs a read endpoint with `query` and parses its JSON answer.
    pub fn get_json(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let mut req = self.request("GET", endpoint);
        for (k, v) in query {
            req = req.query(k, v);
        }
        let body = self.finish(endpoint, req.call())?;
        serde_json::from_str(&body).map_err(|e| ApiError::Other {
            what: endpoint.to_string(),
            message: format!("the answer is not JSON: {e}"),
        })
    }

    /// POSTs `form` (URL-encoded) to an endpoint; returns the answer's text.
    pub fn post_form(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<String, ApiError> {
        let req = self.request("POST", endpoint);
        self.finish(endpoint, req.send_form(form))
    }

    /// POSTs a `multipart/form-data` body of `fields` and `files`; returns the answer's
    /// text.
    pub fn post_multipart(
        &self,
        endpoint: &str,
        fields: &[(&str, &str)],
        files: &[FilePart<'_>],
    ) -> Result<String, ApiError> {
        let (boundary, body) = multipart(fields, files);
        let req = self.request("POST", endpoint).set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        self.finish(endpoint, req.send_bytes(&body))
    }

    fn finish(
        &self,
        endpoint: &str,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<String, ApiError> {
        match result {
            Ok(r) => read_body(endpoint, r),
            Err(e) => Err(self.error(endpoint, e)),
        }
    }

    fn error(&self, endpoint: &str, e: ureq::Error) -> ApiError {
        match e {
            ureq::Error::Status(code, r) => ApiError::Status {
                endpoint: endpoint.to_string(),
                code,
                body: read_body(endpoint, r).unwrap_or_default(),
            },
            ureq::Error::Transport(t) => {
                let cause = io_cause(&t)
                    .or_else(|| t.message().map(str::to_string))
                    .unwrap_or_else(|| t.kind().to_string());
                match t.kind() {
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => {
                        ApiError::Unreachable {
                            base: self.base.clone(),
                            cause,
                        }
                    }
                    ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                        ApiError::Other {
                            what: self.base.clone(),
                            message: format!("not a usable API URL: {cause}"),
                        }
                    }
                    _ => ApiError::Other {
                        what: endpoint.to_string(),
                        message: cause,
                    },
                }
            }
        }
    }
}

/// The I/O error under a transport error, as text (`Connection refused (os error 111)`).
fn io_cause(t: &ureq::Transport) -> Option<String> {
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.to_string());
        }
        source = s.source();
    }
    None
}

fn read_body(what: &str, r: ureq::Response) -> Result<String, ApiError> {
    let mut body = String::new();
    r.into_reader()
        .take(MAX_ANSWER)
        .read_to_string(&mut body)
        .map_err(|e| ApiError::Other {
            what: what.to_string(),
            message: format!("reading the answer: {e}"),
        })?;
    Ok(body)
}

/// A `multipart/form-data` body and its boundary, one that occurs in none of the parts.
fn multipart(fields: &[(&str, &str)], files: &[FilePart<'_>]) -> (String, Vec<u8>) {
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let mut n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let boundary = loop {
        let b = format!("----bt-form-{n:016x}");
        let clash = fields
            .iter()
            .any(|(_, v)| contains(v.as_bytes(), b.as_bytes()))
            || files.iter().any(|f| contains(f.bytes, b.as_bytes()));
        if !clash {
            break b;
        }
        n = n.wrapping_add(1);
    };
    // Quotes and line breaks cannot appear in a header's quoted name.
    let quoted = |s: &str| s.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
                quoted(name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    for f in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
                 Content-Type: application/x-bittorrent\r\n\r\n",
                quoted(f.field),
                quoted(f.file_name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(f.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_has_every_part_and_a_boundary_none_of_them_holds() {
        let data = b"d4:infod4:name1:xee";
        let (boundary, body) = multipart(
            &[("category", "movies"), ("stopped", "true")],
            &[FilePart {
                field: "torrents",
                file_name: "a\"b.torrent",
                bytes: data,
            }],
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(text.contains("name=\"category\"\r\n\r\nmovies\r\n"));
        assert!(text.contains("name=\"stopped\"\r\n\r\ntrue\r\n"));
        assert!(text.contains(
            "name=\"torrents\"; filename=\"a_b.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\nd4:infod4:name1:xee\r\n"
        ));
        // Two fields, one file, and the closing line.
        assert_eq!(text.matches(boundary.as_str()).count(), 4);
    }

    #[test]
    fn status_errors_read_as_one_line() {
        let e = ApiError::Status {
            endpoint: "torrents/add".into(),
            code: 415,
            body: "not a valid torrent: bencode: bad\nsecond line".into(),
        };
        assert_eq!(
            e.to_string(),
            "torrents/add: HTTP 415: not a valid torrent: bencode: bad"
        );
        let e = ApiError::Unreachable {
            base: "http://127.0.0.1:1".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            e.to_string(),
            "no bt daemon at http://127.0.0.1:1: Connection refused (os error 111)"
        );
    }
}
