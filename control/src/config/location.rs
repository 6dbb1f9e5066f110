//! Where each key path of a YAML document sits in the text, found by one pass over saphyr's events.
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser};

use super::error::Location;

/// Deeper nodes are not indexed: the schema is four levels deep, and a cap keeps paths short.
const MAX_DEPTH: usize = 16;

/// The text positions of one node: its key (inside a mapping) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spot {
    pub key: Option<Location>,
    pub value: Location,
}

/// Deeper documents are refused before yaml_serde sees them: its parser slows down badly on
/// very deep flow nesting, and no config needs more than a handful of levels.
pub(crate) const MAX_NESTING: usize = 64;

/// Key path (`services[1].vip`) to position. Nodes inside an alias's expansion are absent;
/// lookups then fall back to the nearest indexed ancestor.
#[derive(Debug, Default)]
pub(crate) struct LocationIndex {
    spots: HashMap<String, Spot>,
}

enum Frame {
    Seq {
        path: String,
        next: usize,
    },
    Map {
        path: String,
        /// The key just read (`None` for a non-scalar key), or nothing when a key comes next.
        key: Option<(Option<String>, Location)>,
    },
    /// A subtree that is not indexed (a complex key, or too deep); counts nested starts.
    Skip {
        depth: usize,
    },
}

fn location(m: Marker) -> Location {
    Location {
        line: m.line(),
        column: m.col() + 1,
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl LocationIndex {
    /// Index the first document of `text`; a parse error simply ends the index early.
    /// `Err` with the place where the nesting exceeds [`MAX_NESTING`].
    pub fn build(text: &str) -> Result<LocationIndex, Location> {
        let mut index = LocationIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut seen_root = false;
        let mut depth = 0usize;
        for item in Parser::new_from_str(text) {
            let (event, span) = match item {
                Ok(item) => item,
                // saphyr's own flow-nesting guard; other syntax errors are yaml_serde's to report.
                Err(e) if e.info().contains("recursion limit") => {
                    return Err(location(*e.marker()))
                }
                Err(_) => break,
            };
            let at = location(span.start);
            let starts = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
            if starts {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(at);
                }
            } else if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
                depth = depth.saturating_sub(1);
            }
            let node = starts || matches!(event, Event::Scalar(..) | Event::Alias(..));
            if let Some(Frame::Skip { depth }) = stack.last_mut() {
                if starts {
                    *depth += 1;
                } else if matches!(event, Event::SequenceEnd | Event::MappingEnd) {
                    *depth -= 1;
                    if *depth == 0 {
                        stack.pop();
                    }
                }
                continue;
            }
            match event {
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                    continue;
                }
                Event::DocumentEnd if seen_root => break,
                _ if !node => continue,
                _ => {}
            }
            // Where this node sits: the root, a list item, a key, or a mapping value.
            let path = match stack.last_mut() {
                None => {
                    seen_root = true;
                    Some((String::new(), None))
                }
                Some(Frame::Seq { path, next }) => {
                    let p = format!("{path}[{next}]");
                    *next += 1;
                    Some((p, None))
                }
                Some(Frame::Map {
                    key: key @ None, ..
                }) => {
                    let text = match &event {
                        Event::Scalar(value, ..) => Some(value.to_string()),
                        _ => None,
                    };
                    *key = Some((text, at));
                    None
                }
                Some(Frame::Map { path, key }) => match key.take() {
                    Some((Some(k), key_at)) => Some((join_key(path, &k), Some(key_at))),
                    _ => None,
                },
                Some(Frame::Skip { .. }) => None,
            };
            if !starts {
                if let Some((p, key)) = path {
                    index.spots.entry(p).or_insert(Spot { key, value: at });
                }
                continue;
            }
            let frame = match path {
                Some((p, key)) if stack.len() < MAX_DEPTH => {
                    index
                        .spots
                        .entry(p.clone())
                        .or_insert(Spot { key, value: at });
                    if matches!(event, Event::SequenceStart(..)) {
                        Frame::Seq { path: p, next: 0 }
                    } else {
                        Frame::Map { path: p, key: None }
                    }
                }
                _ => Frame::Skip { depth: 1 },
            };
            stack.push(frame);
        }
        Ok(index)
    }

    /// The position of `path`, or of its nearest indexed ancestor.
    pub fn spot(&self, path: &str) -> Option<Spot> {
        let mut p = path;
        loop {
            if let Some(s) = self.spots.get(p) {
                return Some(*s);
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }

    /// The position of exactly `path`, if indexed.
    pub fn exact(&self, path: &str) -> Option<Spot> {
        self.spots.get(path).copied()
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn keys_items_and_values_are_located() {
        let text = "a:\n  b: 1\n  c: [x, {d: 2}]\nlist:\n  - name: web\n    port: 443\n";
        let ix = LocationIndex::build(text).unwrap();
        assert_eq!(
            ix.exact("a.b"),
            Some(Spot {
                key: Some(at(2, 3)),
                value: at(2, 6)
            })
        );
        assert_eq!(ix.exact("a.c[1].d").map(|s| s.value), Some(at(3, 14)));
        assert_eq!(
            ix.exact("list[0].port"),
            Some(Spot {
                key: Some(at(6, 5)),
                value: at(6, 11)
            })
        );
        assert_eq!(ix.exact("list[0]").map(|s| s.value), Some(at(5, 5)));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(ix.spot("list[0].missing").map(|s| s.value), Some(at(5, 5)));
        assert_eq!(
            ix.exact(""),
            Some(Spot {
                key: None,
                value: at(1, 1)
            })
        );
    }

    #[test]
    fn complex_keys_and_deep_nesting_do_not_derail_the_index() {
        let text = "? [a, b]\n: 1\nz: 2\n";
        let ix = LocationIndex::build(text).unwrap();
        assert_eq!(ix.exact("z").map(|s| s.value), Some(at(3, 4)));
        let at = |line, column| Err(Location { line, column });
        let flow = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        assert!(LocationIndex::build(&flow).is_err());
        let block: String = (0..100).map(|i| format!("{}- \n", " ".repeat(i))).collect();
        assert_eq!(
            LocationIndex::build(&block).map(|_| ()),
            at(MAX_NESTING + 1, MAX_NESTING + 1)
        );
        let shallow: String = (0..MAX_NESTING)
            .map(|i| format!("{}- \n", " ".repeat(i)))
            .collect();
        assert!(LocationIndex::build(&shallow).is_ok());
    }
}
