"""Lambda: the HTTP API (API Gateway HTTP API v2 events) through Mangum.

Built once per container. The database pool opens on the first request and lives on
across warm invocations (Mangum reuses one event loop), so no lifespan per call."""

from mangum import Mangum

from orchestrate.api import create_app
from orchestrate.aws.runtime import read_environment
from orchestrate.settings import Settings

app = create_app(Settings.from_env(read_environment()))
handler = Mangum(app, lifespan="off")
