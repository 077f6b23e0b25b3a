//! A Transmission RPC request as the legacy protocol frames it (`method`, `arguments`,
//! `tag`), and the torrent selectors (`ids`) its methods take.

use bt_meta::InfoHash;
use serde_json::{Map, Value};

/// Largest request body read (a `torrent-add` carries a base64 `.torrent`).
pub const MAX_REQUEST_LEN: usize = 48 << 20;

/// One parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcRequest {
    /// The method name, e.g. `torrent-get`.
    pub method: String,
    /// Its arguments (empty when the request has none).
    pub arguments: Map<String, Value>,
    /// The caller's tag, echoed back in the response.
    pub tag: Option<Value>,
}

/// Why a request could not be understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON, or not a JSON object.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The body is larger than [`MAX_REQUEST_LEN`].
    #[error("request of {0} bytes is larger than {MAX_REQUEST_LEN}")]
    TooLarge(usize),
    /// An argument has the wrong type or an impossible value.
    #[error("argument {key}: {problem}")]
    Argument {
        /// The argument's name.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<RpcRequest, RequestError> {
    if body.len() > MAX_REQUEST_LEN {
        return Err(RequestError::TooLarge(body.len()));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(RequestError::Malformed("not a JSON object".into()));
    };
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return Err(RequestError::Malformed("method: not a string".into())),
        None => return Err(RequestError::Malformed("no method".into())),
    };
    let arguments = match obj.remove("arguments") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(RequestError::Malformed("arguments: not an object".into())),
    };
    let tag = obj.remove("tag").filter(|t| !t.is_null());
    Ok(RpcRequest {
        method,
        arguments,
        tag,
    })
}

/// One torrent named in `ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorrentRef {
    /// Its numeric id.
    Id(u64),
    /// Its info-hash.
    Hash(InfoHash),
}

/// Which torrents a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// No `ids`: every torrent.
    All,
    /// These torrents (unknown ones are skipped).
    Some(Vec<TorrentRef>),
    /// `"recently-active"`: torrents active in the last minute, and the ids removed in it.
    RecentlyActive,
}

fn one_ref(v: &Value) -> Result<TorrentRef, RequestError> {
    let bad = |problem: String| RequestError::Argument {
        key: "ids",
        problem,
    };
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(TorrentRef::Id)
            .ok_or_else(|| bad(format!("{n} is not a torrent id"))),
        Value::String(s) => {
            if let Some(h) = InfoHash::from_hex(s.trim()) {
                Ok(TorrentRef::Hash(h))
            } else if let Ok(id) = s.trim().parse::<u64>() {
                Ok(TorrentRef::Id(id))
            } else {
                Err(bad(format!(
                    "{s:?} is neither a torrent id nor an info-hash"
                )))
            }
        }
        other => Err(bad(format!(
            "{other} is neither a torrent id nor an info-hash"
        ))),
    }
}

/// Reads `ids` from a method's arguments.
pub fn selector(args: &Map<String, Value>) -> Result<Selector, RequestError> {
    match args.get("ids") {
        None | Some(Value::Null) => Ok(Selector::All),
        Some(Value::String(s)) if s == "recently-active" => Ok(Selector::RecentlyActive),
        Some(Value::Array(list)) => list
            .iter()
            .map(one_ref)
            .collect::<Result<_, _>>()
            .map(Selector::Some),
        Some(one) => one_ref(one).map(|r| Selector::Some(vec![r])),
    }
}

/// An optional argument of one type; present with another type is an error.
pub fn opt<'a, T>(
    args: &'a Map<String, Value>,
    key: &'static str,
    read: impl Fn(&'a Value) -> Option<T>,
    what: &str,
) -> Result<Option<T>, RequestError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| RequestError::Argument {
            key,
            problem: format!("{v} is not {what}"),
        }),
    }
}

/// An optional boolean (Transmission's clients also send 0 and 1).
pub fn opt_bool(
    args: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<bool>, RequestError> {
    opt(
        args,
        key,
        |v| match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            _ => None,
        },
        "a boolean",
    )
}

/// An optional integer.
pub fn opt_i64(args: &Map<String, Value>, key: &'static str) -> Result<Option<i64>, RequestError> {
    opt(
        args,
        key,
        |v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)),
        "an integer",
    )
}

