//! Proton's routing IR: the one contract between `protonc` (the compiler) and `proton-run`
//! (the runtime).
//!
//! Everything here is already resolved: inheritance is flattened into each location's
//! [`LocationConf`], server names are sorted into lookup tables, locations into a prefix trie
//! plus an ordered regex list, and variables into [`Template`]s. The runtime only reads it.
//!
//! This crate must never depend on the compiler's reader or codespan, nor on the runtime's
//! event loop (mio). Regular expressions are kept as source text; both sides compile them with
//! [`pattern::compile`] and hand the matchers in through a closure, so the match *algorithm* lives
//! here once and `protonc route` and the runtime cannot disagree.
#![forbid(unsafe_code)]

mod codec;
mod matching;
pub mod pattern;
pub mod rewrite;
pub mod time;
pub mod tls;
mod types;
pub mod uri;
mod verify;

pub use codec::{decode, encode, read_header, DecodeError, Header, FORMAT_VERSION, MAGIC};
pub use matching::{LocationMatch, MatchReason, ServerMatch, TrieBuilder};
pub use types::*;
pub use verify::VerifyError;
