"""The Volcengine V4 signer against the worked examples of jimeng.md §5.3, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from app.providers.volc_sign import (
    VolcV4Auth,
    canonical_query,
    canonical_request,
    sha256_hex,
    sign,
    signing_key,
)

AK = "AKLTtestAccessKeyId0000000000000000000000000"
SK = "dGVzdFNlY3JldEFjY2Vzc0tleTAwMDAwMDAwMDAwMDA="
X_DATE = "20250615T083000Z"
HOST = "visual.volcengineapi.com"
SUBMIT_QUERY = "Action=CVSync2AsyncSubmitTask&Version=2022-08-31"
RESULT_QUERY = "Action=CVSync2AsyncGetResult&Version=2022-08-31"
SUBMIT_BODY = (
    b'{"req_key":"jimeng_t2v_v30","prompt":"a red fox running through snow",'
    b'"seed":-1,"frames":121,"aspect_ratio":"16:9"}'
)
RESULT_BODY = b'{"req_key":"jimeng_t2v_v30","task_id":"7392616336519610409"}'
SUBMIT_HASH = "f7f47d7127d105c1ca67e3f4f524a6c21491b85da32a9b540036d2be3fcf439c"
RESULT_HASH = "fb9ad4e9500a5f8ce1fba86a5f8708142a074934631f559598ad89fbf5a8c123"
SCOPE = "20250615/cn-north-1/cv/request"

CANONICAL_SUBMIT = (
    "POST\n"
    "/\n"
    "Action=CVSync2AsyncSubmitTask&Version=2022-08-31\n"
    "content-type:application/json\n"
    "host:visual.volcengineapi.com\n"
    f"x-content-sha256:{SUBMIT_HASH}\n"
    "x-date:20250615T083000Z\n"
    "\n"
    "content-type;host;x-content-sha256;x-date\n"
    f"{SUBMIT_HASH}"
)
SIG_SUBMIT = "e805236fd0c9894d2dc2d832e0dec2aac2e4ba8a4aeec4ab242fdac04e388bb2"
SIG_RESULT = "58963bf22d878e67668d73357761403656f42e4fe5490f39a7b27303a47afa2a"
SIG_MINIMAL = "b726b3fc7583f49d86f67dcade00467bce190b20b65ee6b57ecb56e9ad58af03"
FULL = "content-type;host;x-content-sha256;x-date"


def _auth(sig: str, signed: str = FULL) -> str:
    return f"HMAC-SHA256 Credential={AK}/{SCOPE}, SignedHeaders={signed}, Signature={sig}"


def _headers(payload_hash: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Host": HOST,
        "X-Content-Sha256": payload_hash,
        "X-Date": X_DATE,
    }


def _fixed() -> datetime:
    return datetime(2025, 6, 15, 8, 30, tzinfo=UTC)


class TestWorkedExample:
    def test_payload_hashes(self) -> None:
        assert sha256_hex(SUBMIT_BODY) == SUBMIT_HASH
        assert sha256_hex(RESULT_BODY) == RESULT_HASH
        assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    def test_canonical_request_and_signed_headers(self) -> None:
        creq, signed = canonical_request("POST", "/", SUBMIT_QUERY, _headers(SUBMIT_HASH), SUBMIT_HASH)
        assert creq == CANONICAL_SUBMIT
        assert len(creq.split("\n")) == 10
        assert signed == FULL
        assert sha256_hex(creq.encode()) == "321df7c6f7a1a32f42da88f7b74c6db72cbc87b2541b346a759dec69c9985864"

    def test_signing_key_chain(self) -> None:
        assert signing_key(SK, "20250615").hex() == ("f00f7b743a1289751b6a5a565b1d87c102538a1c656147a0edc9d6d7c46ea0e3")

    def test_submit_signature_and_authorization(self) -> None:
        sig = sign(
            access_key=AK,
            secret_key=SK,
            method="POST",
            path="/",
            query=SUBMIT_QUERY,
            headers=_headers(SUBMIT_HASH),
            payload_hash=SUBMIT_HASH,
            x_date=X_DATE,
        )
        assert sig.canonical_request == CANONICAL_SUBMIT
        assert sig.string_to_sign == (
            "HMAC-SHA256\n20250615T083000Z\n20250615/cn-north-1/cv/request\n"
            "321df7c6f7a1a32f42da88f7b74c6db72cbc87b2541b346a759dec69c9985864"
        )
        assert sig.signature == SIG_SUBMIT
        assert sig.authorization == _auth(SIG_SUBMIT)

    def test_get_result_vector(self) -> None:
        sig = sign(
            access_key=AK,
            secret_key=SK,
            method="POST",
            path="/",
            query=RESULT_QUERY,
            headers=_headers(RESULT_HASH),
            payload_hash=RESULT_HASH,
            x_date=X_DATE,
        )
        assert sig.string_to_sign.endswith("20b38380c7f5b923ed27af79036f43cbf7b302df37c7b9b79f4e22d4478d5ef0")
        assert sig.authorization == _auth(SIG_RESULT)

    def test_host_and_date_only_vector(self) -> None:
        sig = sign(
            access_key=AK,
            secret_key=SK,
            method="POST",
            path="/",
            query=SUBMIT_QUERY,
            headers={"Host": HOST, "X-Date": X_DATE},
            payload_hash=SUBMIT_HASH,
            x_date=X_DATE,
        )
        assert sha256_hex(sig.canonical_request.encode()) == (
            "1c284c51d7aac84d5d3e1e5d89c3b5d3e6c977e126f4d3a74183fafc3d84df1f"
        )
        assert sig.authorization == _auth(SIG_MINIMAL, "host;x-date")

    def test_wrong_secret_changes_signature(self) -> None:
        sig = sign(
            access_key=AK,
            secret_key=SK + "x",
            method="POST",
            path="/",
            query=SUBMIT_QUERY,
            headers=_headers(SUBMIT_HASH),
            payload_hash=SUBMIT_HASH,
            x_date=X_DATE,
        )
        assert sig.signature != SIG_SUBMIT


class TestCanonicalQuery:
    @pytest.mark.parametrize(
        ("pairs", "expected"),
        [
            ([("Version", "2022-08-31"), ("Action", "CVSync2AsyncSubmitTask")], SUBMIT_QUERY),
            ([("b", "a b"), ("a", "x+y/z")], "a=x%2By%2Fz&b=a%20b"),
            ([("k", "2"), ("k", "1")], "k=1&k=2"),
            ([("t", "~-_.")], "t=~-_."),
            ([], ""),
        ],
    )
    def test_encoding_and_order(self, pairs: list[tuple[str, str]], expected: str) -> None:
        assert canonical_query(pairs) == expected


class TestHttpxAuth:
    def _signed(self, url: str, body: bytes, now: datetime = _fixed()) -> httpx.Request:
        request = httpx.Request("POST", url, content=body, headers={"Content-Type": "application/json"})
        return next(VolcV4Auth(AK, SK, now=lambda: now).auth_flow(request))

    def test_submit_request_headers_match_the_doc(self) -> None:
        req = self._signed(f"https://{HOST}/?{SUBMIT_QUERY}", SUBMIT_BODY)
        assert req.headers["X-Date"] == X_DATE
        assert req.headers["X-Content-Sha256"] == SUBMIT_HASH
        assert req.headers["Authorization"] == _auth(SIG_SUBMIT)
        assert req.content == SUBMIT_BODY

    def test_get_result_request(self) -> None:
        req = self._signed(f"https://{HOST}/?{RESULT_QUERY}", RESULT_BODY)
        assert req.headers["Authorization"] == _auth(SIG_RESULT)

    def test_query_order_in_url_does_not_matter(self) -> None:
        req = self._signed(f"https://{HOST}/?Version=2022-08-31&Action=CVSync2AsyncSubmitTask", SUBMIT_BODY)
        assert req.headers["Authorization"] == _auth(SIG_SUBMIT)

    def test_local_time_is_converted_to_utc(self) -> None:
        local = _fixed().astimezone(timezone(timedelta(hours=8)))
        req = self._signed(f"https://{HOST}/?{SUBMIT_QUERY}", SUBMIT_BODY, now=local)
        assert req.headers["X-Date"] == X_DATE
        assert req.headers["Authorization"] == _auth(SIG_SUBMIT)

    def test_non_default_port_is_part_of_the_signed_host(self) -> None:
        req = self._signed(f"http://127.0.0.1:8080/?{SUBMIT_QUERY}", SUBMIT_BODY)
        expected = sign(
            access_key=AK,
            secret_key=SK,
            method="POST",
            path="/",
            query=SUBMIT_QUERY,
            headers={**_headers(SUBMIT_HASH), "Host": "127.0.0.1:8080"},
            payload_hash=SUBMIT_HASH,
            x_date=X_DATE,
        )
        assert req.headers["Authorization"] == expected.authorization
        assert req.headers["Authorization"] != _auth(SIG_SUBMIT)
