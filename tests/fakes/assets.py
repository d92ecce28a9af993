"""A real H.264 MP4 for fake vendors to serve: the gateway decodes what it downloads, as a user would."""

from __future__ import annotations

import functools
import io

import av
import numpy as np


@functools.cache
def real_mp4(
    *, frames: int = 24, width: int = 96, height: int = 64, fps: int = 24, noise: bool = True, audio: bool = False
) -> bytes:
    """Noise frames compress badly, so the file is large enough to arrive in several chunks.

    `audio`: with an AAC sound track (a 440 Hz tone as long as the video), as audio-capable models make."""
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "0" if noise else "23"}
        sound = container.add_stream("aac", rate=44100) if audio else None
        if sound is not None:
            _tone(container, sound, seconds=frames / fps)
        for i in range(frames):
            img = (
                rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if noise
                else np.full((height, width, 3), i * 10 % 256, np.uint8)
            )
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, *, seconds: float) -> None:
    rate, chunk = 44100, 1024
    total = int(rate * seconds)
    t = np.arange(total) / rate
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, total, chunk):
        part = samples[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
        frame.rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
