"""The hosted HTTP API (FastAPI): ``create_app(settings, services=...)``."""

from __future__ import annotations

from .app import create_app
from .services import Services, local_stack, open_services

__all__ = ["Services", "create_app", "local_stack", "open_services"]
