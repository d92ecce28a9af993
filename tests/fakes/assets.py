"""A real H.264 MP4 for fake vendors to serve: the gateway decodes what it downloads, as a user would."""

from __future__ import annotations

import functools
import io

import av
import numpy as np


@functools.cache
def real_mp4(*, frames: int = 24, width: int = 96, height: int = 64, fps: int = 24, noise: bool = True) -> bytes:
    """Noise frames compress badly, so the file is large enough to arrive in several chunks."""
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "0" if noise else "23"}
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
