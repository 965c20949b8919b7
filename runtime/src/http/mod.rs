//! HTTP/1.1 codec on byte slices (no sockets, no mio).
//!
//! Everything here works on bytes the caller owns and is tested without a socket: request
//! heads ([`request`]), chunked bodies ([`chunked`]), FastCGI records ([`fastcgi`]), status lines, dates and error pages
//! ([`response`]), Range ([`range`]) and ETag ([`etag`]) headers. Nothing here allocates per
//! request (writers append to a `Vec` the caller reuses), and nothing panics, indexes out of
//! bounds or loops without bound on what a client sends: bad input is an [`HttpError`] that
//! names the status to answer.
#![forbid(unsafe_code)]

pub mod cgi;
pub mod chunked;
pub mod coding;
pub mod conditional;
pub mod date;
mod error;
pub mod etag;
pub mod fastcgi;
pub mod proxy_protocol;
pub mod range;
pub mod relay;
pub mod request;
pub mod response;
pub mod ssi;
pub mod subst;
mod swar;
pub mod upstream;

pub use error::HttpError;
