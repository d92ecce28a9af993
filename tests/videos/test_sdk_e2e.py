"""End to end with the real `openai` package against uvicorn on a loopback port: unchanged OpenAI code."""

from __future__ import annotations

import io
import time

import openai
import pytest
from openai import OpenAI

from tests.support.media import audio_seconds, first_frame, image_format, mp4_info, solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish


@pytest.fixture
def client(live) -> OpenAI:
    server, key = live
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def wait(client: OpenAI, video_id: str, timeout: float = 60) -> openai.types.Video:
    video = client.videos.poll(video_id, poll_interval_ms=50)
    assert video.status in ("completed", "failed")
    return video


class TestCreateAndDownload:
    def test_create_and_poll_then_download_all_variants(self, client: OpenAI) -> None:
        video = client.videos.create_and_poll(
            prompt="A calico cat playing a piano on stage", seconds="2", size="320x240", poll_interval_ms=50
        )
        assert video.status == "completed"
        assert video.progress == 100
        assert video.model == "sora-2"
        assert video.prompt == "A calico cat playing a piano on stage"
        assert (video.size, video.seconds) == ("320x240", "2")
        assert isinstance(video.completed_at, int) and isinstance(video.expires_at, int)
        assert video.expires_at > video.completed_at

        mp4 = client.videos.download_content(video.id).read()
        codec, w, h, secs, _ = mp4_info(mp4)
        assert (codec, w, h) == ("h264", 320, 240)
        assert abs(secs - 2.0) < 0.2

        thumb = client.videos.download_content(video.id, variant="thumbnail").read()
        assert image_format(thumb)[0] == "WEBP"
        sprite = client.videos.download_content(video.id, variant="spritesheet").read()
        assert image_format(sprite)[0] == "JPEG"

    def test_audio_on_request_plays_as_long_as_the_video(self, client: OpenAI) -> None:
        """`metadata.audio` makes the sandbox add a sound track, so client authors can test players."""
        video = client.videos.create_and_poll(
            prompt="with sound",
            seconds="2",
            size="160x120",
            poll_interval_ms=50,
            extra_body={"metadata": {"audio": "true"}},
        )
        assert video.status == "completed"
        mp4 = client.videos.download_content(video.id).read()
        assert abs((audio_seconds(mp4) or 0) - 2.0) < 0.1
        silent = client.videos.create_and_poll(prompt="silent", seconds="1", size="160x120", poll_interval_ms=50)
        assert audio_seconds(client.videos.download_content(silent.id).read()) is None

    def test_defaults_are_openais(self, client: OpenAI) -> None:
        video = client.videos.create(prompt="defaults", extra_body={"metadata": {"sandbox_latency_ms": 0}})
        assert video.status == "queued"
        assert (video.size, video.seconds, video.model) == ("720x1280", "4", "sora-2")

    def test_input_reference_file_is_the_first_frame(self, client: OpenAI) -> None:
        ref = solid_image((250, 20, 20), size=(640, 360))
        video = client.videos.create_and_poll(
            prompt="red start",
            seconds="1",
            size="320x180",
            input_reference=("ref.jpg", io.BytesIO(ref), "image/jpeg"),
            poll_interval_ms=50,
        )
        assert video.status == "completed", video.error
        frame = first_frame(client.videos.download_content(video.id).read())
        r, g, b = frame.reshape(-1, 3).mean(axis=0)
        assert r > 200 and g < 60 and b < 60

    def test_failure_is_in_band(self, client: OpenAI) -> None:
        video = client.videos.create_and_poll(
            prompt="doomed",
            seconds="1",
            size="128x128",
            extra_body={"metadata": {"sandbox_fail": "moderation_blocked"}},
            poll_interval_ms=50,
        )
        assert video.status == "failed"
        assert video.error is not None and video.error.code == "moderation_blocked"


class TestListRetrieveDelete:
    def test_pages_in_both_orders(self, client: OpenAI) -> None:
        ids = [
            client.videos.create(
                prompt=f"p{i}", seconds="1", size="64x64", extra_body={"metadata": {"sandbox_latency_ms": 0}}
            ).id
            for i in range(5)
        ]
        desc = [v.id for v in client.videos.list(limit=2, order="desc")]
        asc = [v.id for v in client.videos.list(limit=2, order="asc")]
        assert desc == list(reversed(ids))
        assert asc == ids
        page = client.videos.list(limit=2, order="desc")
        assert page.has_more is True and len(page.data) == 2
        assert client.videos.retrieve(ids[0]).id == ids[0]

    def test_delete_then_404(self, client: OpenAI) -> None:
        video = client.videos.create_and_poll(prompt="bye", seconds="1", size="64x64", poll_interval_ms=50)
        deleted = client.videos.delete(video.id)
        assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(video.id)
        with pytest.raises(openai.NotFoundError):
            client.videos.download_content(video.id)
        assert video.id not in [v.id for v in client.videos.list(limit=100)]


