//! `--encryption`: which peer connections use MSE/PE.

use bt_engine::EncryptionPolicy;

/// The `--encryption` choices, as the engine's policies.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Mode {
    /// Plaintext only: encrypted handshakes are refused and never tried.
    Disabled,
    /// Accept both; dial in plaintext, and again encrypted if the peer hangs up; when a
    /// peer offers both, keep the data in plaintext (the handshake is still obfuscated).
    #[default]
    Enabled,
    /// Accept both; dial encrypted; choose RC4 whenever the peer offers it.
    Preferred,
    /// RC4-encrypted connections only, both ways.
    Required,
}

/// Options shared by `download` and `seed`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct EncryptionArgs {
    /// Peer connection encryption (MSE/PE).
    #[arg(long, value_enum, default_value_t = Mode::Enabled)]
    pub encryption: Mode,
}

impl EncryptionArgs {
    /// The engine's policy.
    pub fn policy(self) -> EncryptionPolicy {
        match self.encryption {
            Mode::Disabled => EncryptionPolicy::Disabled,
            Mode::Enabled => EncryptionPolicy::Enabled,
            Mode::Preferred => EncryptionPolicy::Preferred,
            Mode::Required => EncryptionPolicy::Required,
        }
    }
}
