"""What an editor needs besides the user's own data: the template gallery (the
workflows in ``examples/``, shipped in the package) and the language's JSON Schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from ...errors import SpecError
from ..deps import CurrentUser
from ..schemas import TemplateList
from ._docs import problems

router = APIRouter()

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
SCHEMA_CACHE = "public, max-age=3600"


@functools.cache
def templates(directory: Path = EXAMPLES_DIR) -> tuple[dict[str, str], ...]:
    """Every example that validates, by file name; read once per process."""
    from ...spec import parse_workflow

    found = []
    for path in sorted(directory.glob("*.yaml")):
        source = path.read_text(encoding="utf-8")
        try:
            workflow = parse_workflow(source, file=path.name).workflow
        except SpecError:  # the test suite keeps every example valid; never offer a broken one
            continue
        found.append({"id": path.stem, "name": workflow.name, "description": workflow.description, "source": source})
    return tuple(found)


@functools.cache
def _schema() -> tuple[bytes, str]:
    import hashlib

    from ...spec import json_schema

    body = json.dumps(json_schema(), separators=(",", ":")).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get("/v1/templates", response_model=TemplateList, tags=["workflows"], responses=problems())
async def list_templates(user: CurrentUser) -> dict[str, Any]:
    """Example workflows to start from: each with its YAML `source`, ready to save as is."""
    return {"items": list(templates())}


@router.get(
    "/v1/schema",
    tags=["workflows"],
    responses={200: {"content": {"application/schema+json": {"schema": {"type": "object"}}}, "description": "The JSON Schema"}},
)
async def workflow_schema(request: Request) -> Response:
    """The JSON Schema of the workflow language (what `orchestrate schema` prints), for
    editor completion and hover. Needs no token; cacheable."""
    body, etag = _schema()
    headers = {"Cache-Control": SCHEMA_CACHE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/schema+json", headers=headers)
