"""The dashboard's channel Test: vendors with a free endpoint check the credential against it (no paid
task), through their fake servers, which verify auth exactly; a wrong key is AuthFailed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.providers import base as pb
from app.providers.kling import KlingProvider
from app.providers.luma import LumaProvider
from app.providers.runway import RunwayProvider
from app.providers.seedance import SeedanceProvider
from app.providers.vidu import ViduProvider
from tests.fakes import kling, luma, runway, vidu
from tests.fakes import seedance as seedance_fake

CASES: list[tuple[str, Callable[[], tuple[Any, Any]], Callable[[httpx.AsyncClient, str], Any], str, str]] = [
    ("runway", runway.make_app, lambda c, k: RunwayProvider(c, api_key=k, base_url="http://fake"), runway.KEY, "1000"),
    (
        "luma",
        lambda: luma.make_app(),
        lambda c, k: LumaProvider(c, api_key=k, base_url="http://fake/dream-machine/v1"),
        luma.API_KEY,
        "123456",
    ),
    (
        "seedance",
        lambda: seedance_fake.make_app(api_key="ark-check"),
        lambda c, k: SeedanceProvider(c, api_key=k, base_url="http://fake"),
        "ark-check",
        "Ark accepted",
    ),
    (
        "vidu",
        lambda: vidu.make_app(api_key="vda_check"),
        lambda c, k: ViduProvider(c, api_key=k, base_url="http://fake"),
        "vda_check",
        "1000 credits left",
    ),
    (
        "kling",
        lambda: kling.make_app(),
        lambda c, k: KlingProvider(c, access_key=kling.AK, secret_key=k, base_url="http://fake"),
        kling.SK,
        "Kling accepted",
    ),
]


@pytest.mark.parametrize(("name", "fake", "build", "key", "says"), CASES, ids=[c[0] for c in CASES])
async def test_the_right_key_passes_and_a_wrong_one_is_refused(name, fake, build, key, says) -> None:
    app, state = fake()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        provider = build(client, key)
        assert isinstance(provider, pb.ChecksCredentials)
        note = await provider.check_credentials()
        assert note is not None and says in note
        with pytest.raises(pb.AuthFailed):
            await build(client, key + "-wrong").check_credentials()
