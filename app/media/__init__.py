"""Media helpers: synthetic rendering (sandbox provider) and asset derivation."""

from app.media.render import (
    ImageTooLarge,
    MediaError,
    VideoInfo,
    edit_video,
    extend_video,
    frame_png,
    image_size,
    make_spritesheet,
    make_thumbnail,
    probe_video,
    render_video,
    sniff_image,
)

__all__ = [
    "ImageTooLarge",
    "MediaError",
    "VideoInfo",
    "edit_video",
    "extend_video",
    "frame_png",
    "image_size",
    "make_spritesheet",
    "make_thumbnail",
    "probe_video",
    "render_video",
    "sniff_image",
]
