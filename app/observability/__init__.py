"""Metrics, probes and logs. `install_observability(app, settings)` wires them into an app."""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI
from starlette.middleware import Middleware

from app.config import Settings
from app.middleware import RequestIdMiddleware
from app.observability.logs import RequestLogMiddleware, bind, configure_logging, log_context
from app.observability.metrics import Metrics, MetricsMiddleware

__all__ = ["Metrics", "bind", "configure_logging", "install_observability", "log_context"]


def install_observability(app: FastAPI, settings: Settings) -> Metrics:
    """Add the access-log and metrics middleware; return the Metrics. (The probe and /metrics routes are
    app.observability.health's router, which app/main.py includes.)

    Call it before the app starts. The middleware goes just inside RequestIdMiddleware when that is
    already installed (so requests rejected by later middleware, like the body limit, are counted),
    else outermost.
    """
    metrics = Metrics(enabled=settings.metrics_enabled)
    app.state.metrics = metrics
    ours = [Middleware(RequestLogMiddleware)]
    if settings.metrics_enabled:
        ours.append(Middleware(MetricsMiddleware, metrics=metrics))
    at = next((i + 1 for i, m in enumerate(app.user_middleware) if cast(object, m.cls) is RequestIdMiddleware), 0)
    app.user_middleware[at:at] = ours
    return metrics
