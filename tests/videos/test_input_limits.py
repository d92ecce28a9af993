"""Bounded inputs (issue #10): metadata size, non-finite numbers, image pixels, uploads and full disks.

Each limit answers a clear 4xx (or 503 for a full disk) in the envelope, naming the param, and the
resource tests check the server stays small and responsive while it refuses (generous bounds: they
are not performance tests, they catch work that grows with what the client claims)."""

from __future__ import annotations

import base64
import errno
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import assert_error, finish
from tests.support.media import big_png, solid_image

# -- metadata: keys, depth and serialized size (item 17) ------------------------------------------


async def test_metadata_within_the_limits_is_accepted(client, auth) -> None:
    metadata = {f"k{i}": "v" * 200 for i in range(64)}  # 64 keys, ~14 KiB
    metadata["k0"] = {"a": {"b": {"c": "deep"}}}  # depth 4 counting the metadata object itself
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "metadata": metadata})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"k": "v" * 17_000}, "bytes"),
        ({f"k{i}": i for i in range(65)}, "keys"),
        ({"a": {"b": {"c": {"d": {"e": [1]}}}}}, "deep"),
    ],
    ids=["size", "keys", "depth"],
)
async def test_metadata_over_a_limit_is_400_naming_metadata(client, auth, metadata, words) -> None:
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "metadata": metadata})
    err = assert_error(r, 400, param="metadata", code="metadata_too_large")
    assert words in err["message"]
    # the same through multipart, as a JSON string part
    r = await client.post(
        "/v1/videos", headers=auth, files={"prompt": (None, "x"), "metadata": (None, json.dumps(metadata))}
    )
    assert_error(r, 400, param="metadata", code="metadata_too_large")


async def test_metadata_over_the_limit_in_bracket_fields_is_400(client, auth) -> None:
    files = {"prompt": (None, "x"), **{f"metadata[k{i}]": (None, "v") for i in range(100)}}
    r = await client.post("/v1/videos", headers=auth, files=files)
    assert_error(r, 400, param="metadata", code="metadata_too_large")


async def test_metadata_limits_are_settings(app, client, auth) -> None:
    app.state.gateway.settings.max_metadata_bytes = 100
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "metadata": {"k": "v" * 120}})
    assert_error(r, 400, param="metadata", code="metadata_too_large")


async def test_a_relay_image_data_url_in_metadata_is_bounded_by_the_image_limit_not_the_metadata_one(
    client, auth
) -> None:
    png = solid_image((9, 9, 9), size=(400, 300), fmt="PNG") + b"\0" * 20_000  # > 16 KiB as a data URL
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "metadata": {"img_url": url}})
    assert r.status_code == 200, r.text


async def test_a_json_body_is_bounded_before_it_is_parsed(app, client, auth, monkeypatch) -> None:
    from app.videos import parsing

    app.state.gateway.settings.max_image_bytes = 1000  # a JSON body holds at most two data URLs and small fields

    def never(raw: Any) -> Any:
        raise AssertionError("an oversized JSON body was parsed")

    monkeypatch.setattr(parsing, "load_json", never)
    body = b'{"prompt": "x", "metadata": {"k": "' + b"v" * (3 * 1024 * 1024) + b'"}}'
    r = await client.post("/v1/videos", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert_error(r, 413, code="request_too_large")


# -- non-finite and overflowing numbers (item 18) -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"prompt": "x", "metadata": {"v": 1e309}}', "metadata"),
        (b'{"prompt": "x", "metadata": {"v": [1, {"w": -1e400}]}}', "metadata"),
        (b'{"prompt": "x", "metadata": {"seed": NaN}}', "metadata"),
        (b'{"prompt": "x", "metadata": {"cfg": Infinity}}', "metadata"),
        (b'{"prompt": "x", "seconds": 1e309}', "seconds"),
        (b'{"prompt": "x", "seconds": -Infinity}', "seconds"),
        (b'{"prompt": "x", "seconds": 1' + b"0" * 400 + b"}", "seconds"),
        (b'{"prompt": "x", "seconds": "1' + b"0" * 400 + b'"}', "seconds"),
    ],
    ids=["meta-1e309", "meta-nested", "meta-nan", "meta-infinity", "sec-1e309", "sec-inf", "sec-401", "sec-401s"],
)
async def test_non_finite_or_huge_numbers_are_400_naming_the_param(client, auth, body, param) -> None:
    r = await client.post("/v1/videos", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert_error(r, 400, param=param)
    listed = await client.get("/v1/videos", headers=auth)
    assert listed.json()["data"] == [], "a refused request stored a video"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"metadata": '{"v": 1e309}'}, "metadata"),
        ({"metadata": '{"v": NaN}'}, "metadata"),
        ({"seconds": "1e309"}, "seconds"),
        ({"seconds": "1" + "0" * 400}, "seconds"),
    ],
    ids=["meta-json-1e309", "meta-json-nan", "sec-1e309", "sec-401"],
)
async def test_non_finite_numbers_in_multipart_are_400(client, auth, fields, param) -> None:
    files = {"prompt": (None, "x"), **{k: (None, v) for k, v in fields.items()}}
    r = await client.post("/v1/videos", headers=auth, files=files)
    assert_error(r, 400, param=param)


