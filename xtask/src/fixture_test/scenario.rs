//! What a scenario is: [`Scenario`], the programs it [`Need`]s, and the [`Ctx`] it runs in.

use std::cell::RefCell;

use anyhow::Result;

use crate::layout;
use crate::peers::{bt::Bt, libtorrent, qbittorrent_api, transmission};
use crate::sandbox::Sandbox;

/// One fixture test.
pub struct Scenario {
    /// Unique kebab-case name; `harness-*` for self-tests of the harness.
    pub name: &'static str,
    /// What must be installed (or implemented) for it to run.
    pub needs: &'static [Need],
    /// The test itself.
    pub run: fn(&Ctx) -> Result<()>,
}

/// Something a scenario needs.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// python3-libtorrent importable by /usr/bin/python3.
    Libtorrent,
    /// transmission-daemon, transmission-remote, transmission-show.
    Transmission,
    /// aria2c.
    Aria2,
    /// opentracker.
    Opentracker,
    /// The `qbittorrent-api` Python package in its venv (see `peers::qbittorrent_api`).
    QbittorrentApi,
    /// The shared third-party fixtures at `../shared/fixtures`.
    SharedFixtures,
    /// Chromium, node, and `playwright-core` and `axe-core` in `webui-tests/node_modules`.
    Browser,
    /// `bt <subcommand>` is implemented (`bt <subcommand> --help` exits 0).
    Bt(&'static str),
}

/// Why a need is not met.
pub enum Unmet {
    /// An external program or data set is missing (a failure under CI).
    NotInstalled(String),
    /// A `bt` subcommand does not exist yet (a skip even under CI).
    NotImplemented(String),
}

impl Need {
    /// `None` if met, otherwise why not.
    pub fn check(&self, bt: &Bt) -> Option<Unmet> {
        let missing = |what: &str| Some(Unmet::NotInstalled(what.to_owned()));
        let program = |name: &str| layout::which(name).is_none().then(|| name.to_owned());
        match self {
            Need::Libtorrent => (!libtorrent::is_installed())
                .then(|| missing("python3-libtorrent"))
                .flatten(),
            Need::Transmission => transmission::missing_program().and_then(missing),
            Need::Aria2 => program("aria2c").and_then(|p| missing(&p)),
            Need::Opentracker => program("opentracker").and_then(|p| missing(&p)),
            Need::QbittorrentApi => qbittorrent_api::version().is_none().then(|| {
                Unmet::NotInstalled(format!(
                    "qbittorrent-api (pip, in the venv {})",
                    qbittorrent_api::venv().display()
                ))
            }),
            Need::Browser => super::webui::missing().and_then(|m| missing(&m)),
            Need::SharedFixtures => {
                let dir = layout::shared_fixtures();
                (!dir.is_dir())
                    .then(|| missing(&format!("shared fixtures ({})", dir.display())))
                    .flatten()
            }
            Need::Bt(sub) => (!bt.supports(sub))
                .then(|| Some(Unmet::NotImplemented(format!("bt {sub}"))))
                .flatten(),
        }
    }
}

/// What a running scenario gets: its sandbox and the `bt` under test.
pub struct Ctx<'a> {
    /// Temp dir, ports and process logs of this scenario.
    pub sandbox: Sandbox,
    /// The `bt` binary.
    pub bt: &'a Bt,
    /// Measurements worth showing on the scenario's `ok` line.
    pub notes: RefCell<Vec<String>>,
}

impl Ctx<'_> {
    /// Adds a measurement to the scenario's result line, e.g. `seed sent 1.9 copies`.
    pub fn note(&self, text: impl Into<String>) {
        self.notes.borrow_mut().push(text.into());
    }
}
