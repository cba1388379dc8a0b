"""Webhooks: Standard Webhooks signatures, an SSRF-guarded sender, and durable
deliveries with retries (every attempt recorded)."""
