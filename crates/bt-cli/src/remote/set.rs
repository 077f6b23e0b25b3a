//! `bt set HASH... [--category C] [--add-tag T]... [--remove-tag T]...`: changes torrents'
//! category and tags.

use anyhow::{bail, Result};

use super::add::{check_tag, ensure_category};
use super::control::print_done;
use super::{select, ApiArgs};

/// Arguments of `bt set`.
#[derive(clap::Args)]
pub struct Args {
    /// Info-hashes, or starts of them that no other torrent shares.
    #[arg(value_name = "HASH", required = true)]
    hashes: Vec<String>,
    /// Put the torrents in this category (created if the daemon has none of that name;
    /// `""`: in none).
    #[arg(long, value_name = "NAME")]
    category: Option<String>,
    /// Add a tag; repeat for more.
    #[arg(long = "add-tag", value_name = "TAG")]
    add_tags: Vec<String>,
    /// Remove a tag; repeat for more.
    #[arg(long = "remove-tag", value_name = "TAG")]
    remove_tags: Vec<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `bt set`.
pub fn run(args: Args) -> Result<()> {
    if args.category.is_none() && args.add_tags.is_empty() && args.remove_tags.is_empty() {
        bail!("nothing to set: give --category, --add-tag or --remove-tag");
    }
    for t in args.add_tags.iter().chain(&args.remove_tags) {
        check_tag(t)?;
    }
    if let Some(t) = args.add_tags.iter().find(|t| args.remove_tags.contains(t)) {
        bail!("tag {t:?} is both added and removed");
    }
    let client = args.api.connect()?;
    let torrents = select::resolve(&client, &args.hashes)?;
    let hashes = torrents
        .iter()
        .map(select::hash)
        .collect::<Vec<_>>()
        .join("|");
    if let Some(category) = &args.category {
        ensure_category(&client, category)?;
        client.post_form(
            "torrents/setCategory",
            &[("hashes", &hashes), ("category", category)],
        )?;
    }
    for (endpoint, tags) in [
        ("torrents/addTags", &args.add_tags),
        ("torrents/removeTags", &args.remove_tags),
    ] {
        if !tags.is_empty() {
            client.post_form(endpoint, &[("hashes", &hashes), ("tags", &tags.join(","))])?;
        }
    }
    print_done(&torrents, "updated")
}
