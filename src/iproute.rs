//! Reading what iproute2 prints: the host routes of `ip route show` (the exception path's
//! announce table, `src/appliance/kernel.rs`).
use std::net::IpAddr;

/// The host-route destinations in `ip route show` output: each line's first word, with or
/// without its /32 or /128; other prefixes and lines that start with no address are skipped.
pub fn route_destinations(text: &str) -> impl Iterator<Item = IpAddr> + '_ {
    text.lines().filter_map(|line| {
        let dst = line.split_whitespace().next()?;
        let (addr, len) = dst.split_once('/').unwrap_or((dst, ""));
        let addr: IpAddr = addr.parse().ok()?;
        let host = match addr {
            IpAddr::V4(_) => len.is_empty() || len == "32",
            IpAddr::V6(_) => len.is_empty() || len == "128",
        };
        host.then_some(addr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_destinations_are_the_host_routes() {
        let v4 = "198.51.100.10 proto static scope link \n198.51.100.0/24 proto kernel scope link src 198.51.100.1 \n198.51.100.11/32 proto static\n";
        let v6 = "2001:db8::80 proto static metric 1024 pref medium\n2001:db8::/64 proto kernel metric 256 pref medium\n";
        let got: Vec<IpAddr> = route_destinations(v4)
            .chain(route_destinations(v6))
            .collect();
        let want: Vec<IpAddr> = ["198.51.100.10", "198.51.100.11", "2001:db8::80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert_eq!(route_destinations("").count(), 0);
        assert_eq!(route_destinations("unreachable 198.51.100.12\n").count(), 0);
    }
}
