"""app/gateway.py: what open_gateway opens, aclose closes (a client lent by the caller stays open), and
the engine and webhook dispatcher started for a worker are stopped by the same aclose."""

from __future__ import annotations

import httpx

from app.gateway import aclose, open_gateway
from app.worker import start_work
from tests.conftest import make_settings


class TestAclose:
    async def test_closes_its_own_clients_and_leaves_a_lent_one_open(self, database_url, tmp_path) -> None:
        settings = make_settings(database_url, tmp_path)
        async with httpx.AsyncClient() as lent:
            gw = await open_gateway(settings, http=lent)
            assert gw.http is lent and gw.registry is not None
            await aclose(gw)
            assert not lent.is_closed and gw.public_http.is_closed
        own = await open_gateway(settings)
        await aclose(own)
        assert own.http.is_closed and own.public_http.is_closed

    async def test_stops_the_engine_and_the_dispatcher(self, database_url, tmp_path) -> None:
        gw = await open_gateway(make_settings(database_url, tmp_path))
        await start_work(gw)
        assert gw.engine is not None and gw.webhooks is not None
        stopped: list[tuple[str, float | None]] = []
        engine_stop, webhooks_stop = gw.engine.stop, gw.webhooks.stop

        async def stop_engine(timeout: float = 10.0) -> None:
            stopped.append(("engine", timeout))
            await engine_stop(timeout=timeout)

        async def stop_webhooks(timeout: float = 10.0) -> None:
            stopped.append(("webhooks", timeout))
            await webhooks_stop(timeout=timeout)

        gw.engine.stop, gw.webhooks.stop = stop_engine, stop_webhooks  # type: ignore[method-assign]
        await aclose(gw, grace_s=0.5)
        assert stopped == [("engine", 0.5), ("webhooks", 10.0)]
        assert gw.http.is_closed

    async def test_api_only_start_records_channels_without_background_work(self, database_url, tmp_path) -> None:
        gw = await open_gateway(make_settings(database_url, tmp_path))
        try:
            await start_work(gw, engine=False)
            assert gw.engine is None and gw.webhooks is None
        finally:
            await aclose(gw)
