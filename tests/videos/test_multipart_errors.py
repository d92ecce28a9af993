"""Multipart bodies the parser refuses answer the error envelope with a stable code, `invalid_multipart`
(Starlette raises them as an HTTPException inside an app, which used to be rendered with `code: null`)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import assert_error

B = "vgboundary"


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disp = f'Content-Disposition: form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{B}\r\n{disp}\r\n\r\n".encode() + value + b"\r\n"


PROMPT = _part("prompt", b"a cat")
CASES = {
    "no boundary parameter": ("multipart/form-data", PROMPT + f"--{B}--\r\n".encode()),
    "too many files": (
        f"multipart/form-data; boundary={B}",
        PROMPT + b"".join(_part(f"f{i}", b"x", filename=f"{i}.png") for i in range(9)) + f"--{B}--\r\n".encode(),
    ),
    "part header without a name": (
        f"multipart/form-data; boundary={B}",
        f"--{B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{B}--\r\n".encode(),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("path", ["/v1/videos", "/v1/videos/characters"])
async def test_malformed_multipart_is_invalid_multipart(
    client: httpx.AsyncClient, auth: dict[str, str], case: str, path: str
) -> None:
    ctype, body = CASES[case]
    r = await client.post(path, headers={**auth, "Content-Type": ctype}, content=body)
    err = assert_error(r, 400, code="invalid_multipart")
    assert err["type"] == "invalid_request_error"