async def test_a_bracket_field_that_looks_like_a_huge_float_stays_a_string(client, auth) -> None:
    r = await client.post("/v1/videos", headers=auth, files={"prompt": (None, "x"), "metadata[v]": (None, "1e309")})
    assert r.status_code == 200, r.text


def test_parse_seconds_refuses_huge_integers_with_a_capability_error() -> None:
    from app.providers.capabilities import CapabilityError, parse_seconds

    for value in (10**400, -(10**400), float("inf"), "1e309", "9" * 401):
        with pytest.raises(CapabilityError) as info:
            parse_seconds(value)
        assert info.value.param == "seconds"


# -- image pixels (item 16) -------------------------------------------------------------------------


async def test_an_image_over_the_pixel_limit_is_400(app, client, auth) -> None:
    app.state.gateway.settings.max_image_pixels = 100 * 100
    png = solid_image((1, 2, 3), size=(101, 100), fmt="PNG")
    r = await client.post(
        "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("a.png", png, "image/png")}
    )
    err = assert_error(r, 400, param="input_reference", code="image_too_large")
    assert "10100" in err["message"].replace(",", "") and "10000" in err["message"].replace(",", "")
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "input_reference": {"image_url": url}})
    assert_error(r, 400, param="input_reference.image_url", code="image_too_large")
    ok = solid_image((1, 2, 3), size=(100, 100), fmt="PNG")
    r = await client.post(
        "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("a.png", ok, "image/png")}
    )
    assert r.status_code == 200, r.text


