"""Two OpenAI-format channels, each answering 30 % of all requests (creates, polls, downloads) with a fault:
5xx, a timeout, a garbage body, a 429, or HTTP 200 carrying an error. Every task still ends in the state
its prompt asks for, creates fail over to the second channel, and no upstream task is created twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
import yaml

from app.main import create_app
from tests.conftest import LiveServer, make_settings, new_key
from tests.fakes import openai_upstream
from tests.operators.test_channels import CREATE, Gateway, Upstreams, write_config
from tests.reliability.rig import FAULTS, FaultInjector, Seen, all_rows, until
from tests.support.api import finish
from tests.support.media import mp4_info

pytestmark = pytest.mark.engine  # these tests watch videos finish

OK, FAIL = 40, 20
TIMEOUT_S = 2.0  # the gateway's vendor timeout; a "timeout" fault hangs longer than this (2 s: a loaded CI machine
# must not turn a slow success into a timeout, which an upstream without idempotency would see as two creates)


async def test_every_task_ends_right_with_30_percent_vendor_faults(own_database, tmp_path) -> None:
    seen: list[Seen] = []
    fakes = {name: openai_upstream.make_app(api_key=f"sk-up-{name}", poll_after_ms=20) for name in ("a", "b")}
    servers = {
        name: LiveServer(FaultInjector(app, state, channel=name, log=seen, rate=0.3, hang_s=TIMEOUT_S + 0.6, seed=i))
        for i, (name, (app, state)) in enumerate(fakes.items())
    }
    config = tmp_path / "gateway.yaml"
    channels = [
        {
            "name": name,
            "vendor": "openai_compat",
            "credentials": {"api_key": f"sk-up-{name}"},
            "base_url": f"{server.url}/v1",
            "models": ["sora-2"],
            "priority": prio,
        }
        for (name, server), prio in zip(servers.items(), (10, 5), strict=True)
    ]
    config.write_text(yaml.safe_dump({"channels": channels, "sandbox": False}))
    gateway = create_app(
        make_settings(
            own_database,
            tmp_path / "data",
            config=config,
            vendor_timeout_s=TIMEOUT_S,
            poll_interval_ms=30,
            poll_max_interval_ms=150,
            channel_cooldown_s=0.2,
            channel_cooldown_max_s=0.5,
            # leases long enough that a loaded SQLite never lets a submit's claim lapse mid-call (that is
            # test_leases.py's subject): an upstream without idempotency would then see a second create
            claim_lease_s=30,
        )
    )
    prompts = [f"ok {i}" for i in range(OK)] + [f"fail {i}" for i in range(FAIL)]
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        async with gateway.router.lifespan_context(gateway):
            auth = {"Authorization": f"Bearer {await new_key(gateway)}"}
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=auth, timeout=60) as c:
                gate = asyncio.Semaphore(10)

                async def create(prompt: str) -> httpx.Response:
                    async with gate:
                        return await c.post(
                            "/v1/videos", json={"prompt": prompt, "model": "sora-2", "seconds": "4", "size": "720x1280"}
                        )

                answers = dict(zip(prompts, await asyncio.gather(*map(create, prompts)), strict=True))
                ids = {p: r.json()["id"] for p, r in answers.items() if r.status_code == 200}
                finals: dict[str, dict] = {}

                async def all_final() -> bool:
                    for prompt, vid in ids.items():
                        if prompt not in finals:
                            body = (await c.get(f"/v1/videos/{vid}")).json()
                            if body["status"] in ("completed", "failed"):
                                finals[prompt] = body
                    return len(finals) == len(ids)

                await until(all_final, timeout=90, every=0.2, what="every task to finish")
                contents = {p: (await c.get(f"/v1/videos/{ids[p]}/content")) for p in ids if p.startswith("ok")}

    rows = {r.id: r for r in await all_rows(own_database)}
    creates: dict[str, list[Seen]] = defaultdict(list)
    for s in seen:
        if s.kind == "create":
            creates[s.key].append(s)
    accepted = Counter(t["prompt"] for _, state in fakes.values() for t in state.tasks.values())

    wrong: dict[str, object] = {}
    for prompt, r in answers.items():
        if r.status_code == 429:
            # only when every channel throttled this create; then nothing is stored and nothing runs
            assert {s.fault for s in creates[prompt]} == {"429"}, creates[prompt]
            assert accepted[prompt] == 0 and prompt not in {row.prompt for row in rows.values()}
            continue
        assert r.status_code == 200, (prompt, r.text)
        body = finals[prompt]
        expected = ("completed", None) if prompt.startswith("ok") else ("failed", "moderation_blocked")
        got = (body["status"], (body["error"] or {}).get("code"))
        if got != expected:
            upstream = rows[body["id"]].vendor_task_id
            wrong[prompt] = (got, body["error"], [(s.kind, s.fault) for s in seen if s.key in (prompt, upstream)])
        elif prompt.startswith("ok"):
            assert contents[prompt].status_code == 200 and mp4_info(contents[prompt].content)[4] > 0
        # created upstream exactly once, on one channel, although creates were retried and failed over
        assert accepted[prompt] == 1, (prompt, creates[prompt])
    assert not wrong, "\n".join(f"{p}: {w}" for p, w in wrong.items())

    # the faults really happened, of every kind, on creates, polls and downloads alike
    assert {s.fault for s in seen} >= set(FAULTS)
    assert {s.kind for s in seen if s.fault} == {"create", "poll", "content"}
    # failover within one request: a's create faulted, and b took the task
    failed_over = [
        p for p, attempts in creates.items() if len(attempts) >= 2 and attempts[0].channel != attempts[1].channel
    ]
    assert failed_over and all(creates[p][0].fault for p in failed_over)
    assert any(t["prompt"] in failed_over for t in fakes["b"][1].tasks.values())
    # nothing is left behind: no task without a terminal state, and only the 429s were refused
    assert len(ids) + sum(r.status_code == 429 for r in answers.values()) == len(prompts)
    assert len(ids) >= len(prompts) * 0.8


async def test_a_queued_task_waits_out_throttling_on_every_channel(own_database, tmp_path) -> None:
    """Accepted during an outage, then every channel says 429 on the engine's retry: the task is the
    client's already, so it waits and retries rather than failing on a passing rate limit."""
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", priority=10), ups.channel("b", priority=5)])
    async with Gateway(own_database, tmp_path, ups, cfg, channel_cooldown_s=0.05) as (_, c, auth):
        for name in ("a", "b"):
            ups.state(name).arm("500")
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert r.status_code == 200, r.text  # every channel down: queued, the engine retries
        for name in ("a", "b"):
            ups.state(name).arm("429")  # before the engine's first retry: nothing ran in between
        body = await finish(c, auth, r.json()["id"])
        assert (body["status"], body["error"]) == ("completed", None), body
        assert ups.creates("a") + ups.creates("b") == 5  # 2 failed + 2 throttled + the one that took it


