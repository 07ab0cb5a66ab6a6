"""The HTTP face of ``certdesk serve``: routes, request limits, headers (RFC 5019).

One handler for aiohttp's low-level server (no router, no middleware: a dict lookup per
request). Paths are those of the URLs certificates name (``publication.PublicUrls``):

    POST <ocsp>                      application/ocsp-request, at most ``POST_MAX_BYTES``
    GET  <ocsp>/<url-encoded base64> at most 255 bytes of base64 (RFC 5019), else 414
    GET  <crl>                       application/pkix-crl (DER)
    GET  <ca_issuers>, <root>        application/pkix-cert (DER)
    GET  <chain>                     application/pem-certificate-chain
    GET  <base>/ca/<genN>/issuing.crl, issuing.cer, chain.pem   a later issuer's (rollover)
    GET  <health>                    application/json; 200 fresh, 503 stale

An OCSP answer carries RFC 5019's headers (Last-Modified = thisUpdate, Expires =
nextUpdate, Cache-Control max-age to nextUpdate, ETag; If-None-Match → 304); an unsigned
status (tryLater...) is ``no-store``. Any other failure is a short plain-text status;
a bug is logged with its traceback and answered ``internalError`` or 500, never shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.web_request import BaseRequest

from ..publication import PublicUrls, is_issuer_name
from .freshness import Freshness
from .issuers import IssuerDirectory
from .ocsp_wire import GET_MAX_BASE64, INTERNAL_ERROR, decode_get_path
from .published import CaCertificate, Chain, CrlFile, PublishedFile, etag_of
from .responder import OcspAnswer, Responder

__all__ = ["POST_MAX_BYTES", "Publication"]

log = logging.getLogger("certdesk.serve")

# An OCSP request for one certificate is ~80-120 bytes (a signed one with its
# certificates a few KiB): anything larger is not a request this responder answers.
POST_MAX_BYTES = 8 * 1024
# Shared caches keep the CRL this long at most, so an annullamento reaches relying
# parties behind a cache within minutes (the CRL itself says until when it may be used).
CRL_MAX_AGE = 300
CA_MAX_AGE = 86400

_OCSP_RESPONSE = "application/ocsp-response"
_Route = Callable[[BaseRequest], Awaitable[web.StreamResponse]]


class Publication:
    """The request handler of one home's publication service."""

    def __init__(
        self,
        urls: PublicUrls,
        responder: Responder,
        freshness: Freshness,
        issuers: IssuerDirectory,
        root: PublishedFile[CaCertificate],
        *,
        timeout: float,
    ) -> None:  # fmt: skip
        self.responder = responder
        self.freshness = freshness
        self._issuers = issuers
        first = issuers.first
        self._crl, self._issuing, self._root, self._chain = (
            first.crl, first.certificate, root, first.chain
        )
        self.timeout = timeout
        # A later issuer's files (certdesk rollover): <base>/ca/<genN>/<file>.
        self._issuer_prefix = urls.path(f"{urls.base}/ca/")
        self._static: dict[str, _Route] = {
            urls.path(urls.crl): self._serve_crl,
            urls.path(urls.ca_issuers): self._serve_issuing,
            urls.path(urls.root): self._serve_root,
            urls.path(urls.chain): self._serve_chain,
            urls.path(urls.health): self._serve_health,
        }
        ocsp = urls.path(urls.ocsp).rstrip("/")  # "" when OCSP answers at the root
        self._ocsp_exact = {ocsp or "/", ocsp + "/"}
        self._ocsp_prefix = ocsp + "/"
        self._ocsp_raw_prefix = quote(ocsp) + "/"

    async def __call__(self, request: BaseRequest) -> web.StreamResponse:
        try:
            return await self._route(request)
        except Exception:
            log.exception("error serving %s %s", request.method, json.dumps(request.path[:300]))
            if request.path.startswith(self._ocsp_prefix) or request.path in self._ocsp_exact:
                return self._ocsp(OcspAnswer(INTERNAL_ERROR, "internalError"), request)
            return _plain(500, "internal error")

    async def _route(self, request: BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        static = self._static.get(path)
        if static is not None:
            return await static(request) if method in ("GET", "HEAD") else _allow("GET, HEAD")
        if path in self._ocsp_exact:
            if method == "POST":
                return await self._ocsp_post(request)
            if method in ("GET", "HEAD"):
                return self._ocsp(await self.responder.answer(b""), request)  # nothing to read
            return _allow("GET, HEAD, POST")
        if path.startswith(self._ocsp_prefix):
            if method in ("GET", "HEAD"):
                return await self._ocsp_get(request)
            return _allow("GET, HEAD")
        if path.startswith(self._issuer_prefix):
            return await self._issuer_file(request, path[len(self._issuer_prefix) :])
        return _plain(404, "not found")

    async def _issuer_file(self, request: BaseRequest, tail: str) -> web.StreamResponse:
        """A later issuer's CRL, certificate or chain, at its own path."""
        name, _, file = tail.partition("/")
        issuer = self._issuers.get(name) if is_issuer_name(name) else None
        if issuer is None or file not in ("issuing.crl", "issuing.cer", "chain.pem"):
            return _plain(404, "not found")
        if request.method not in ("GET", "HEAD"):
            return _allow("GET, HEAD")
        if file == "issuing.crl":
            return self._crl_response(request, issuer.crl.read())
        if file == "issuing.cer":
            return _certificate(request, issuer.certificate.read())
        return _chain(request, issuer.chain.read())

    async def _ocsp_get(self, request: BaseRequest) -> web.StreamResponse:
        raw = request.raw_path.partition("?")[0]
        if raw.startswith(self._ocsp_raw_prefix):
            tail = raw[len(self._ocsp_raw_prefix) :]
        else:  # the client encoded the responder's own path otherwise
            tail = request.path[len(self._ocsp_prefix) :]
        # RFC 5019: a GET carries at most 255 bytes of base64 (each maybe %-encoded)
        if len(tail) > 3 * GET_MAX_BASE64 or len(unquote(tail)) > GET_MAX_BASE64:
            return _plain(414, "URI too long: POST requests over 255 bytes of base64")
        der = decode_get_path(tail)
        return self._ocsp(await self.responder.answer(der or b""), request)

    async def _ocsp_post(self, request: BaseRequest) -> web.StreamResponse:
        media = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media != "application/ocsp-request":
            return _closing(_plain(415, "Content-Type must be application/ocsp-request"))
        length = request.content_length
        if length is not None and length > POST_MAX_BYTES:
            return _closing(_plain(413, f"request body over {POST_MAX_BYTES} bytes"))
        try:
            async with asyncio.timeout(self.timeout):
                body = await _read_body(request, POST_MAX_BYTES)
        except TimeoutError:
            return _closing(_plain(408, "request body too slow"))
        if body is None:
            return _closing(_plain(413, f"request body over {POST_MAX_BYTES} bytes"))
        return self._ocsp(await self.responder.answer(body), request)

    def _ocsp(self, answer: OcspAnswer, request: BaseRequest) -> web.StreamResponse:
        tag = answer.outcome if answer.serial is None else f"{answer.outcome} {answer.serial:x}"
        response = answer.response
        if response is None:  # an unsigned status: no cache may keep it
            headers = {"Cache-Control": "no-store"}
            return _body(request, answer.der, _OCSP_RESPONSE, headers, tag, etag="")
        seconds = (response.next_update - self.responder.clock()).total_seconds()
        headers = {
            "Last-Modified": _http_date(response.this_update),
            "Expires": _http_date(response.next_update),
            "Cache-Control": _cache(int(seconds)),
            "ETag": etag_of(answer.der),
        }
        return _body(request, answer.der, _OCSP_RESPONSE, headers, tag)

    async def _serve_crl(self, request: BaseRequest) -> web.StreamResponse:
        return self._crl_response(request, self._crl.read())

    def _crl_response(self, request: BaseRequest, crl: CrlFile | None) -> web.StreamResponse:
        if crl is None:
            return _plain(404, "no CRL published yet")
        now = self.responder.clock()
        until = now + timedelta(seconds=CRL_MAX_AGE)
        if crl.next_update is not None:
            until = max(now, min(until, crl.next_update))
        headers = {
            "Last-Modified": _http_date(crl.this_update),
            "Expires": _http_date(until),
            "Cache-Control": _cache(int((until - now).total_seconds())),
            "ETag": crl.etag,
        }
        return _body(request, crl.der, "application/pkix-crl", headers, "crl")

    async def _serve_issuing(self, request: BaseRequest) -> web.StreamResponse:
        return _certificate(request, self._issuing.read())

    async def _serve_root(self, request: BaseRequest) -> web.StreamResponse:
        return _certificate(request, self._root.read())

    async def _serve_chain(self, request: BaseRequest) -> web.StreamResponse:
        return _chain(request, self._chain.read())

    async def _serve_health(self, request: BaseRequest) -> web.StreamResponse:
        fresh, document = await self.freshness.report()
        response = web.json_response(
            document, status=200 if fresh else 503, headers={"Cache-Control": "no-store"}
        )
        response["outcome"] = document["status"]
        return response


async def _read_body(request: BaseRequest, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (chunked bodies have no length)."""
    chunks, size = [], 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def _chain(request: BaseRequest, chain: Chain | None) -> web.StreamResponse:
    if chain is None:
        return _plain(404, "no CA published yet")
    headers = {"Cache-Control": _cache(CA_MAX_AGE, revalidate=False), "ETag": chain.etag}
    return _body(request, chain.pem, "application/pem-certificate-chain", headers, "chain")


def _certificate(request: BaseRequest, ca: CaCertificate | None) -> web.StreamResponse:
    if ca is None:
        return _plain(404, "no CA published yet")
    headers = {"Cache-Control": _cache(CA_MAX_AGE, revalidate=False), "ETag": ca.etag}
    return _body(request, ca.der, "application/pkix-cert", headers, "certificate")


def _body(
    request: BaseRequest,
    data: bytes,
    content_type: str,
    headers: Mapping[str, str],
    tag: str,
    *,
    etag: str | None = None,
) -> web.StreamResponse:
    """``data`` with ``headers``; 304 when the client holds these bytes (If-None-Match)."""
    current = headers.get("ETag", "") if etag is None else etag
    if current and _matches(request.headers.get("If-None-Match"), current):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=data, content_type=content_type, headers=headers)
    response["outcome"] = tag
    return response


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _cache(seconds: int, *, revalidate: bool = True) -> str:
    directives = f"max-age={max(0, seconds)}, public, no-transform"
    return directives + ", must-revalidate" if revalidate else directives


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _plain(status: int, text: str) -> web.Response:
    response = web.Response(status=status, text=text + "\n", headers={"Cache-Control": "no-store"})
    response["outcome"] = "-"
    return response


def _allow(methods: str) -> web.Response:
    response = _plain(405, "method not allowed")
    response.headers["Allow"] = methods
    return response


def _closing(response: web.Response) -> web.Response:
    """Close the connection after it: the rest of its body is not worth reading."""
    response.force_close()
    return response
