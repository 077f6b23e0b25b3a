//! Which torrents a command's HASH arguments name: a whole info-hash or a prefix of one
//! that only one torrent has, looked up in `torrents/info`.

use std::fmt;

use serde_json::Value;

use super::client::{ApiError, Client};

/// Why a HASH argument names no single torrent.
#[derive(Debug, PartialEq, Eq)]
pub enum SelectError {
    /// Not hex digits, or longer than an info-hash.
    NotHex(String),
    /// No torrent's info-hash starts with it.
    Unknown(String),
    /// Several torrents' info-hashes start with it (the argument, and theirs).
    Ambiguous(String, Vec<String>),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NotHex(arg) => write!(
                f,
                "{arg:?} is not an info-hash or the start of one (up to 40 hex digits)"
            ),
            SelectError::Unknown(arg) => write!(f, "no torrent {arg}"),
            SelectError::Ambiguous(arg, hashes) => {
                const SHOWN: usize = 4;
                write!(
                    f,
                    "ambiguous hash prefix {arg}: it matches {}",
                    hashes[..hashes.len().min(SHOWN)].join(", ")
                )?;
                if hashes.len() > SHOWN {
                    write!(f, " and {} more", hashes.len() - SHOWN)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SelectError {}

/// The info-hash of a torrent object from `torrents/info`.
pub fn hash(t: &Value) -> &str {
    t["hash"].as_str().unwrap_or("")
}

/// The name of a torrent object from `torrents/info`.
pub fn name(t: &Value) -> &str {
    t["name"].as_str().unwrap_or("")
}

/// Every torrent the daemon holds, as `torrents/info` lists them.
pub fn all(client: &Client) -> Result<Vec<Value>, ApiError> {
    list(client, &[])
}

/// The torrents `torrents/info` lists for `query`.
pub fn list(client: &Client, query: &[(&str, &str)]) -> Result<Vec<Value>, ApiError> {
    match client.get_json("torrents/info", query)? {
        Value::Array(rows) => Ok(rows),
        other => Err(ApiError::Other {
            what: "torrents/info".into(),
            message: format!("expected a JSON array, got {}", kind(&other)),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The index in `hashes` of the one torrent `arg` names.
fn pick(hashes: &[&str], arg: &str) -> Result<usize, SelectError> {
    let wanted = arg.trim().to_ascii_lowercase();
    if wanted.is_empty() || wanted.len() > 40 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SelectError::NotHex(arg.to_string()));
    }
    let found: Vec<usize> = hashes
        .iter()
        .enumerate()
        .filter(|(_, h)| h.to_ascii_lowercase().starts_with(&wanted))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [] => Err(SelectError::Unknown(arg.to_string())),
        [one] => Ok(*one),
        many => Err(SelectError::Ambiguous(
            arg.to_string(),
            many.iter().map(|&i| hashes[i].to_string()).collect(),
        )),
    }
}

/// The torrents in `torrents` that `args` name, in the arguments' order, each once.
pub fn pick_all(torrents: &[Value], args: &[String]) -> Result<Vec<Value>, SelectError> {
    let hashes: Vec<&str> = torrents.iter().map(hash).collect();
    let mut out: Vec<Value> = Vec::new();
    for arg in args {
        let t = &torrents[pick(&hashes, arg)?];
        if !out.iter().any(|o| hash(o) == hash(t)) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The torrents `args` name, looked up in the daemon's list.
pub fn resolve(client: &Client, args: &[String]) -> anyhow::Result<Vec<Value>> {
    let torrents = all(client)?;
    Ok(pick_all(&torrents, args)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "01ff456789abcdef0123456789abcdef01234567";
    const C: &str = "fedcba9876543210fedcba9876543210fedcba98";

    #[test]
    fn a_unique_prefix_or_a_whole_hash_names_one_torrent() {
        let hashes = [A, B, C];
        assert_eq!(pick(&hashes, "0123"), Ok(0));
        assert_eq!(pick(&hashes, "01F"), Ok(1));
        assert_eq!(pick(&hashes, "f"), Ok(2));
        assert_eq!(pick(&hashes, C), Ok(2));
        assert_eq!(pick(&hashes, &A.to_uppercase()), Ok(0));
    }

    #[test]
    fn an_unknown_ambiguous_or_malformed_prefix_is_an_error_naming_it() {
        let hashes = [A, B, C];
        assert_eq!(
            pick(&hashes, "01"),
            Err(SelectError::Ambiguous(
                "01".into(),
                vec![A.into(), B.into()]
            ))
        );
        assert_eq!(
            pick(&hashes, "02").unwrap_err().to_string(),
            "no torrent 02"
        );
        assert_eq!(
            pick(&hashes, "01").unwrap_err().to_string(),
            format!("ambiguous hash prefix 01: it matches {A}, {B}")
        );
        for bad in ["", "xyz", "0123 4", &format!("{A}0")] {
            assert_eq!(
                pick(&hashes, bad),
                Err(SelectError::NotHex(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(pick(&[], A), Err(SelectError::Unknown(A.into())));
    }

    #[test]
    fn the_same_torrent_named_twice_is_picked_once() {
        let torrents: Vec<Value> = [A, B, C]
            .iter()
            .map(|h| serde_json::json!({"hash": h, "name": "x"}))
            .collect();
        let picked = pick_all(&torrents, &["fe".into(), "0123".into(), C.into()]).unwrap();
        let hashes: Vec<&str> = picked.iter().map(hash).collect();
        assert_eq!(hashes, [C, A]);
    }
}
