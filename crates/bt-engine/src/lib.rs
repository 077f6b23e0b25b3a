//! The engine: piece picker, choker, storage and the tokio driver that downloads and seeds torrents.
pub mod choker;
pub mod picker;
pub mod resume;
pub mod storage;
