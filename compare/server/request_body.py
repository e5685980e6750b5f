"""Reading a request body: the size cap, Content-Encoding (gzip, deflate) and JSON.

aiohttp's own decompression runs in its protocol parser, where a bad or unsupported encoding
becomes a logged traceback instead of an answer; the server turns it off (auto_decompress=False)
and decodes here, so every failure is an Azure-format 4xx.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from aiohttp import web

from compare.server.azure_errors import WireError


def too_large(cap: int) -> WireError:
    """The 413 for a body past `cap` bytes (counted after decompression)."""
    return WireError(413, "RequestEntityTooLarge",
                     f"The request body is larger than {cap} bytes (after decompression).")


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Inflate at most cap bytes: a small bomb never allocates more than the cap allows."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, cap + 1)
    if len(out) > cap or inflater.unconsumed_tail:
        raise too_large(cap)
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def decode_body(raw: bytes, content_encoding: str, cap: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, identity) with the body cap on inflated bytes."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # listed in the order they were applied
        try:
            if coding == "identity":
                continue
            if coding in ("gzip", "x-gzip"):
                raw = _inflate(raw, 16 + zlib.MAX_WBITS, cap)
            elif coding == "deflate":
                # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate.
                try:
                    raw = _inflate(raw, zlib.MAX_WBITS, cap)
                except zlib.error:
                    raw = _inflate(raw, -zlib.MAX_WBITS, cap)
            else:
                raise WireError(415, "UnsupportedMediaType",
                                f"Content-Encoding {coding!r} is not supported here; send the "
                                "body uncompressed, gzip or deflate.")
        except zlib.error as exc:
            raise WireError(400, "BadRequest",
                            f"The request body is not valid {coding} data: {exc}") from None
    return raw


async def read_json(request: web.Request, cap: int) -> Any:
    """The request's JSON body (any JSON value), or a 400/413/415 WireError."""
    length = request.content_length
    if length is not None and length > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=length)
    raw = decode_body(await request.read(), request.headers.get("Content-Encoding", ""), cap)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(400, "BadRequest", f"The request body is not valid JSON: {exc}") \
            from None


async def read_object(request: web.Request, cap: int) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = await read_json(request, cap)
    if not isinstance(body, dict):
        raise WireError(400, "BadRequest", "The request body must be a JSON object")
    return body
