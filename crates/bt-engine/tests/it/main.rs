//! Cross-module tests of the engine: in-process sessions on 127.0.0.1.

mod crowd;
mod hostile;
mod magnet;
mod ratelimit;
mod recovery;
mod support;
mod trackers;
mod transfer;