class _FlakyAfterTheFact:
    """The upstream fails `n` polls once the task is done, then `n` downloads: two separate runs of bad
    luck, each shorter than the gateway's download budget (6), together longer."""

    def __init__(self, app: Any, state: Any, n: int) -> None:
        self.app, self.state, self.n = app, state, n
        self.failed: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        parts = scope["path"].split("/")
        task = self.state.tasks.get(parts[3]) if scope["type"] == "http" and len(parts) > 3 else None
        kind = "content" if scope["path"].endswith("/content") else "poll"
        if task is not None and task["status"] == "completed" and self.failed[kind] < self.n:
            self.failed[kind] += 1
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        await self.app(scope, receive, send)


async def test_failed_polls_do_not_use_up_the_download_budget(own_database, tmp_path) -> None:
    app, state = openai_upstream.make_app(api_key="sk-up-flaky", poll_after_ms=10)
    flaky = _FlakyAfterTheFact(app, state, n=3)
    config = tmp_path / "gateway.yaml"
    channel = {"name": "f", "vendor": "openai_compat", "credentials": {"api_key": "sk-up-flaky"}}
    config.write_text(yaml.safe_dump({"channels": [{**channel, "base_url": "http://flaky/v1"}], "sandbox": False}))
    http = httpx.AsyncClient(mounts={"http://flaky": httpx.ASGITransport(app=flaky)})
    settings = make_settings(
        own_database, tmp_path / "data", config=config, poll_interval_ms=10, poll_max_interval_ms=50
    )
    gateway = create_app(settings, http=http)
    async with gateway.router.lifespan_context(gateway):
        auth = {"Authorization": f"Bearer {await new_key(gateway)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as c:
            r = await c.post("/v1/videos", headers=auth, json=CREATE)
            body = await finish(c, auth, r.json()["id"])
    await http.aclose()
    assert flaky.failed == {"poll": 3, "content": 3}
    assert (body["status"], body["error"]) == ("completed", None), body