async def test_a_truncated_image_is_still_refused(client, auth) -> None:
    for fmt in ("PNG", "JPEG"):
        data = solid_image((1, 2, 3), size=(300, 200), fmt=fmt)
        data = data[: len(data) // 2]
        r = await client.post(
            "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("a", data, "image/png")}
        )
        assert_error(r, 400, param="input_reference", code="invalid_image")


_PROBE = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    sys.path.insert(0, os.getcwd())
    import httpx
    from app.main import create_app
    from tests.conftest import make_settings, new_key
    from tests.support.resources import RssSampler

    async def main(cfg):
        settings = make_settings(cfg["db"], cfg["storage"], run_engine=False, **cfg.get("settings", {}))
        app = create_app(settings)
        out = []
        async with app.router.lifespan_context(app):
            auth = {"Authorization": "Bearer " + await new_key(app)}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as c:
                # warm up: imports, the first request, a small image through the same path
                await c.post("/v1/videos", headers=auth, data={"prompt": "warm"},
                             files={"input_reference": ("a.png", open(cfg["small"], "rb").read(), "image/png")})
                for case in cfg["cases"]:
                    sent = 0

                    async def body(path=case["body"]):
                        nonlocal sent
                        with open(path, "rb") as fh:  # streamed, as a real client sends a big file
                            while chunk := fh.read(256 * 1024):
                                sent += len(chunk)
                                yield chunk

                    sampler = RssSampler()
                    stall = 0.0
                    done = asyncio.Event()

                    async def probe():
                        nonlocal stall
                        while not done.is_set():
                            t = time.perf_counter()
                            await asyncio.sleep(0.005)
                            stall = max(stall, time.perf_counter() - t - 0.005)

                    task = asyncio.create_task(probe())
                    await asyncio.sleep(0.02)
                    with sampler:
                        r = await c.post(case["path"], headers={**auth, "Content-Type": case["ctype"]},
                                         content=body())
                    done.set()
                    await task
                    out.append({"status": r.status_code, "body": r.json(), "rss_growth_mb": sampler.growth_mb,
                                "stall_s": stall, "sent_mb": sent / 2**20})
        print(json.dumps(out))

    asyncio.run(main(json.loads(sys.argv[1])))
    """
)


def _probe(tmp_path: Path, database_url: str, cases: list[dict[str, Any]], **settings: Any) -> list[dict[str, Any]]:
    """Run the cases against an app in a fresh interpreter: its peak RSS is this request's alone."""
    small = tmp_path / "small.png"
    small.write_bytes(solid_image((4, 5, 6), size=(64, 64), fmt="PNG"))
    cfg = {"db": database_url, "storage": str(tmp_path / "data"), "small": str(small), "cases": cases}
    cfg["settings"] = settings
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(cfg)], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _multipart(tmp_path: Path, name: str, field: str, filename: str, data: bytes, ctype: str) -> dict[str, Any]:
    boundary = "limitsboundary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in (("prompt", "x"), ("name", "Ana"))
    )
    body = (
        body + f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode()
    path = tmp_path / name
    path.write_bytes(body + data + f"\r\n--{boundary}--\r\n".encode())
    return {"body": str(path), "ctype": f"multipart/form-data; boundary={boundary}"}


def test_a_huge_image_is_refused_from_its_header_without_stalling_or_growing(tmp_path, database_url) -> None:
    rgba = big_png(13000, 13000, color_type=6)  # 169 Mpx, just under Pillow's own limit; ~660 KB
    rgb = big_png(9400, 9400, color_type=2)
    assert len(rgba) < 1_000_000
    url = "data:image/png;base64," + base64.b64encode(rgb).decode()
    json_case = tmp_path / "rgb.json"
    json_case.write_text(json.dumps({"prompt": "x", "input_reference": {"image_url": url}}))
    cases = [
        {"path": "/v1/videos", **_multipart(tmp_path, "rgba.mp", "input_reference", "a.png", rgba, "image/png")},
        {"path": "/v1/videos", "body": str(json_case), "ctype": "application/json"},
    ]
    results = _probe(tmp_path, database_url, cases)
    for result, param in zip(results, ("input_reference", "input_reference.image_url"), strict=True):
        assert result["status"] == 400, result
        assert result["body"]["error"]["code"] == "image_too_large", result
        assert result["body"]["error"]["param"] == param, result
        assert result["rss_growth_mb"] < 200, result
        assert result["stall_s"] < 0.5, result


def test_an_accepted_large_image_is_checked_off_the_event_loop(tmp_path, database_url) -> None:
    big = big_png(6000, 6000, color_type=6)  # 36 Mpx: under the default limit
    cases = [{"path": "/v1/videos", **_multipart(tmp_path, "big.mp", "input_reference", "a.png", big, "image/png")}]
    (result,) = _probe(tmp_path, database_url, cases)
    assert result["status"] == 200, result
    assert result["rss_growth_mb"] < 200, result
    assert result["stall_s"] < 0.5, result


def test_the_sandbox_scales_a_big_reference_image_down_while_decoding(tmp_path) -> None:
    src = tmp_path / "big.jpg"
    src.write_bytes(solid_image((200, 100, 50), size=(7000, 5000), fmt="JPEG"))  # 35 Mpx, ~105 MB decoded
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, os.getcwd())
        from app.providers.sandbox import render
        from tests.support.resources import RssSampler
        data = open({str(src)!r}, "rb").read()
        render.render_video({str(tmp_path / "warm.mp4")!r}, width=64, height=64, seconds=1, prompt="w", fps=2,
                            first_frame=open({str(tmp_path / "small.png")!r}, "rb").read())
        with RssSampler() as sampler:
            render.render_video({str(tmp_path / "out.mp4")!r}, width=64, height=64, seconds=1, prompt="x", fps=2,
                                first_frame=data)
        print(sampler.growth_mb)
        """
    )
    (tmp_path / "small.png").write_bytes(solid_image((1, 1, 1), size=(32, 32), fmt="PNG"))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(proc.stdout.strip().splitlines()[-1]) < 60, proc.stdout


# -- uploads stream to disk, refused as they pass the limit (item 29) -------------------------------


def test_an_upload_far_over_the_limit_is_413_without_growing_memory(tmp_path, database_url) -> None:
    limit = 64 * 1024 * 1024
    junk = b"\0" * (110 * 1024 * 1024)
    cases = [
        {"path": "/v1/videos/edits", **_multipart(tmp_path, "edit.mp", "video", "v.mp4", junk, "video/mp4")},
        {"path": "/v1/videos/characters", **_multipart(tmp_path, "char.mp", "video", "v.mp4", junk, "video/mp4")},
    ]
    del junk
    results = _probe(tmp_path, database_url, cases, max_video_upload_bytes=limit)
    for result in results:
        assert result["status"] == 413, result
        assert result["body"]["error"]["param"] == "video", result
        assert result["body"]["error"]["code"] == "file_too_large", result
        assert result["rss_growth_mb"] < 40, result
        assert result["sent_mb"] < 100, result  # answered once the limit was passed, not after the whole body


def test_an_accepted_upload_is_not_read_into_memory(tmp_path, database_url) -> None:
    from tests.fakes.assets import real_mp4

    mp4 = real_mp4()
    # a real video followed by 60 MB of padding: still decodable, and large enough to see if it is read whole
    padded = mp4 + b"\0" * (60 * 1024 * 1024)
    cases = [{"path": "/v1/videos/edits", **_multipart(tmp_path, "edit.mp", "video", "v.mp4", padded, "video/mp4")}]
    del padded
    (result,) = _probe(tmp_path, database_url, cases)
    assert result["status"] in (200, 400), result  # the sandbox edits; what matters is the memory
    assert result["rss_growth_mb"] < 40, result


async def test_an_oversized_image_upload_is_refused_as_it_streams(app, client, auth) -> None:
    app.state.gateway.settings.max_image_bytes = 1000
    big = solid_image((1, 2, 3), size=(800, 800), fmt="PNG") + b"\0" * 50_000
    r = await client.post(
        "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("big.png", big, "image/png")}
    )
    assert_error(r, 413, param="input_reference", code="file_too_large")


# -- full disks (item 25) ---------------------------------------------------------------------------


def _files(root: Path | str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def _sqlite_full() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT INTO videos ...", {}, sqlite3.OperationalError("database or disk is full"))


def _asyncpg_full() -> Exception:
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.exc import OperationalError

    cause = asyncpg.exceptions.DiskFullError("could not extend file: No space left on device")
    adapted = AsyncAdapt_asyncpg_dbapi(asyncpg).OperationalError(f"{type(cause)}: {cause}")
    adapted.sqlstate = cause.sqlstate
    adapted.__cause__ = cause
    return OperationalError("INSERT INTO videos ...", {}, adapted)


def test_the_storage_full_classifier() -> None:
    from sqlalchemy.exc import OperationalError

    from app.errors import is_storage_full

    assert is_storage_full(_sqlite_full())
    assert is_storage_full(_asyncpg_full())
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_storage_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    wrapped = RuntimeError("while storing")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_storage_full(wrapped)
    assert not is_storage_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_storage_full(OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")))
    assert not is_storage_full(RuntimeError("disk is full"))  # only what the database or the OS says


@pytest.mark.parametrize("make", [_sqlite_full, _asyncpg_full], ids=["sqlite", "asyncpg"])
async def test_a_full_database_is_a_503_storage_full(app, client, auth, monkeypatch, make) -> None:
    from app.videos import submission

    async def full(*a: Any, **k: Any) -> None:
        raise make()

    monkeypatch.setattr(submission, "_store_row", full)
    r = await client.post("/v1/videos", headers=auth, json={"prompt": "x"})
    err = assert_error(r, 503, code="storage_full")
    assert err["type"] == "server_error" and "full" in err["message"]
    assert r.headers.get("retry-after")


async def test_full_asset_storage_on_create_is_a_503_and_leaves_no_file(app, client, auth, monkeypatch) -> None:
    storage = app.state.gateway.storage

    def no_space(self: Path, data: bytes) -> int:
        with self.open("wb") as fh:  # the disk takes the first bytes, then no more
            fh.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    png = solid_image((1, 2, 3), size=(64, 64), fmt="PNG")
    r = await client.post(
        "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("a.png", png, "image/png")}
    )
    assert_error(r, 503, code="storage_full")
    monkeypatch.undo()
    left = _files(storage.root)
    assert left == [], left
    listed = await client.get("/v1/videos", headers=auth)
    assert listed.json()["data"] == []


@pytest.mark.engine
async def test_full_asset_storage_in_the_engine_retries_then_fails_truly(app, client, auth, monkeypatch) -> None:
    from app.videos import engine as engine_mod

    gw = app.state.gateway
    calls = {"n": 0}
    real_put = type(gw.storage).put_file

    async def full_put(self: Any, key: str, src: Path) -> None:
        calls["n"] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(gw.storage), "put_file", full_put)
    monkeypatch.setattr(engine_mod.TaskEngine, "_backoff", lambda self, attempts: 0.01)
    png = solid_image((1, 2, 3), size=(64, 64), fmt="PNG")
    r = await client.post(
        "/v1/videos",
        headers=auth,
        data={"prompt": "x", "seconds": "1", "size": "64x64"},
        files={"input_reference": ("a.png", png, "image/png")},
    )
    assert r.status_code == 200, r.text
    body = await finish(client, auth, r.json()["id"], timeout=60)
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "storage_full", body
    assert "storage is full" in body["error"]["message"], body
    assert calls["n"] >= engine_mod.MAX_DOWNLOAD_ATTEMPTS  # it was retried before giving up
    await gw.engine.drain()
    monkeypatch.setattr(type(gw.storage), "put_file", real_put)
    scratch = _files(gw.storage.root)
    assert scratch == [], scratch
    sandbox_dirs = [p for p in _files(gw.settings.storage_dir) if "sbx_" in p.name]
    assert sandbox_dirs == [], sandbox_dirs
