//! Tests of the torrent state machine, in virtual time.
