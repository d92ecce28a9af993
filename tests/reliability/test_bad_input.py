"""Bad input: schemathesis against vidgate's own OpenAPI document, and a multipart fuzzer (oversized and
truncated files, wrong content types, broken brackets, huge metadata, invalid UTF-8, deep nesting).
Never a 5xx, never a hang, and nothing stored for a rejected request.

One live gateway (uvicorn on loopback, engine off) serves the whole module: real HTTP parsing, bounded
by small body and image limits so the oversized cases stay cheap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from app.db import create_engine, create_sessionmaker
from app.keys.service import create_key
from app.main import create_app
from tests.conftest import PG_URL, LiveServer, make_settings
from tests.fakes.assets import real_mp4
from tests.reliability.conftest import fresh_database
from tests.support.media import solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish

ADMIN = "admin-token-for-the-fuzzer-0123456789"
MAX_BODY = 1024 * 1024
MAX_IMAGE = 64 * 1024
CREATES = ("/v1/videos", "/v1/videos/edits", "/v1/videos/extensions", "/v1/videos/characters")


@dataclass
class Served:
    url: str
    key: str
    storage: Path

    def headers(self, path: str = "/v1") -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN if path.startswith('/admin') else self.key}"}

    def stored(self) -> tuple[str | None, int]:
        """The key's newest video and the number of stored files: what a rejected request must not change."""
        r = httpx.get(f"{self.url}/v1/videos", params={"limit": "1"}, headers=self.headers(), timeout=10)
        assert r.status_code == 200, r.text
        newest = r.json()["data"][0]["id"] if r.json()["data"] else None
        files = sum(1 for p in (self.storage / "assets").rglob("*") if p.is_file())
        return newest, files


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("fuzz")
    with fresh_database(root) as url:
        settings = make_settings(
            url,
            root / "data",
            run_engine=False,  # accepted creates just wait: the fuzzer is about the front door
            admin_token=ADMIN,
            max_body_bytes=MAX_BODY,
            max_image_bytes=MAX_IMAGE,
            max_video_upload_bytes=4 * MAX_IMAGE,
            log_level="WARNING",
        )

        async def mk() -> str:
            engine = create_engine(settings.resolved_database_url)
            async with create_sessionmaker(engine)() as s:
                _, secret = await create_key(s, name="fuzz")
                await s.commit()
            await engine.dispose()
            return secret

        key = asyncio.run(mk())
        with LiveServer(create_app(settings)) as server:
            yield Served(server.url, key, root / "data")


def check(r: httpx.Response | Any, before: tuple[str | None, int] | None, served: Served, what: Any) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:500])
    if r.status_code >= 400 and r.content:
        err = json.loads(r.content)["error"]
        assert set(err) == {"message", "type", "param", "code"}, (what, err)
    if before is not None and r.status_code >= 400:
        assert served.stored() == before, ("a rejected request left something behind", what)


# ---------------------------------------------------------------------------------------------
# schemathesis: every operation of the OpenAPI document, positive and negative examples
# (driven from one test: schemathesis' lazy pytest fixture loader does not run on pytest 9)


def _operations(served: Served) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# Found by this test and fixed (app/admin/schemas.py refuses NUL): a NUL character in a key's name or
# owner used to be a 500 on PostgreSQL. `_fuzz` still collects those cases separately, to name them.
KNOWN_ADMIN_BUG = "app/admin: a NUL character in a key's name or owner is a 500 on PostgreSQL (not a 400)"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_operations_never_answer_5xx(served: Served, mode: GenerationMode) -> None:
    operations = _operations(served)
    assert len(operations) >= 12
    fuzzed, known = 0, []
    for operation in operations:
        try:
            _fuzz(served, operation, mode, known)
            fuzzed += 1
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break in, e.g., a GET without parameters
    assert fuzzed == len(operations) if mode is GenerationMode.POSITIVE else fuzzed >= 8
    assert not known, f"{KNOWN_ADMIN_BUG}: {known[:3]}"


def _fuzz(served: Served, operation: Any, mode: GenerationMode, known: list[Any]) -> None:
    path = operation.path

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        before = served.stored() if case.method == "POST" and path in CREATES else None
        r = case.call(base_url=served.url, headers=served.headers(path), timeout=10)
        what = (case.method, case.formatted_path, case.query, case.body)
        if r.status_code == 500 and PG_URL and path.startswith("/admin/keys") and _has_nul(case.body):
            known.append(what)
            return
        check(r, before, served, what)

    run()


# ---------------------------------------------------------------------------------------------
# Hand-made multipart and body abuse

B = "fuzzboundary42"
PNG = solid_image((5, 6, 7), size=(64, 64), fmt="PNG")


