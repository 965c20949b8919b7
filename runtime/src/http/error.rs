//! The one error type of the HTTP codec: what was wrong with the bytes a client sent, which
//! status answers it, and whether the connection can be reused afterwards.
//!
//! Statuses follow nginx 1.22 (checked against the Debian package): a request line that does
//! not fit answers 414; a head that does not fit answers 400 with nginx's "Request Header Or
//! Cookie Too Large" page (its internal code 494, see [`HttpError::page_code`]); a
//! Transfer-Encoding other than `chunked` answers 501; an HTTP major version above 1 answers 505;
//! every other malformed head or chunked body answers 400.

use std::fmt;

/// Why a request head or a chunked body was rejected. Every variant closes the connection:
/// after a framing error the server cannot know where the next request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpError {
    /// The request line is longer than [`Limits::max_uri`](super::request::Limits) (414).
    RequestLineTooLong,
    /// The head did not end within [`Limits::max_head`](super::request::Limits) bytes (400, page 494).
    HeaderTooLarge,
    /// More header lines than [`Limits::max_headers`](super::request::Limits) (400, page 494).
    TooManyHeaders,
    /// The method is empty or has a byte outside nginx's `[A-Z_-]` (400).
    InvalidMethod,
    /// The request target is empty, has a control byte, space or invalid UTF-8, or is not
    /// origin-form (`/…`), absolute-form (`scheme://host…`) or `*` with OPTIONS (400).
    InvalidTarget,
    /// The protocol is not `HTTP/<major>.<minor>`, is HTTP/0.x, has a leading zero in the
    /// major version or more than three minor digits, or is missing (HTTP/0.9) (400).
    InvalidVersion,
    /// An HTTP version this server does not speak: major 2 and above (505, as nginx), and also
    /// 1.x other than 1.0 and 1.1, which nginx would serve as 1.1 (505, a deviation).
    VersionNotSupported,
    /// A bare CR, or a line that is not ended by LF or CRLF (400).
    InvalidLineEnding,
    /// A NUL byte in the request head (400).
    NulByte,
    /// A header name that is empty or has a byte outside the RFC 9110 token set (400).
    InvalidHeaderName,
    /// Space or tab between a header name and its colon (400, RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// A header line starting with space or tab: obsolete line folding (400, RFC 9112 §5.2).
    ObsFold,
    /// A control byte other than HTAB, or DEL, in a header value (400).
    InvalidHeaderValue,
    /// An HTTP/1.1 request without a Host header (400).
    MissingHost,
    /// More than one Host header (400).
    DuplicateHost,
    /// A Host header, or the authority of an absolute-form target, that nginx would refuse:
    /// empty, `..`, `/`, a control byte or space (400).
    InvalidHost,
    /// A Content-Length that is not 1*DIGIT within 0..=2^63-1 (400).
    InvalidContentLength,
    /// Several Content-Length headers, or one holding a list such as `42, 42` (400).
    DuplicateContentLength,
    /// Several Transfer-Encoding headers (400).
    DuplicateTransferEncoding,
    /// Several of another header nginx requires to be unique: If-Modified-Since,
    /// If-Unmodified-Since, If-Match, If-None-Match, If-Range, Content-Range, Expect,
    /// Authorization (400).
    DuplicateHeader,
    /// Both Content-Length and `Transfer-Encoding: chunked` (400).
    ContentLengthWithTransferEncoding,
    /// A Transfer-Encoding other than exactly `chunked` (501, as nginx).
    UnsupportedTransferEncoding,
    /// A Transfer-Encoding header in an HTTP/1.0 request (400, as nginx).
    TransferEncodingHttp10,
    /// A chunk-size line that is empty or has a byte that is not hex, BWS or `;` (400).
    InvalidChunkSize,
    /// A chunk size with more than 16 hex digits, above 2^63-1, or a body total that
    /// overflows (400).
    ChunkSizeOverflow,
    /// Chunk extensions longer than [`MAX_EXTENSION_LEN`](super::chunked::MAX_EXTENSION_LEN),
    /// or holding a control byte (400).
    InvalidChunkExtension,
    /// Chunk data not followed by exactly CRLF (400).
    InvalidChunkTerminator,
    /// A trailer section longer than [`MAX_TRAILER_LEN`](super::chunked::MAX_TRAILER_LEN), or with
    /// a bare CR/LF or NUL (400).
    InvalidTrailer,
    /// The body is larger than the limit the caller set (client_max_body_size) (413).
    BodyTooLarge,
    /// A `TRACE` request: refused with 405 before routing, as nginx does (a proxied TRACE
    /// would echo the request's headers, cookies included, back to the client).
    TraceMethod,
    /// A `CONNECT` request (with an origin-form target; an authority-form one is
    /// [`InvalidTarget`](Self::InvalidTarget)): refused with 405 before routing, as nginx does.
    ConnectMethod,
}

