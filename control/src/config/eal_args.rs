//! Reading `dpdk.args` the way EAL does: option values and PCI addresses (config checks, doctor).

/// The values of an EAL option given as `-x V`, `-xV`, `--opt V` or `--opt=V`.
pub fn option_values<'a>(args: &'a [String], short: &str, long: &str) -> Vec<&'a str> {
    let mut values = Vec::new();
    let mut iter = args.iter().map(String::as_str);
    while let Some(arg) = iter.next() {
        if arg == short || arg == long {
            values.extend(iter.next());
        } else if let Some(v) = arg.strip_prefix(long).and_then(|v| v.strip_prefix('=')) {
            values.push(v);
        } else if let Some(v) = arg
            .strip_prefix(short)
            .filter(|v| !arg.starts_with("--") && !v.is_empty())
        {
            values.push(v);
        }
    }
    values
}

/// `0000:3b:00.0` for `3b:00.0` or `0000:3B:00.0`; `None` if `s` is not a PCI address.
pub fn pci_address(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    let full = if s.matches(':').count() == 1 {
        format!("0000:{s}")
    } else {
        s
    };
    let (domain, rest) = full.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (device, function) = rest.split_once('.')?;
    let hex = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(domain, 4) && hex(bus, 2) && hex(device, 2) && hex(function, 1)).then_some(full)
}
