//! protonc: compiles NGINX-style (or JSON/YAML) configuration into Proton's routing IR.
//!
//! Pipeline: front end (`syntax` for NGINX-style text, `frontend` for JSON/YAML) → spanned
//! directive tree (`ast`) → table checks (`check`) → lowering with inheritance and semantic
//! checks (`lower`) → [`proton_ir::Ir`]. Nothing here talks to sockets or links mio.
#![forbid(unsafe_code)]

pub mod ast;
pub mod check;
pub mod compile;
pub mod diagnostics;
pub mod diff;
pub mod directives;
pub mod expect;
pub mod frontend;
pub mod lower;
pub mod source;
pub mod syntax;
pub mod units;
