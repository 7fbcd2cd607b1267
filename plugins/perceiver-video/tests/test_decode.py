"""PyAV decoding: sampling, resizing, the aligned audio track, and hostile files refused in one line."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from perceiver_video.decode import VideoDecodeError, frame_indices, probe, read_audio, read_video


def _index(frames: np.ndarray) -> list[int]:
    """The frame number each decoded frame shows (its flat grey is 20 * i, read off a corner)."""
    return [int(round(v / 20)) for v in frames[:, 0, 0, 0].astype(float)]


def test_probe_reads_the_header(clip_with_audio):
    info = probe(clip_with_audio)
    assert (info.width, info.height, info.frames, info.fps) == (32, 24, 20, 10.0)
    assert info.codec == "mpeg4" and info.audio_rate == 16000 and info.audio_channels == 1


def test_frames_at_a_stride_from_an_offset(clip):
    c = read_video(clip, num_frames=4, frame_step=3, start=1)
    assert c.frames.shape == (4, 24, 32, 3) and c.frames.dtype == np.uint8
    assert _index(c.frames) == [1, 4, 7, 10]
    np.testing.assert_allclose(c.times, [0.1, 0.4, 0.7, 1.0], atol=1e-6)


def test_evenly_spaced_frames_cover_the_video(clip):
    c = read_video(clip, num_frames=4, even=True)
    assert _index(c.frames) == [0, 4, 7, 11] == frame_indices(12, 4, even=True)


def test_resize_is_antialiased_and_keeps_the_aspect_ratio(tmp_path, make_clip):
    path = make_clip(tmp_path / "wide.mp4", frames=2, size=(32, 64))
    centre = read_video(path, num_frames=1, size=(8, 8))  # centre crop 32 x 32, then 4x smaller
    stretch = read_video(path, num_frames=1, size=(8, 8), crop="stretch")
    assert centre.frames.shape == stretch.frames.shape == (1, 8, 8, 3)
    # the white square of frame 0 sits at columns 0..3: outside the centre crop, inside the stretched frame
    assert centre.frames.max() < 20 and stretch.frames.max() > 30
    # antialiased: the 4 x 4 square (a quarter of an 8 x 4 block) becomes grey pixels near its mean, not a sampled
    # white or black one
    assert 30 < stretch.frames[0, :, 0, 0].max() < 100


def test_a_video_shorter_than_asked_is_refused(clip):
    with pytest.raises(VideoDecodeError, match="has 12 frames; frames 0..19"):
        read_video(clip, num_frames=20)


def test_audio_is_resampled_mono_and_aligned_to_the_frames(clip_with_audio):
    c = read_video(clip_with_audio, num_frames=4, start=5)  # frames 5..8 play from 0.5 s
    audio = read_audio(clip_with_audio, rate=8000, start=float(c.times[0]), duration=4 / c.fps)
    assert audio.dtype == np.float32 and audio.shape == (3200,)
    # the track's value is time / 2: the window starts at 0.25 and ends just before 0.45
    assert abs(audio[:50].mean() - 0.2508) < 0.01 and abs(audio[-50:].mean() - 0.4493) < 0.01
    beyond = read_audio(clip_with_audio, rate=8000, start=2.05, num_samples=1000)  # past the end: silence
    assert beyond.shape == (1000,) and np.abs(beyond[-500:]).max() == 0


def test_a_file_without_audio_says_so(clip):
    with pytest.raises(VideoDecodeError, match="^no audio stream in the file$"):
        read_audio(clip, rate=16000, duration=0.1)


def test_a_corrupt_file_is_one_line(tmp_path, clip):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:300])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, pattern in ((junk, "corrupt or not a video file"), (truncated, "corrupt"), (empty, "empty")):
        with pytest.raises(VideoDecodeError, match=pattern) as info:
            read_video(path, num_frames=1)
        assert "\n" not in str(info.value)


def test_an_unsupported_codec_is_named_in_one_line(tmp_path, make_clip):
    path = make_clip(tmp_path / "clip.avi", frames=3, codec="mjpeg", container="avi")
    bogus = tmp_path / "bogus.avi"
    bogus.write_bytes(path.read_bytes().replace(b"MJPG", b"ZQ9X"))  # a FourCC no decoder knows
    with pytest.raises(VideoDecodeError, match="^unsupported codec: the FFmpeg of PyAV .* does not know the video stream's codec"):
        probe(bogus)


def test_an_absurd_header_is_refused_before_anything_is_allocated(tmp_path):
    # a 16000 x 16000 raw video: one frame would take 384 MB as RGB; the header alone is refused
    path = tmp_path / "huge.y4m"
    path.write_bytes(b"YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(100))
    tracemalloc.start()
    try:
        with pytest.raises(VideoDecodeError, match=r"frames of 16000x16000 = 256,000,000 pixels, more than the limit"):
            read_video(path, num_frames=1)
        assert tracemalloc.get_traced_memory()[1] < 8 * 2**20
    finally:
        tracemalloc.stop()


def test_too_many_frames_for_the_byte_limit_are_refused_up_front(clip):
    with pytest.raises(VideoDecodeError, match="would take 9,216 bytes, more than the limit of 1,000"):
        read_video(clip, num_frames=4, max_bytes=1000)
