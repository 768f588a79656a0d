"""The HTTP service: an ASGI app with a JSON API, alert endpoints and web pages.

Install the ``web`` extra (Starlette and uvicorn). ``incidentflow.web.app(flow)``
is a plain ASGI application a host can mount inside its own FastAPI or
Starlette app; ``incidentflow serve`` runs it from the configuration.
"""

from ._app import app

__all__ = ["app"]
