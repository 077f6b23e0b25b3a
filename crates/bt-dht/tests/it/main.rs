//! Cross-module tests: simulated networks of `Dht` state machines in virtual
//! time, and real `DhtNode`s on 127.0.0.1.

mod flood;
mod loopback;
mod sim;
