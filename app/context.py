"""Kept while other branches still import `app.context`: the Gateway lives in app/gateway.py."""

from app.gateway import Gateway

__all__ = ["Gateway"]
