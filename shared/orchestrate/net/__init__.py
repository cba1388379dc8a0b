"""Outbound HTTP to addresses a tenant chooses (webhooks, http steps): the SSRF guard
(``ssrf``) and one guarded request (``guarded``)."""