class TestDerivedVideos:
    def test_remix_edit_extend(self, client: OpenAI) -> None:
        src = client.videos.create_and_poll(prompt="source", seconds="2", size="160x96", poll_interval_ms=50)
        assert src.status == "completed"

        remix = client.videos.remix(src.id, prompt="same scene, at night")
        assert remix.remixed_from_video_id == src.id
        remix = wait(client, remix.id)
        assert remix.status == "completed" and (remix.size, remix.seconds) == ("160x96", "2")

        # openai-python cannot send video={"id": ...} itself (a known SDK bug); extra_body is the workaround
        edit = client.videos.edit(prompt="make it blue", video=openai.omit, extra_body={"video": {"id": src.id}})
        edit = wait(client, edit.id)
        assert edit.status == "completed"
        _, w, h, secs, _ = mp4_info(client.videos.download_content(edit.id).read())
        assert (w, h) == (160, 96) and abs(secs - 2) < 0.2

        ext = client.videos.extend(
            prompt="and then it rains", seconds="2", video=openai.omit, extra_body={"video": {"id": src.id}}
        )
        ext = wait(client, ext.id)
        assert ext.status == "completed" and ext.seconds == "4"
        _, _, _, secs, _ = mp4_info(client.videos.download_content(ext.id).read())
        assert abs(secs - 4) < 0.3

    def test_edit_an_uploaded_video(self, client: OpenAI) -> None:
        src = client.videos.create_and_poll(prompt="upload me", seconds="1", size="96x64", poll_interval_ms=50)
        data = client.videos.download_content(src.id).read()
        edit = client.videos.edit(prompt="edited upload", video=("in.mp4", io.BytesIO(data), "video/mp4"))
        edit = wait(client, edit.id)
        assert edit.status == "completed" and edit.size == "96x64"

    def test_characters(self, client: OpenAI) -> None:
        src = client.videos.create_and_poll(prompt="char", seconds="1", size="96x64", poll_interval_ms=50)
        data = client.videos.download_content(src.id).read()
        char = client.videos.create_character(name="Mochi", video=("c.mp4", io.BytesIO(data), "video/mp4"))
        assert char.id.startswith("char_") and char.name == "Mochi"
        assert client.videos.get_character(char.id).name == "Mochi"
        video = client.videos.create(
            prompt="Mochi dances", seconds="1", size="64x64", extra_body={"characters": [{"id": char.id}]}
        )
        assert wait(client, video.id).status == "completed"


class TestErrors:
    def test_bad_seconds_is_bad_request_with_param(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            client.videos.create(prompt="x", seconds="21")
        assert exc.value.status_code == 400
        assert exc.value.param == "seconds"
        assert exc.value.code == "invalid_value"
        assert "1 to 20" in exc.value.message
        assert exc.value.request_id

    def test_unknown_model_lists_models(self, client: OpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            client.videos.create(prompt="x", model="veo-9")
        assert exc.value.param == "model" and "sora-2" in exc.value.message

    def test_wrong_key(self, live) -> None:
        server, _ = live
        bad = OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.videos.list()
        assert exc.value.code == "invalid_api_key"

    def test_unknown_id(self, client: OpenAI) -> None:
        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve("video_doesnotexist")

    def test_content_of_unfinished_video_is_not_retried(self, client: OpenAI) -> None:
        video = client.videos.create(
            prompt="slow", seconds="1", size="64x64", extra_body={"metadata": {"sandbox_latency_ms": 60000}}
        )
        start = time.monotonic()
        with pytest.raises(openai.BadRequestError) as exc:
            OpenAI(base_url=client.base_url, api_key=client.api_key).videos.download_content(video.id)
        assert exc.value.code == "video_not_ready"
        assert time.monotonic() - start < 2  # a 400 is not retried by the SDK

    def test_models_list(self, client: OpenAI) -> None:
        ids = {m.id for m in client.models.list()}
        assert {"sandbox", "sora-2", "sora-2-pro"} <= ids

    def test_models_show_capabilities(self, client: OpenAI) -> None:
        """A client can learn sizes, durations, image inputs and audio before it creates (an extra field)."""
        caps = client.models.retrieve("sandbox").model_extra["capabilities"]  # type: ignore[index]
        assert caps["operations"] == ["create", "remix", "edit", "extend"]
        assert caps["image_input"] == "optional" and caps["audio"] in (True, False)
        assert caps["default_seconds"] in (caps["seconds"] or range(*caps["seconds_range"]))
