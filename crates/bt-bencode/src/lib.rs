//! Bencoding (BEP 3): decoding with byte spans, encoding, and serde support.
