//! The Kademlia DHT (BEP 5): KRPC messages, routing table, lookups and a UDP node.