/// An optional number.
pub fn opt_f64(args: &Map<String, Value>, key: &'static str) -> Result<Option<f64>, RequestError> {
    opt(args, key, Value::as_f64, "a number")
}

/// An optional string.
pub fn opt_str<'a>(
    args: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, RequestError> {
    opt(args, key, Value::as_str, "a string")
}

/// An optional list of file indices.
pub fn opt_indices(
    args: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Vec<usize>>, RequestError> {
    opt(
        args,
        key,
        |v| {
            v.as_array()?
                .iter()
                .map(|i| i.as_u64().and_then(|i| usize::try_from(i).ok()))
                .collect()
        },
        "a list of file indices",
    )
}

/// An optional list of strings.
pub fn opt_strings(
    args: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Vec<String>>, RequestError> {
    opt(
        args,
        key,
        |v| {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(String::from))
                .collect()
        },
        "a list of strings",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: &str, expected: Result<(&str, Value, Option<Value>), &str>) {
        let got = parse(body.as_bytes());
        match (got, expected) {
            (Ok(r), Ok((method, args, tag))) => {
                assert_eq!(r.method, method, "{body}");
                assert_eq!(Value::Object(r.arguments), args, "{body}");
                assert_eq!(r.tag, tag, "{body}");
            }
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{body}: {e}"),
            (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn requests_parse_or_say_why_not() {
        check(
            r#"{"method":"session-get"}"#,
            Ok(("session-get", json!({}), None)),
        );
        check(
            r#"{"method":"torrent-get","arguments":{"fields":["id"]},"tag":7}"#,
            Ok(("torrent-get", json!({"fields": ["id"]}), Some(json!(7)))),
        );
        check(
            r#"{"method":"x","arguments":null,"tag":null}"#,
            Ok(("x", json!({}), None)),
        );
        check("", Err("malformed request"));
        check("{", Err("malformed request"));
        check("[1,2]", Err("not a JSON object"));
        check(r#"{"arguments":{}}"#, Err("no method"));
        check(r#"{"method":5}"#, Err("method: not a string"));
        check(
            r#"{"method":"x","arguments":[1]}"#,
            Err("arguments: not an object"),
        );
        check("\u{0}\u{ff}", Err("malformed request"));
    }

    #[test]
    fn ids_take_numbers_hashes_and_recently_active() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        let h = TorrentRef::Hash(InfoHash::from_hex(hash).unwrap());
        let sel = |v: Value| selector(v.as_object().unwrap());
        assert_eq!(sel(json!({})), Ok(Selector::All));
        assert_eq!(
            sel(json!({"ids": 3})),
            Ok(Selector::Some(vec![TorrentRef::Id(3)]))
        );
        assert_eq!(sel(json!({"ids": hash})), Ok(Selector::Some(vec![h])));
        assert_eq!(
            sel(json!({"ids": [1, hash, "2"]})),
            Ok(Selector::Some(vec![
                TorrentRef::Id(1),
                h,
                TorrentRef::Id(2)
            ]))
        );
        assert_eq!(
            sel(json!({"ids": "recently-active"})),
            Ok(Selector::RecentlyActive)
        );
        for bad in [
            json!({"ids": -1}),
            json!({"ids": "abc"}),
            json!({"ids": [true]}),
        ] {
            assert!(
                matches!(
                    sel(bad.clone()),
                    Err(RequestError::Argument { key: "ids", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn typed_arguments_refuse_the_wrong_type() {
        let args = json!({"a": true, "n": 5, "s": "x", "l": [0, 2], "f": 1.5, "b": 1});
        let args = args.as_object().unwrap();
        assert_eq!(opt_bool(args, "a"), Ok(Some(true)));
        assert_eq!(opt_bool(args, "b"), Ok(Some(true)));
        assert_eq!(opt_bool(args, "missing"), Ok(None));
        assert!(opt_bool(args, "s").is_err());
        assert_eq!(opt_i64(args, "n"), Ok(Some(5)));
        assert!(opt_i64(args, "s").is_err());
        assert_eq!(opt_f64(args, "f"), Ok(Some(1.5)));
        assert_eq!(opt_str(args, "s"), Ok(Some("x")));
        assert_eq!(opt_indices(args, "l"), Ok(Some(vec![0, 2])));
        assert!(opt_indices(args, "n").is_err());
        assert!(opt_strings(args, "l").is_err());
    }
}
