//! Path MTU discovery by probing: a binary search between a size every path carries and
//! the largest a UDP datagram on Ethernet can be.

/// The search for the largest datagram the path carries.
///
/// Ordinary packets are `floor` bytes (the largest size known to get through). While
/// `ceiling - floor` is more than [`MtuSearch::PRECISION`], one data packet at a time is
/// sent at the midpoint with the don't-fragment bit: acknowledged, it raises the floor;
/// lost, it lowers the ceiling below it. A lost probe is resent as an ordinary packet
/// that may be fragmented, so no data is stranded in a packet too big for the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtuSearch {
    floor: u16,
    ceiling: u16,
    probe: Option<(u16, u16)>,
}

impl MtuSearch {
    /// The search stops when the floor is within this many bytes of the ceiling.
    pub const PRECISION: u16 = 16;

    /// A search between `floor` (known to get through) and `ceiling` datagram bytes.
    pub fn new(floor: u16, ceiling: u16) -> Self {
        Self {
            floor,
            ceiling: ceiling.max(floor),
            probe: None,
        }
    }

    /// Datagram length for ordinary packets.
    pub fn packet_len(&self) -> u16 {
        self.floor
    }

    /// The upper bound still in play.
    pub fn ceiling(&self) -> u16 {
        self.ceiling
    }

    /// The size of the next probe, if one is due (none in flight, search not done).
    pub fn probe_len(&self) -> Option<u16> {
        if self.probe.is_some() || self.ceiling - self.floor <= Self::PRECISION {
            return None;
        }
        Some(self.floor + (self.ceiling - self.floor).div_ceil(2))
    }

    /// A probe of `len` bytes went out as packet `seq`.
    pub fn on_probe_sent(&mut self, seq: u16, len: u16) {
        self.probe = Some((seq, len));
    }

    /// Whether packet `seq` is the probe in flight.
    pub fn is_probe(&self, seq: u16) -> bool {
        self.probe.is_some_and(|(s, _)| s == seq)
    }

    /// Packet `seq` was acknowledged.
    pub fn on_acked(&mut self, seq: u16) {
        if let Some((s, len)) = self.probe {
            if s == seq {
                self.floor = self.floor.max(len).min(self.ceiling);
                self.probe = None;
            }
        }
    }

    /// Packet `seq` was declared lost.
    pub fn on_lost(&mut self, seq: u16) {
        if let Some((s, len)) = self.probe {
            if s == seq {
                self.ceiling = (len - 1).max(self.floor);
                self.probe = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a path that carries `path_mtu` bytes.
    fn converge(path_mtu: u16) -> (u16, usize) {
        let mut mtu = MtuSearch::new(1200, 1452);
        let mut probes = 0;
        let mut seq = 0;
        while let Some(len) = mtu.probe_len() {
            seq += 1;
            probes += 1;
            mtu.on_probe_sent(seq, len);
            assert!(mtu.probe_len().is_none(), "one probe at a time");
            if len <= path_mtu {
                mtu.on_acked(seq);
            } else {
                mtu.on_lost(seq);
            }
        }
        (mtu.packet_len(), probes)
    }

    #[test]
    fn binary_search_lands_within_precision_below_the_path_mtu() {
        for path in [1200, 1280, 1400, 1452, 1500] {
            let (found, probes) = converge(path);
            let path = path.min(1452);
            assert!(
                found <= path && path - found <= MtuSearch::PRECISION,
                "{path}: {found}"
            );
            assert!(probes <= 5, "{probes} probes");
        }
    }

    #[test]
    fn other_packets_do_not_move_the_bounds() {
        let mut mtu = MtuSearch::new(1200, 1452);
        mtu.on_probe_sent(7, 1326);
        mtu.on_acked(6);
        mtu.on_lost(8);
        assert_eq!((mtu.packet_len(), mtu.ceiling()), (1200, 1452));
        assert!(mtu.is_probe(7));
    }
}
