"""Operations: what certdesk does with a claimed input or with time, one use case a module.

- ``issuing``: requests (``*.csr``), in pipelined chunks: decide, sign, publish;
- ``cancelling``: annullamenti (and files of no known kind), a run in one transaction;
- ``recovery``: after a crash or a pause, finish what was claimed, from the store alone;
- ``upkeep``: expiry, the CRL before its nextUpdate, OCSP refresh, ``republish``;
- ``feed``: which operation an input goes to, in the order it came.

Each operation fetches the facts from the store, calls the pure rule (``issuance``,
``cancellation``, ``states``), commits, signs and publishes, in the crash-safe order its
docstring states. ``certdesk.service.Engine`` is the front the daemon and the CLI use.
"""
