//! The peer wire protocol (BEP 3, 6, 10): handshake, messages and tokio-util codecs.
