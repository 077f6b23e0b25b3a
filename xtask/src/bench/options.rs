//! The command line of `cargo xtask bench`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::payload::MIB;

/// Piece length of the large payload: per-byte costs dominate.
pub const LARGE_PIECE_LEN: u64 = MIB;
/// Piece length of the small payload: per-piece and per-message costs dominate.
pub const SMALL_PIECE_LEN: u64 = 16 * 1024;

/// Usage text of `cargo xtask bench`.
pub const USAGE: &str = "\
usage: cargo xtask bench [OPTIONS]

Downloads made-up payloads over 127.0.0.1 with bt and the other installed clients, one
at a time from the same seeder, in a different order each round; prints medians and
writes target/bench/bench-<timestamp>.json.

options:
  --size SIZE        large payload, 1 MiB pieces (default 1GiB)
  --small-size SIZE  small payload, 16 KiB pieces (default 256MiB; 0 skips it)
  --rounds N         rounds over all clients (default 3)
  --quick            smoke run: --size 64MiB --small-size 16MiB --rounds 1
  --only WORD,...    only some pairs: a client name (bt, libtorrent, aria2,
                     transmission, qbittorrent, ctorrent) selects the pairs it is
                     in; a WORD with `->` selects the pairs whose `seeder->leecher`
                     contains it
  --bt PATH          benchmark this bt binary (no build)
  --micro            run the criterion micro-benches instead (short measurement times)
SIZE is a number with an optional K, M, G (or KiB, MiB, GiB) suffix; a bare number is MiB.
";

/// Parsed options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Length of the large payload in bytes.
    pub size: u64,
    /// Length of the small payload in bytes (0: none).
    pub small_size: u64,
    /// Rounds over all pairs.
    pub rounds: usize,
    /// Only pairs whose name contains one of these.
    pub only: Vec<String>,
    /// Use this bt binary instead of building one.
    pub bt: Option<PathBuf>,
    /// Run the micro-benches instead of the loopback benchmark.
    pub micro: bool,
    /// `--quick` was given.
    pub quick: bool,
}

impl Options {
    /// Parses the arguments after `bench`.
    pub fn parse(args: &[&str]) -> Result<Self> {
        let (mut size, mut small_size, mut rounds) = (None, None, None);
        let mut opts = Options {
            size: 0,
            small_size: 0,
            rounds: 0,
            only: Vec::new(),
            bt: None,
            micro: false,
            quick: false,
        };
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg {
                "--size" => size = Some(parse_size(value()?)?),
                "--small-size" => small_size = Some(parse_size(value()?)?),
                "--rounds" => {
                    let text = value()?;
                    let n: usize = text
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| format!("bad --rounds {text:?}"))?;
                    rounds = Some(n);
                }
                "--quick" => opts.quick = true,
                "--micro" => opts.micro = true,
                "--only" => {
                    let words = value()?.split(',').map(str::trim).filter(|w| !w.is_empty());
                    opts.only.extend(words.map(str::to_owned));
                }
                "--bt" => {
                    let path = value()?;
                    let path = std::path::absolute(path)
                        .with_context(|| format!("bad --bt path {path:?}"))?;
                    opts.bt = Some(path);
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown bench argument {other:?}\n{USAGE}"),
            }
        }
        let (quick_size, quick_small, quick_rounds) = (64 * MIB, 16 * MIB, 1);
        let (def_size, def_small, def_rounds) = (1024 * MIB, 256 * MIB, 3);
        opts.size = size.unwrap_or(if opts.quick { quick_size } else { def_size });
        opts.small_size = small_size.unwrap_or(if opts.quick { quick_small } else { def_small });
        opts.rounds = rounds.unwrap_or(if opts.quick { quick_rounds } else { def_rounds });
        if opts.size == 0 {
            bail!("--size must be more than 0");
        }
        Ok(opts)
    }

    /// True if the pair named `name` (`seeder->leecher`) is selected by `--only`: a
    /// word naming either client, or a word with `->` that the name contains.
    pub fn selects(&self, name: &str) -> bool {
        let clients: Vec<&str> = name.split("->").collect();
        self.only.is_empty()
            || self.only.iter().any(|w| {
                if w.contains("->") {
                    name.contains(w.as_str())
                } else {
                    clients.contains(&w.as_str())
                }
            })
    }
}

/// Parses `64`, `64M`, `64MiB`, `1G`, `1GiB`, `512K`... into bytes (bare numbers are MiB).
pub fn parse_size(text: &str) -> Result<u64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let number: u64 = digits
        .parse()
        .with_context(|| format!("bad size {text:?}"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mib" => MIB,
        "k" | "kib" => 1024,
        "g" | "gib" => 1024 * MIB,
        _ => bail!("bad size unit in {text:?} (use K, M or G)"),
    };
    number
        .checked_mul(scale)
        .with_context(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_size(text: &str, expected: Option<u64>) {
        assert_eq!(parse_size(text).ok(), expected, "{text}");
    }

    #[test]
    fn sizes() {
        check_size("64", Some(64 * MIB));
        check_size("64M", Some(64 * MIB));
        check_size("64MiB", Some(64 * MIB));
        check_size("1G", Some(1024 * MIB));
        check_size("1gib", Some(1024 * MIB));
        check_size("512K", Some(512 * 1024));
        check_size("0", Some(0));
        check_size("1T", None);
        check_size("M", None);
        check_size("-1", None);
        check_size("99999999999999G", None);
    }

    #[test]
    fn defaults_quick_and_overrides() {
        let opts = Options::parse(&[]).unwrap();
        assert_eq!(
            (opts.size, opts.small_size, opts.rounds),
            (1024 * MIB, 256 * MIB, 3)
        );
        let opts = Options::parse(&["--quick"]).unwrap();
        assert_eq!(
            (opts.size, opts.small_size, opts.rounds),
            (64 * MIB, 16 * MIB, 1)
        );
        let opts = Options::parse(&["--rounds", "2", "--quick", "--small-size", "0"]).unwrap();
        assert_eq!((opts.size, opts.small_size, opts.rounds), (64 * MIB, 0, 2));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for args in [
            &["--rounds", "0"][..],
            &["--rounds"],
            &["--size", "0"],
            &["--size", "lots"],
            &["--frobnicate"],
        ] {
            assert!(Options::parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn only_selects_by_substring() {
        let all = Options::parse(&[]).unwrap();
        assert!(all.selects("libtorrent->bt"));
        let some = Options::parse(&["--only", "bt->,aria2"]).unwrap();
        assert!(some.selects("bt->libtorrent"));
        assert!(some.selects("libtorrent->aria2"));
        assert!(!some.selects("libtorrent->transmission"));
        assert!(!some.selects("libtorrent->bt"));
        // A client name is a whole name: `bt` is not in `libtorrent`.
        let bt = Options::parse(&["--only", "bt"]).unwrap();
        assert!(bt.selects("libtorrent->bt") && bt.selects("bt->libtorrent"));
        assert!(!bt.selects("libtorrent->libtorrent"));
    }
}