impl HttpError {
    /// The status code sent on the wire.
    pub const fn status(self) -> u16 {
        use HttpError::*;
        match self {
            RequestLineTooLong => 414,
            VersionNotSupported => 505,
            UnsupportedTransferEncoding => 501,
            BodyTooLarge => 413,
            TraceMethod | ConnectMethod => 405,
            HeaderTooLarge
            | TooManyHeaders
            | InvalidMethod
            | InvalidTarget
            | InvalidVersion
            | InvalidLineEnding
            | NulByte
            | InvalidHeaderName
            | WhitespaceBeforeColon
            | ObsFold
            | InvalidHeaderValue
            | MissingHost
            | DuplicateHost
            | InvalidHost
            | InvalidContentLength
            | DuplicateContentLength
            | DuplicateTransferEncoding
            | DuplicateHeader
            | ContentLengthWithTransferEncoding
            | TransferEncodingHttp10
            | InvalidChunkSize
            | ChunkSizeOverflow
            | InvalidChunkExtension
            | InvalidChunkTerminator
            | InvalidTrailer => 400,
        }
    }

    /// The code that selects the error page and matches `error_page` directives: nginx's
    /// internal 494 ("400 Request Header Or Cookie Too Large") for a head that is too large,
    /// otherwise [`status`](Self::status).
    pub const fn page_code(self) -> u16 {
        match self {
            HttpError::HeaderTooLarge | HttpError::TooManyHeaders => 494,
            _ => self.status(),
        }
    }

    /// Whether the connection must be closed after the error response. Always true: after a
    /// malformed head or body the start of the next request is unknown.
    pub const fn close_connection(self) -> bool {
        true
    }

    /// A short text for the error log, in nginx's wording where nginx has one.
    pub const fn reason(self) -> &'static str {
        use HttpError::*;
        match self {
            RequestLineTooLong => "client sent too long URI",
            HeaderTooLarge => "client sent too large request header",
            TooManyHeaders => "client sent too many header lines",
            InvalidMethod => "client sent invalid method",
            InvalidTarget => "client sent invalid request target",
            InvalidVersion => "client sent invalid HTTP version",
            VersionNotSupported => "client sent unsupported HTTP version",
            InvalidLineEnding => "client sent invalid line ending",
            NulByte => "client sent NUL byte in request header",
            InvalidHeaderName => "client sent invalid header name",
            WhitespaceBeforeColon => "client sent whitespace between header name and colon",
            ObsFold => "client sent folded header line",
            InvalidHeaderValue => "client sent control character in header value",
            MissingHost => "client sent HTTP/1.1 request without \"Host\" header",
            DuplicateHost => "client sent duplicate host header",
            InvalidHost => "client sent invalid host header",
            InvalidContentLength => "client sent invalid \"Content-Length\" header",
            DuplicateContentLength => "client sent duplicate \"Content-Length\" header",
            DuplicateTransferEncoding => "client sent duplicate \"Transfer-Encoding\" header",
            DuplicateHeader => "client sent duplicate header line",
            ContentLengthWithTransferEncoding => {
                "client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
            }
            UnsupportedTransferEncoding => "client sent unknown \"Transfer-Encoding\"",
            TransferEncodingHttp10 => {
                "client sent HTTP/1.0 request with \"Transfer-Encoding\" header"
            }
            InvalidChunkSize => "client sent invalid chunk size",
            ChunkSizeOverflow => "client sent too large chunk size",
            InvalidChunkExtension => "client sent invalid chunk extension",
            InvalidChunkTerminator => "client sent chunk data without CRLF",
            InvalidTrailer => "client sent invalid chunked trailer",
            BodyTooLarge => "client intended to send too large body",
            TraceMethod => "client sent TRACE method",
            ConnectMethod => "client sent CONNECT method",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_nginx() {
        assert_eq!(HttpError::RequestLineTooLong.status(), 414);
        assert_eq!(HttpError::HeaderTooLarge.status(), 400);
        assert_eq!(HttpError::HeaderTooLarge.page_code(), 494);
        assert_eq!(HttpError::TooManyHeaders.page_code(), 494);
        assert_eq!(HttpError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        assert_eq!(HttpError::ObsFold.status(), 400);
        assert_eq!(HttpError::ObsFold.page_code(), 400);
        assert!(HttpError::InvalidChunkSize.close_connection());
        assert!(HttpError::MissingHost.to_string().contains("Host"));
        assert_eq!(HttpError::TraceMethod.status(), 405);
        assert_eq!(HttpError::ConnectMethod.page_code(), 405);
    }
}
