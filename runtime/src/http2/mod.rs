//! HTTP/2 (RFC 9113), sans-IO: the frame layer, HPACK and the connection's state machine.
//! Nothing here reads a socket or a clock; the worker feeds bytes in and writes what comes
//! out, as with the HTTP/1.1 codec.

pub(crate) mod bridge;
pub(crate) mod conn;
pub(crate) mod frame;
pub(crate) mod hpack;
pub(crate) mod huffman;
pub(crate) mod upstream;
