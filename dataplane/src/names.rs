//! The text of the service enums (config values, `/state`, log lines): one table per enum,
//! which parsing, error messages and display all read.

use crate::snapshot::{Forwarding, HashKind, Proto, WhenAllDown};

/// Gives a fieldless enum `ALL`, `as_str` and `Display` from one variant-to-spelling table;
/// exported so the control crate's enums (`Lifecycle`, `CheckKind`) are spelled the same way.
#[macro_export]
macro_rules! spelled {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value with its spelling, in declaration order.
            pub const ALL: &'static [($name, &'static str)] = &[$(($name::$variant, $text)),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled!(Proto { Tcp = "tcp", Udp = "udp" });
spelled!(HashKind { FiveTuple = "five-tuple", SourceIp = "source-ip" });
spelled!(Forwarding {
    Ipip = "ipip",
    Gue = "gue",
    L2Dsr = "l2-dsr",
    Nat = "nat",
    FullNat = "fullnat",
});
spelled!(WhenAllDown { Drop = "drop", ForwardAnyway = "forward-anyway" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_spelled_once() {
        let texts: Vec<&str> = Forwarding::ALL.iter().map(|(_, t)| *t).collect();
        assert_eq!(texts, ["ipip", "gue", "l2-dsr", "nat", "fullnat"]);
        for &(v, t) in Forwarding::ALL {
            assert_eq!(v.as_str(), t);
            assert_eq!(v.to_string(), t);
        }
        assert_eq!(Proto::Udp.as_str(), "udp");
        assert_eq!(HashKind::SourceIp.as_str(), "source-ip");
        assert_eq!(WhenAllDown::ForwardAnyway.as_str(), "forward-anyway");
    }
}
