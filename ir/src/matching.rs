//! Server and location selection, exactly as nginx does it
//! (`ngx_http_find_virtual_server`, `ngx_http_core_find_location`).
//!
//! Regexes are matched by the caller through `is_match(RegexId, subject)`, so this module
//! needs no regex engine. Nothing here allocates on the success path except the
//! explanation vector of [`LocationMatch`] when the caller asks for one.

use crate::types::*;

/// Why a server was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMatch {
    Exact,
    LeadingWildcard,
    TrailingWildcard,
    /// The n-th regex name (0-based, config order).
    Regex(usize),
    Default,
}

/// Why a location was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchReason {
    /// `location = path`.
    Exact,
    /// The longest prefix was `^~`, so regexes were skipped.
    PrefixNoRegex,
    /// The n-th regex location of its level (0-based, config order).
    Regex(usize),
    /// The longest matching prefix, after no regex matched.
    LongestPrefix,
    /// Nothing matched: the server-level configuration.
    ServerDefault,
}

/// The result of location selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationMatch {
    pub location: LocationId,
    pub reason: MatchReason,
}

enum Rc {
    /// Final: exact or regex match.
    Ok,
    /// A prefix matched; regexes of outer levels may still override it.
    Again,
    Declined,
}

impl LocationTree {
    /// Walks the prefix trie: returns the exact match if the whole `uri` equals an exact
    /// location, otherwise the longest prefix location.
    /// The label bytes of `n` (empty when the range is out of bounds).
    pub fn label(&self, n: &TrieNode) -> &[u8] {
        let (start, len) = (n.label.0 as usize, n.label.1 as usize);
        self.labels
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }

    /// The children of `n` (empty when the range is out of bounds).
    pub fn children(&self, n: &TrieNode) -> &[u32] {
        let (start, len) = (n.children.0 as usize, n.children.1 as usize);
        self.edges
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }

    fn find_static(&self, uri: &[u8]) -> (Option<LocationId>, Option<PrefixEntry>) {
        let Some(mut node) = self.nodes.first() else {
            return (None, None);
        };
        let mut pos = 0usize;
        let mut best = None;
        loop {
            if node.prefix.is_some() {
                best = node.prefix;
            }
            let Some(&next) = uri.get(pos) else {
                return (node.exact, best);
            };
            let child = self.children(node).iter().find_map(|&c| {
                let n = self.nodes.get(c as usize)?;
                (self.label(n).first() == Some(&next)).then_some(n)
            });
            match child {
                Some(c) if uri[pos..].starts_with(self.label(c)) && !self.label(c).is_empty() => {
                    pos += self.label(c).len();
                    node = c;
                }
                _ => return (None, best),
            }
        }
    }
}

impl Ir {
    /// Picks the server for `host` (already lowercased, port and trailing dot removed) on
    /// `listener`.
    pub fn find_server(
        &self,
        listener: &Listener,
        host: &[u8],
        is_match: &mut dyn FnMut(RegexId, &[u8]) -> bool,
    ) -> (ServerId, ServerMatch) {
        let names = &listener.names;
        if let Ok(i) = names
            .exact
            .binary_search_by(|(n, _)| n.as_bytes().cmp(host))
        {
            return (names.exact[i].1, ServerMatch::Exact);
        }
        let mut best: Option<(usize, ServerId)> = None;
        for w in &names.leading {
            let suffix = w.suffix.as_bytes();
            let hit = (host.len() > suffix.len() && host.ends_with(suffix))
                || (w.also_bare && suffix.get(1..) == Some(host));
            if hit && best.is_none_or(|(l, _)| suffix.len() > l) {
                best = Some((suffix.len(), w.server));
            }
        }
        if let Some((_, s)) = best {
            return (s, ServerMatch::LeadingWildcard);
        }
        for (prefix, s) in &names.trailing {
            let hit = host.len() > prefix.len() && host.starts_with(prefix.as_bytes());
            if hit && best.is_none_or(|(l, _)| prefix.len() > l) {
                best = Some((prefix.len(), *s));
            }
        }
        if let Some((_, s)) = best {
            return (s, ServerMatch::TrailingWildcard);
        }
        for (i, (re, s)) in names.regex.iter().enumerate() {
            if is_match(*re, host) {
                return (*s, ServerMatch::Regex(i));
            }
        }
        (names.default, ServerMatch::Default)
    }