def part(
    name: bytes | str, value: bytes | str, *, filename: bytes | str | None = None, ctype: str | None = None
) -> bytes:
    name_b = name.encode() if isinstance(name, str) else name
    head = b'Content-Disposition: form-data; name="' + name_b + b'"'
    if filename is not None:
        head += b'; filename="' + (filename.encode() if isinstance(filename, str) else filename) + b'"'
    if ctype:
        head += f"\r\nContent-Type: {ctype}".encode()
    body = value.encode() if isinstance(value, str) else value
    return b"--" + B.encode() + b"\r\n" + head + b"\r\n\r\n" + body + b"\r\n"


def multipart(*parts: bytes, end: bool = True) -> bytes:
    return b"".join(parts) + (b"--" + B.encode() + b"--\r\n" if end else b"")


MP = f"multipart/form-data; boundary={B}"
BASE = (part("prompt", "fuzz"), part("seconds", "1"), part("size", "64x64"))
DEEP = 3_000


def _cases() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(id, path, headers, body)."""
    cases: list[tuple[str, str, dict[str, str], bytes]] = []

    def add(case_id: str, body: bytes, ctype: str = MP, path: str = "/v1/videos") -> None:
        cases.append((case_id, path, {"Content-Type": ctype}, body))

    # oversized and truncated files
    big_png = PNG + b"\0" * (MAX_IMAGE + 10)
    add("image over the limit", multipart(*BASE, part("input_reference", big_png, filename="a.png", ctype="image/png")))
    add("body over the limit", multipart(*BASE, part("input_reference", b"\0" * (MAX_BODY + 10), filename="a.png")))
    add(
        "truncated image",
        multipart(*BASE, part("input_reference", PNG[: len(PNG) // 2], filename="a.png", ctype="image/png")),
    )
    add("body cut inside a file", multipart(*BASE, part("input_reference", PNG, filename="a.png"))[:-40], ctype=MP)
    add("no closing boundary", multipart(*BASE, end=False))
    add("cut inside the headers", (b"--" + B.encode() + b"\r\nContent-Disposition: form-da"))
    add("empty multipart", b"")
    add(
        "video over the limit",
        multipart(*BASE, part("video", b"\0" * (5 * MAX_IMAGE), filename="v.mp4", ctype="video/mp4")),
        path="/v1/videos/edits",
    )
    add(
        "truncated video",
        multipart(*BASE, part("video", real_mp4()[:3000], filename="v.mp4", ctype="video/mp4")),
        path="/v1/videos/edits",
    )
    add(
        "truncated character",
        multipart(part("name", "c"), part("video", real_mp4()[:3000], filename="v.mp4", ctype="video/mp4")),
        path="/v1/videos/characters",
    )
    add(
        "garbage extension source",
        multipart(*BASE, part("video", b"\x00" * 100, filename="v.mp4")),
        path="/v1/videos/extensions",
    )
    add("too many files", multipart(*BASE, *(part(f"f{i}", b"x", filename=f"{i}.bin") for i in range(20))))
    add("too many fields", multipart(*BASE, *(part(f"metadata[k{i}]", "v") for i in range(1200))))
    # wrong content types
    add(
        "text as an image",
        multipart(*BASE, part("input_reference", b"hello, I am text", filename="a.png", ctype="image/png")),
    )
    add("image as text", multipart(*BASE, part("input_reference", PNG, filename="a.txt", ctype="text/plain")))
    add("gif", multipart(*BASE, part("input_reference", b"GIF89a" + b"\0" * 100, filename="a.gif", ctype="image/gif")))
    add(
        "svg",
        multipart(
            *BASE,
            part(
                "input_reference", b'<svg xmlns="http://www.w3.org/2000/svg"/>', filename="a.svg", ctype="image/svg+xml"
            ),
        ),
    )
    add("no boundary", multipart(*BASE), ctype="multipart/form-data")
    add("empty boundary", multipart(*BASE), ctype="multipart/form-data; boundary=")
    add("wrong boundary", multipart(*BASE), ctype="multipart/form-data; boundary=other")
    add("multipart/mixed", multipart(*BASE), ctype=f"multipart/mixed; boundary={B}")
    add("multipart sent as json", multipart(*BASE), ctype="application/json")
    add("json sent as multipart", b'{"prompt": "x"}')
    add("xml", b"<video><prompt>x</prompt></video>", ctype="application/xml")
    add("urlencoded broken", b"prompt=%ZZ&seconds=%&&=&size[=1", ctype="application/x-www-form-urlencoded")
    # broken brackets
    for name in (
        "metadata[",
        "metadata]",
        "metadata[a",
        "a[b]c",
        "[x]",
        "[]",
        "metadata[][]",
        "metadata[]]",
        "input_reference[image_url][",
        "input_reference[]",
        "video[id][x]",
        "characters[][id][]",
    ):
        add(f"field {name}", multipart(*BASE, part(name, "1")))
    add("object then scalar", multipart(*BASE, part("metadata[a][b]", "1"), part("metadata[a]", "2")))
    add("scalar then object", multipart(*BASE, part("metadata[a]", "1"), part("metadata[a][b]", "2")))
    add("list then object", multipart(*BASE, part("metadata[a][]", "1"), part("metadata[a][b]", "2")))
    add("metadata string then brackets", multipart(*BASE, part("metadata", "{}"), part("metadata[a]", "2")))
    for depth in (990, 1200):  # deeper than Python's recursion limit, within the multipart header limit
        add(f"brackets {depth} deep", multipart(*BASE, part("metadata" + "[a]" * depth, "1")))
        add(f"list brackets {depth} deep", multipart(*BASE, part("metadata" + "[]" * depth, "1")))
    # huge and hostile metadata
    add("huge metadata", multipart(*BASE, part("metadata", json.dumps({"k": "v" * (2 * MAX_IMAGE)}))))
    add("deep metadata", multipart(*BASE, part("metadata", '{"a":' * DEEP + "1" + "}" * DEEP)))
    add("metadata list", multipart(*BASE, part("metadata", "[1, 2]")))
    add("metadata NaN", multipart(*BASE, part("metadata", '{"seed": NaN, "cfg_scale": Infinity}')))
    add("metadata huge number", multipart(*BASE, part("metadata", '{"seed": 1' + "0" * 5000 + "}")))
    add(
        "metadata override",
        multipart(*BASE, part("metadata", '{"model": "x", "prompt": {"a": 1}, "sandbox_latency_ms": -5}')),
    )
    # invalid UTF-8 and control characters
    add(
        "invalid utf-8 value",
        multipart(part("prompt", b"\xff\xfe\xc3\x28"), part("seconds", b"\x80"), part("size", b"64x64\xff")),
    )
    add("invalid utf-8 name", multipart(*BASE, part(b"meta\xffdata", "1")))
    add(
        "invalid utf-8 filename",
        multipart(*BASE, part("input_reference", PNG, filename=b"\xff\xfe.png", ctype="image/png")),
    )
    add("invalid utf-8 metadata", multipart(*BASE, part("metadata", b'{"a": "\xff"}')))
    add(
        "nul bytes",
        multipart(part("prompt", "a\0b"), part("model", "sora-2\0"), part("size", "64x64\0"), part("seconds", "1\0")),
    )
    add("seconds absurd", multipart(part("prompt", "x"), part("seconds", "9" * 5000), part("size", "9" * 3000 + "x64")))
    # JSON bodies
    add("json invalid utf-8", b'{"prompt": "\xff\xfe"}', ctype="application/json")
    add("json deep", b"[" * DEEP + b"]" * DEEP, ctype="application/json")
    for depth in (900, 950, 990):  # just inside what the parser takes: whatever handles it next must cope
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        add(f"json metadata {depth} deep", b'{"prompt": "x", "metadata": ' + nested + b"}", ctype="application/json")
    add(
        "json deep object",
        b'{"prompt": "x", "metadata": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
        ctype="application/json",
    )
    add(
        "json wrong types",
        b'{"prompt": ["x"], "seconds": {"a": 1}, "size": 64, "model": null}',
        ctype="application/json",
    )
    add(
        "json bad image_url",
        b'{"prompt": "x", "input_reference": {"image_url": "data:image/png;base64,!!!!"}}',
        ctype="application/json",
    )
    add(
        "json data url not an image",
        b'{"prompt": "x", "input_reference": {"image_url": "data:image/png;base64,aGVsbG8="}}',
        ctype="application/json",
    )
    add(
        "json characters hostile",
        b'{"prompt": "x", "characters": [1, null, {"id": {"x": 1}}]}',
        ctype="application/json",
    )
    add(
        "json edits without source",
        b'{"prompt": "x", "video": {"id": ["a"]}}',
        ctype="application/json",
        path="/v1/videos/edits",
    )
    add(
        "json extend hostile",
        b'{"prompt": "x", "seconds": "1e309", "video": {"id": "video_x"}}',
        ctype="application/json",
        path="/v1/videos/extensions",
    )
    add("json remix", b'{"prompt": 5}', ctype="application/json", path="/v1/videos/video_nope/remix")
    add("json duplicated keys", b'{"prompt": "x", "prompt": {"a": 1}}', ctype="application/json")
    add("json NaN", b'{"prompt": "x", "metadata": {"seed": NaN, "cfg": -Infinity}}', ctype="application/json")
    add("json NUL escape", b'{"prompt": "a\\u0000b", "metadata": {"k\\u0000": 1}}', ctype="application/json")
    add("json lone surrogate", b'{"prompt": "\\ud800", "metadata": {"\\udfff": "x"}}', ctype="application/json")
    add("multipart NUL in metadata", multipart(*BASE, part("metadata", '{"a": "\\u0000"}')))
    add("multipart NUL in a name", multipart(*BASE, part("metadata[a\x00]", "1")))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("path", "headers", "body"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_bodies_are_4xx_and_store_nothing(
    served: Served, path: str, headers: dict[str, str], body: bytes
) -> None:
    before = served.stored()
    r = httpx.post(f"{served.url}{path}", headers={**served.headers(), **headers}, content=body, timeout=20)
    check(r, before, served, (path, body[:200]))
    if r.status_code == 200:
        # accepted only when it is a real request after all: the stored task says what was asked
        assert path == "/v1/videos" and r.json()["status"] == "queued", r.text


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "POST"])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/videos/%00",
        "/v1/videos/video_%00x/content",
        "/v1/videos/x/content?variant=%00",
        "/v1/videos/x/content?variant=../../etc/passwd",
        "/v1/videos?after=%00&limit=%00",
        "/v1/videos?limit=99999999999999999999999&order=%FF",
        "/v1/videos/characters/%00",
        "/v1/models/%00",
        "/v1/videos/%ff%fe",
        "/v1/videos/%ED%A0%80",  # a surrogate, UTF-8 encoded
        "/v1/videos/" + "x" * 5000,
        "/v1/videos/..%2F..%2Fadmin",
        "/v1/videos/%00/remix",
    ],
)
def test_hostile_urls_are_4xx(served: Served, method: str, path: str) -> None:
    before = served.stored()
    r = httpx.request(
        method,
        f"{served.url}{path}",
        headers=served.headers(),
        timeout=20,
        json={"prompt": "x"} if method == "POST" else None,
    )
    check(r, before, served, (method, path))


def test_oversized_chunked_body_without_length_is_413(served: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield multipart(*BASE, end=False)
        yield part("input_reference", b"", filename="a.png")[:-2]
        for _ in range(MAX_BODY // 65536 + 4):
            yield b"\0" * 65536

    before = served.stored()
    r = httpx.post(
        f"{served.url}/v1/videos", headers={**served.headers(), "Content-Type": MP}, content=chunks(), timeout=20
    )
    assert r.status_code == 413, r.text
    check(r, before, served, "chunked")


# ---------------------------------------------------------------------------------------------
# Random multipart: names with brackets, arbitrary bytes, odd content types, random truncation

NAMES = st.one_of(
    st.sampled_from(
        ["prompt", "model", "seconds", "size", "metadata", "input_reference", "video", "name", "characters"]
    ),
    st.text(alphabet="abcmetadinput_refvo[]{}\"'; =", min_size=0, max_size=30),
    st.builds(
        lambda base, sub: base + sub,
        st.sampled_from(["metadata", "input_reference", "video", "characters"]),
        st.text(alphabet="[]ab_", max_size=20),
    ),
)
VALUES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.sampled_from(
        [b"64x64", b"1", b"sora-2", b"{}", b'{"a": [1, {"b": null}]}', PNG, PNG[:50], b"http://127.0.0.1/x.png"]
    ),
)
PARTS = st.lists(
    st.tuples(
        NAMES,
        VALUES,
        st.one_of(st.none(), st.text(max_size=20)),
        st.one_of(
            st.none(),
            st.sampled_from(["image/png", "text/plain", "video/mp4", "application/json", "x/y; z", "image/png\x00"]),
        ),
    ),
    max_size=8,
)


@given(
    path=st.sampled_from([*CREATES, "/v1/videos/video_nope/remix"]),
    parts=PARTS,
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=2000)),
    ctype=st.sampled_from(
        [MP, MP, MP, "multipart/form-data", f"multipart/form-data; boundary={B}x", "application/json", ""]
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_random_multipart_never_5xx_and_stores_nothing_when_rejected(
    served: Served, path: str, parts: list, cut: int | None, ctype: str
) -> None:
    body = multipart(
        *(
            part(
                name.encode(errors="surrogateescape"),
                value,
                filename=fn,
                ctype=(ct.replace("\x00", "") if ct else None),
            )
            for name, value, fn, ct in parts
        )
    )
    if cut is not None:
        body = body[:cut]
    before = served.stored()
    headers = {**served.headers(), **({"Content-Type": ctype} if ctype else {})}
    r = httpx.post(f"{served.url}{path}", headers=headers, content=body, timeout=20)
    check(r, before, served, (path, ctype, body[:300]))
