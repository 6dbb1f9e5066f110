//! Where a key path sits in a config text, for messages outside the loader (a start error
//! that names the config line of a value the device refused).
use super::error::Location;
use super::location::LocationIndex;

/// The place of `path`'s value in `text`, and whether it is `path` itself (`false`: the key
/// is absent and the place is its nearest ancestor's). `None` for text that does not index.
pub fn locate(text: &str, path: &str) -> Option<(Location, bool)> {
    let index = LocationIndex::build(text).ok()?;
    if let Some(s) = index.exact(path) {
        return Some((s.value, true));
    }
    index.spot(path).map(|s| (s.value, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_absent_keys_are_located() {
        let text = "interfaces:\n  - name: a\n    mtu: 9000\n  - name: b\n";
        let at = |line, column| Location { line, column };
        assert_eq!(locate(text, "interfaces[0].mtu"), Some((at(3, 10), true)));
        assert_eq!(locate(text, "interfaces[1].mtu"), Some((at(4, 5), false)));
        assert_eq!(locate("", "a"), None);
    }
}
