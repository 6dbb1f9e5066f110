//! The worker cores an EAL command line gives: `-l`/`--lcores` lists or a `-c` mask, minus the main lcore.
use std::collections::BTreeSet;

/// EAL's default RTE_MAX_LCORE; larger ids cannot be valid and would make huge sets.
pub const MAX_LCORE: u32 = 1023;

/// The lcores enabled by the EAL arguments and which one is the main lcore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalCores {
    pub lcores: BTreeSet<u32>,
    pub main: u32,
    /// Index in `args` of the core list or mask value, for error locations.
    pub list_arg: usize,
}

impl EalCores {
    /// Cores left for packet workers.
    pub fn workers(&self) -> usize {
        self.lcores.len() - usize::from(self.lcores.contains(&self.main))
    }
}

/// A bad core option: the index of the offending argument, what was expected, what was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreArgError {
    pub arg: usize,
    pub expected: String,
    pub got: String,
}

/// Find the core list in EAL `args`. `Ok(None)` when they name no cores (EAL then uses every core).
pub fn eal_cores(args: &[String]) -> Result<Option<EalCores>, CoreArgError> {
    let mut list: Option<(usize, BTreeSet<u32>)> = None;
    let mut main: Option<(usize, u32)> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        // (option, value, index of the value) for options given as `-x V`, `-xV` or `--opt=V`.
        let mut take = |flag: &str, long: bool| -> Option<Result<(usize, &str), CoreArgError>> {
            if arg == flag {
                i += 1;
                return Some(match args.get(i) {
                    Some(v) => Ok((i, v.as_str())),
                    None => Err(CoreArgError {
                        arg: i - 1,
                        expected: format!("a value after {flag}"),
                        got: "the end of the arguments".to_owned(),
                    }),
                });
            }
            let rest = arg.strip_prefix(flag)?;
            let rest = if long { rest.strip_prefix('=')? } else { rest };
            Some(Ok((i, rest)))
        };
        if let Some(v) = take("--lcores", true).or_else(|| take("-l", false)) {
            let (at, text) = v?;
            let cores = parse_core_list(text).ok_or_else(|| CoreArgError {
                arg: at,
                expected: format!("an lcore list such as 0-2,4 (ids 0-{MAX_LCORE})"),
                got: format!("{text:?}"),
            })?;
            list = Some((at, cores));
        } else if let Some(v) = take("--main-lcore", true) {
            let (at, text) = v?;
            let id = parse_id(text).ok_or_else(|| CoreArgError {
                arg: at,
                expected: format!("an lcore id 0-{MAX_LCORE}"),
                got: format!("{text:?}"),
            })?;
            main = Some((at, id));
        } else if let Some(v) = take("-c", false) {
            let (at, text) = v?;
            let cores = parse_mask(text).ok_or_else(|| CoreArgError {
                arg: at,
                expected: "a non-zero hexadecimal core mask such as 0x7".to_owned(),
                got: format!("{text:?}"),
            })?;
            list = Some((at, cores));
        }
        i += 1;
    }
    let Some((list_arg, lcores)) = list else {
        return Ok(None);
    };
    let Some(&first) = lcores.first() else {
        return Ok(None);
    };
    let main = match main {
        None => first,
        Some((_, id)) if lcores.contains(&id) => id,
        Some((at, id)) => {
            return Err(CoreArgError {
                arg: at,
                expected: format!("a main lcore from the core list {}", format_cores(&lcores)),
                got: id.to_string(),
            })
        }
    };
    Ok(Some(EalCores {
        lcores,
        main,
        list_arg,
    }))
}

fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&n| n <= MAX_LCORE)
}

/// `0-2,4` and `--lcores` forms such as `(0-1)@2,3@4`: the lcore ids before each `@`.
fn parse_core_list(text: &str) -> Option<BTreeSet<u32>> {
    let mut cores = BTreeSet::new();
    for element in split_top_level(text)? {
        let ids = element.split_once('@').map_or(element, |(ids, _cpus)| ids);
        let ids = match ids.strip_prefix('(') {
            Some(inner) => inner.strip_suffix(')')?,
            None => ids,
        };
        for part in ids.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (parse_id(lo)?, parse_id(hi)?),
                None => (parse_id(part)?, parse_id(part)?),
            };
            if lo > hi {
                return None;
            }
            cores.extend(lo..=hi);
        }
    }
    (!cores.is_empty()).then_some(cores)
}

/// Split on commas outside parentheses; `None` if parentheses do not balance.
fn split_top_level(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    (depth == 0).then(|| {
        parts.push(&text[start..]);
        parts
    })
}

fn parse_mask(text: &str) -> Option<BTreeSet<u32>> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mask = u128::from_str_radix(hex, 16).ok()?;
    let cores: BTreeSet<u32> = (0..128).filter(|b| mask >> b & 1 == 1).collect();
    (!cores.is_empty()).then_some(cores)
}

/// `0-2,4` style.
pub fn format_cores(cores: &BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = cores.iter().copied().peekable();
    while let Some(lo) = iter.next() {
        let mut hi = lo;
        while iter.peek() == Some(&(hi + 1)) {
            hi += 1;
            iter.next();
        }
        out.push(if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn set(a: &[u32]) -> BTreeSet<u32> {
        a.iter().copied().collect()
    }

    #[test]
    fn reads_lists_masks_and_the_main_lcore() {
        let c = eal_cores(&args(&["-l", "0-2", "--main-lcore", "0", "-a", "x"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.lcores.clone(), c.main, c.workers(), c.list_arg),
            (set(&[0, 1, 2]), 0, 2, 1)
        );
        let c = eal_cores(&args(&["-l1,3-4"])).unwrap().unwrap();
        assert_eq!((c.main, c.workers()), (1, 2));
        let c = eal_cores(&args(&["--lcores=(0-1)@0,2@1", "--main-lcore=2"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.lcores.clone(), c.main, c.workers()),
            (set(&[0, 1, 2]), 2, 2)
        );
        let c = eal_cores(&args(&["-c", "0xf"])).unwrap().unwrap();
        assert_eq!(c.workers(), 3);
        assert_eq!(
            eal_cores(&args(&["--no-huge", "-a", "0000:3b:00.0"])),
            Ok(None)
        );
    }

    #[test]
    fn rejects_bad_core_options_with_the_argument_index() {
        for (a, at) in [
            (&["-l", "2-0"][..], 1),
            (&["-l"][..], 0),
            (&["-l", "0-99999"][..], 1),
            (&["-l", "x"][..], 1),
            (&["--lcores", "(0-1@2"][..], 1),
            (&["-c", "0x0"][..], 1),
            (&["-c", "+f"][..], 1),
            (&["-l", "0-1", "--main-lcore", "5"][..], 3),
        ] {
            assert_eq!(eal_cores(&args(a)).map_err(|e| e.arg), Err(at), "{a:?}");
        }
    }

    #[test]
    fn formats_ranges() {
        assert_eq!(format_cores(&set(&[0, 1, 2, 4, 6, 7])), "0-2,4,6-7");
    }
}