    /// Picks the location of `server` for the normalised `uri`, nginx's precedence:
    /// exact, then the longest prefix (`^~` stops there), then regexes in config order
    /// (nested ones first), then the longest prefix.
    pub fn find_location(
        &self,
        server: ServerId,
        uri: &[u8],
        is_match: &mut dyn FnMut(RegexId, &[u8]) -> bool,
    ) -> LocationMatch {
        let Some(srv) = self.servers.get(server.0 as usize) else {
            return LocationMatch {
                location: LocationId(0),
                reason: MatchReason::ServerDefault,
            };
        };
        match self.find_in(&srv.tree, uri, is_match, 0) {
            (Some(m), _) => m,
            (None, _) => LocationMatch {
                location: srv.default_location,
                reason: MatchReason::ServerDefault,
            },
        }
    }

    fn find_in(
        &self,
        tree: &LocationTree,
        uri: &[u8],
        is_match: &mut dyn FnMut(RegexId, &[u8]) -> bool,
        depth: u32,
    ) -> (Option<LocationMatch>, Rc) {
        // Nesting depth is bounded by the compiler; this guards a hostile IR file.
        if depth > 64 {
            return (None, Rc::Declined);
        }
        let (exact, prefix) = tree.find_static(uri);
        if let Some(location) = exact {
            let m = LocationMatch {
                location,
                reason: MatchReason::Exact,
            };
            return (Some(m), Rc::Ok);
        }
        let mut current = None;
        let mut no_regex = false;
        if let Some(p) = prefix {
            no_regex = p.no_regex;
            let reason = if p.no_regex {
                MatchReason::PrefixNoRegex
            } else {
                MatchReason::LongestPrefix
            };
            current = Some(LocationMatch {
                location: p.location,
                reason,
            });
            if let Some(loc) = self.locations.get(p.location.0 as usize) {
                match self.find_in(loc.tree(), uri, is_match, depth + 1) {
                    (Some(m), Rc::Ok) => return (Some(m), Rc::Ok),
                    (Some(m), _) => current = Some(m),
                    (None, _) => {}
                }
            }
        }
        if !no_regex {
            for (i, r) in tree.regex.iter().enumerate() {
                if is_match(r.regex, uri) {
                    let m = LocationMatch {
                        location: r.location,
                        reason: MatchReason::Regex(i),
                    };
                    let nested = self
                        .locations
                        .get(r.location.0 as usize)
                        .and_then(|loc| self.find_in(loc.tree(), uri, is_match, depth + 1).0);
                    return (Some(nested.unwrap_or(m)), Rc::Ok);
                }
            }
        }
        match current {
            Some(m) => (Some(m), Rc::Again),
            None => (None, Rc::Declined),
        }
    }

    /// nginx's `auto_redirect`: the location of `server`'s top level written exactly as
    /// `path` (a URI plus `/`), exact or prefix, when it passes requests to a proxy. A
    /// request for the URI without the slash is then redirected to it (301).
    pub fn auto_redirect(&self, server: ServerId, path: &[u8]) -> Option<LocationId> {
        let srv = self.servers.get(server.0 as usize)?;
        let (exact, prefix) = srv.tree.find_static(path);
        exact
            .into_iter()
            .chain(prefix.map(|p| p.location))
            .find(|id| {
                self.locations.get(id.0 as usize).is_some_and(|l| {
                    l.conf.proxy.is_some() && self.text_of(l.name).as_bytes() == path
                })
            })
    }

    /// Finds a named location (`@name`) of a server.
    pub fn find_named(&self, server: ServerId, name: &str) -> Option<LocationId> {
        let srv = self.servers.get(server.0 as usize)?;
        srv.named.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// Builds a [`LocationTree`] trie from `(path, entry)` pairs. Used by the compiler; lives here
/// so the structure and its search stay side by side.
#[derive(Default)]
pub struct TrieBuilder {
    nodes: Vec<BuildNode>,
    regex: Vec<RegexLocation>,
}

#[derive(Default)]
struct BuildNode {
    label: Vec<u8>,
    children: Vec<u32>,
    exact: Option<LocationId>,
    prefix: Option<PrefixEntry>,
}

impl TrieBuilder {
    pub fn new() -> Self {
        TrieBuilder {
            nodes: vec![BuildNode::default()],
            regex: Vec::new(),
        }
    }

    /// Returns the node for `path`, creating (and splitting) nodes as needed.
    fn node_for(&mut self, path: &[u8]) -> usize {
        let mut node = 0usize;
        let mut pos = 0usize;
        while pos < path.len() {
            let next = path[pos];
            let child = self.nodes[node]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c as usize].label.first() == Some(&next));
            let Some(c) = child else {
                let id = self.nodes.len();
                self.nodes.push(BuildNode {
                    label: path[pos..].to_vec(),
                    ..BuildNode::default()
                });
                self.nodes[node].children.push(id as u32);
                return id;
            };
            let c = c as usize;
            let label = self.nodes[c].label.clone();
            let common = label
                .iter()
                .zip(&path[pos..])
                .take_while(|(a, b)| a == b)
                .count();
            if common == label.len() {
                node = c;
                pos += common;
                continue;
            }
            // Split `c` at `common`: a new middle node takes the shared part.
            let mid = self.nodes.len();
            self.nodes.push(BuildNode {
                label: label[..common].to_vec(),
                children: vec![c as u32],
                ..BuildNode::default()
            });
            self.nodes[c].label = label[common..].to_vec();
            for slot in self.nodes[node].children.iter_mut() {
                if *slot == c as u32 {
                    *slot = mid as u32;
                }
            }
            node = mid;
            pos += common;
        }
        node
    }

