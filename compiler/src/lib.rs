//! protonc: compiles NGINX-style (or JSON/YAML) configuration into Proton's routing IR.
//!
//! Pipeline: front end (syntax / frontend) → directive tree → checks against the directive
//! table → typed model → lowering → [`proton_ir::Ir`]. Nothing here talks to sockets.

pub mod ast;
pub mod diagnostics;
pub mod source;
pub mod syntax;
pub mod check;
pub mod directives;
pub mod frontend;
