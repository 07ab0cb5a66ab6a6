"""``certdesk serve``: the publication service (OCSP responder, CRL and CA certificates
over HTTP), read-only on ``outbox/``. docs/architecture.md says which module does what;
nothing is imported here, so that the command line loads aiohttp only to serve."""
