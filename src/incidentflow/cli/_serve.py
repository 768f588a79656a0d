"""``serve``: run the HTTP service (JSON API, alert endpoints, pages) with uvicorn."""

from __future__ import annotations

from typing import Any

import click

from ._app import App, pass_app
from ._params import count

__all__ = ["COMMANDS"]


def web_options(config: object) -> dict[str, Any]:
    """The ``incidentflow.web.app`` options the configuration's ``[web]`` table sets."""
    table = getattr(config, "web", None)
    return {} if table is None else dict(table.options())


@click.command(short_help="Run the HTTP service: JSON API, alert endpoints, pages.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=count(1, 65_535), default=8080, show_default=True, help="The port to listen on."
)
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Serve the flow over HTTP until interrupted (Ctrl-C).

    \b
    The JSON API is under /api (OpenAPI document: /api/openapi.json), the
    alert endpoints under /api/alerts/SOURCE, the pages at /, Prometheus
    metrics at /metrics. Tokens come from the [web] table of the
    configuration; without tokens, X-Actor names who runs each command.
    The store is the configured one: SQLite under .agent/incidents/ by default.
    """  # noqa: D301 - "\b" is click's marker for a paragraph kept as written
    try:
        import uvicorn

        from ..web import app as web_app
    except ImportError as exc:
        raise click.ClickException(
            f"the HTTP service needs the web extra ({exc.name} is missing): pip install -e '.[web]'"
        ) from None
    asgi = web_app(app.flow, **web_options(app.config))
    click.echo(f"incidentflow: serving on http://{host}:{port} (Ctrl-C stops)", err=True)
    uvicorn.run(asgi, host=host, port=port, log_level="info", lifespan="off")


COMMANDS: tuple[click.Command, ...] = (serve,)
