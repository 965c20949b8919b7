//! gRPC (`grpc_pass`) on the proxy's machinery: the request as an HTTP/2 header block and
//! DATA frames; the connection's HTTP/2 state ([`crate::http2::upstream::H2Up`]) puts them on
//! the wire under the server's flow control and hands the answer back as HTTP/1.1.

use super::*;
use crate::http2::upstream::{field, frame_block};

impl Worker<'_> {
    /// The request's header block as HEADERS (and CONTINUATION) frames, nginx's grpc module's
    /// fields: `:method` (`method`: the client's, GET after error_page), `:scheme`, `:path` (the client's URI, or the changed one escaped),
    /// `:authority` (`authority`: `$proxy_host`; a `host` field instead with
    /// `grpc_set_header Host`), every non-empty
    /// `grpc_set_header`, then the client's fields without `Host`, `TE` and the hop-by-hop
    /// ones (`te: trailers` when the client accepts trailers). `end`: no body follows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn grpc_request_head(
        &self,
        conn: &Conn,
        request: &RequestCtx,
        ps: &proton_ir::ProxySettings,
        method: &[u8],
        authority: &[u8],
        https: bool,
        end: bool,
        out: &mut Vec<u8>,
    ) {
        let head = &request.head;
        let mut block = self.scratch.var_pool.borrow_mut().buf();
        let mut value = self.scratch.var_pool.borrow_mut().buf();
        match method {
            b"GET" => block.push(0x82),
            b"POST" => block.push(0x83),
            m => field(b":method", m, &mut block),
        }
        block.push(if https { 0x87 } else { 0x86 });
        value.clear();
        self.upstream_uri(conn, request, None, None, &mut value);
        if value.is_empty() {
            value.push(b'/');
        }
        if value == b"/" {
            block.push(0x84);
        } else {
            field(b":path", &value, &mut block);
        }
        let ctx = self.ctx(conn, request, 0);
        // `grpc_set_header Host` replaces `:authority` with a `host` field, as nginx's
        // test suite expects (nginx's source of August 2026 sends the value as
        // `:authority` instead).
        if !ps
            .set_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            field(b":authority", authority, &mut block);
        }
        for (name, t) in &ps.set_headers {
            value.clear();
            ctx.expand(t, &mut value);
            if !value.is_empty() {
                // (A value from variables is sent as made: HTTP/2 carries any bytes but the
                // line breaks nginx would not put in a header either.)
                value.retain(|&b| !matches!(b, b'\r' | b'\n' | 0));
                field(name.as_bytes(), &value, &mut block);
            }
        }
        if ps.pass_request_headers {
            let connection = head.get(&conn.rbuf, b"connection").unwrap_or(b"");
            for (n, v) in head.fields(&conn.rbuf) {
                if n.eq_ignore_ascii_case(b"host")
                    || hop_by_hop_request(n)
                    || has_token(connection, n)
                    || ps
                        .set_headers
                        .iter()
                        .any(|(s, _)| s.as_bytes().eq_ignore_ascii_case(n))
                {
                    continue;
                }
                field(n, v, &mut block);
            }
            // `$grpc_internal_trailers`.
            if head
                .get(&conn.rbuf, b"te")
                .is_some_and(|te| te.windows(8).any(|w| w.eq_ignore_ascii_case(b"trailers")))
            {
                field(b"te", b"trailers", &mut block);
            }
        }
        frame_block(&block, end, out);
        let mut pool = self.scratch.var_pool.borrow_mut();
        pool.give_buf(block);
        pool.give_buf(value);
    }
}
