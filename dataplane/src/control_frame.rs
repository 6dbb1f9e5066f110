//! A frame a worker hands to control (ARP replies, neighbour advertisements), copied whole
//! into a fixed-size buffer so the hand-over allocates nothing.

/// The longest frame control is handed: an advertisement with a few options (a VLAN tag, a
/// nonce, the link-layer address) fits; a longer one is refused, never cut short, because
/// control re-parses the frame and a cut one would fail its length check unseen.
pub const CONTROL_FRAME_MAX: usize = 256;

#[derive(Clone, Copy)]
pub struct ControlFrame {
    pub port: u16,
    len: u16,
    bytes: [u8; CONTROL_FRAME_MAX],
}

impl ControlFrame {
    /// A copy of `data` from `port`, or `None` if it is longer than [`CONTROL_FRAME_MAX`].
    pub fn copy_of(port: u16, data: &[u8]) -> Option<Self> {
        let mut f = Self {
            port,
            len: u16::try_from(data.len()).ok()?,
            bytes: [0; CONTROL_FRAME_MAX],
        };
        f.bytes.get_mut(..data.len())?.copy_from_slice(data);
        Some(f)
    }

    pub fn data(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(CONTROL_FRAME_MAX)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_up_to_the_limit_is_copied_whole_and_a_longer_one_refused() {
        for len in [0, 60, 86, 129, 200, CONTROL_FRAME_MAX] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let f = ControlFrame::copy_of(3, &data).expect("fits");
            assert_eq!((f.port, f.data()), (3, &data[..]), "{len} bytes");
        }
        for len in [CONTROL_FRAME_MAX + 1, 1514, 70_000] {
            assert!(ControlFrame::copy_of(3, &vec![0; len]).is_none(), "{len}");
        }
    }
}
