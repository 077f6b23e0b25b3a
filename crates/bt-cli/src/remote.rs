//! The subcommands that drive a running `bt daemon` through its qBittorrent Web API:
//! `bt add`, `ls`, `show`, `stop`, `start`, `rm` and `set`. They hold no torrent state of
//! their own; each run logs in, makes its requests and prints the answer.

pub mod add;
mod client;
pub mod control;
mod fields;
pub mod list;
mod select;
pub mod set;
pub mod show;
mod table;

use clap::Args;

/// Where the daemon's API is, for every remote subcommand.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The daemon's Web API [env: BT_API; default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    api: Option<String>,
}

/// The daemon's address when neither `--api` nor `BT_API` names one.
const DEFAULT_API: &str = "http://127.0.0.1:8080";

impl ApiArgs {
    /// The base URL: `--api`, else `BT_API`, else [`DEFAULT_API`], normalized.
    fn base_url(&self) -> String {
        let raw = self
            .api
            .clone()
            .or_else(|| {
                std::env::var("BT_API")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_API.to_string());
        normalize_base(&raw)
    }

    /// Logs in to the daemon.
    fn connect(&self) -> Result<client::Client, client::ApiError> {
        client::Client::connect(&self.base_url())
    }
}

/// `127.0.0.1:8080`, `http://127.0.0.1:8080/` and `http://127.0.0.1:8080/api/v2` all name
/// the same API: the URL before `/api/v2/`, with a scheme and no trailing slash.
fn normalize_base(raw: &str) -> String {
    let raw = raw.trim();
    let mut url = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    while url.ends_with('/') {
        url.pop();
    }
    if let Some(stripped) = url.strip_suffix("/api/v2") {
        url = stripped.to_string();
    }
    url
}

#[cfg(test)]
mod tests {
    use super::normalize_base;

    #[test]
    fn api_urls_are_normalized() {
        for raw in [
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            " http://127.0.0.1:8080/api/v2/ ",
        ] {
            assert_eq!(normalize_base(raw), "http://127.0.0.1:8080", "{raw:?}");
        }
        assert_eq!(
            normalize_base("https://box.lan/qbt/"),
            "https://box.lan/qbt"
        );
    }
}