    /// Adds `location = path`. Returns the location already there, if any.
    pub fn add_exact(&mut self, path: &str, id: LocationId) -> Option<LocationId> {
        let n = self.node_for(path.as_bytes());
        self.nodes[n].exact.replace(id)
    }

    /// Adds a prefix location. Returns the location already there, if any.
    pub fn add_prefix(&mut self, path: &str, id: LocationId, no_regex: bool) -> Option<LocationId> {
        let n = self.node_for(path.as_bytes());
        self.nodes[n]
            .prefix
            .replace(PrefixEntry {
                location: id,
                no_regex,
            })
            .map(|p| p.location)
    }

    /// Appends a regex location (config order is match order).
    pub fn add_regex(&mut self, regex: RegexId, id: LocationId) {
        self.regex.push(RegexLocation {
            regex,
            location: id,
        });
    }

    /// Finishes the tree: children sorted by first byte, labels and edges packed into arenas.
    pub fn finish(self) -> LocationTree {
        let mut tree = LocationTree {
            regex: self.regex,
            ..LocationTree::default()
        };
        let root = &self.nodes[0];
        if self.nodes.len() == 1 && root.prefix.is_none() && root.exact.is_none() {
            // A level without prefix or exact locations needs no trie at all.
            return tree;
        }
        let firsts: Vec<u8> = self
            .nodes
            .iter()
            .map(|n| n.label.first().copied().unwrap_or(0))
            .collect();
        for n in &self.nodes {
            let mut children = n.children.clone();
            children.sort_by_key(|&c| firsts[c as usize]);
            let label = (tree.labels.len() as u32, n.label.len() as u32);
            tree.labels.extend_from_slice(&n.label);
            let edges = (tree.edges.len() as u32, children.len() as u32);
            tree.edges.extend_from_slice(&children);
            tree.nodes.push(TrieNode {
                label,
                children: edges,
                exact: n.exact,
                prefix: n.prefix,
            });
        }
        tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, char)]) -> LocationTree {
        let mut b = TrieBuilder::new();
        for (i, (p, k)) in entries.iter().enumerate() {
            let id = LocationId(i as u32);
            match k {
                '=' => {
                    b.add_exact(p, id);
                }
                '^' => {
                    b.add_prefix(p, id, true);
                }
                _ => {
                    b.add_prefix(p, id, false);
                }
            }
        }
        b.finish()
    }

    #[test]
    fn longest_prefix_and_exact() {
        let t = tree(&[
            ("/", 'p'),
            ("/a", 'p'),
            ("/abc", '^'),
            ("/ab", '='),
            ("/b/c", 'p'),
        ]);
        let f = |u: &str| {
            let (e, p) = t.find_static(u.as_bytes());
            (e.map(|l| l.0), p.map(|p| (p.location.0, p.no_regex)))
        };
        assert_eq!(f("/"), (None, Some((0, false))));
        assert_eq!(f("/ab"), (Some(3), Some((1, false))));
        assert_eq!(f("/abx"), (None, Some((1, false))));
        assert_eq!(f("/abcd"), (None, Some((2, true))));
        assert_eq!(f("/b/"), (None, Some((0, false))));
        assert_eq!(f("/b/cc"), (None, Some((4, false))));
        assert_eq!(f(""), (None, None));
        assert_eq!(f("x"), (None, None));
    }

    #[test]
    fn split_keeps_both() {
        let t = tree(&[("/abcdef", 'p'), ("/abcxyz", 'p'), ("/abc", '=')]);
        assert_eq!(t.find_static(b"/abcdefg").1.map(|p| p.location.0), Some(0));
        assert_eq!(t.find_static(b"/abcxyz").1.map(|p| p.location.0), Some(1));
        assert_eq!(t.find_static(b"/abc").0.map(|l| l.0), Some(2));
        assert_eq!(t.find_static(b"/abcd").1, None);
    }
}
