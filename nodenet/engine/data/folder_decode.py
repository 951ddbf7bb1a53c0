"""Decoding one file of a folder dataset into a sample array, as Keras's loaders do.

Images are decoded by Pillow (first frame of an animation, like Keras's
``expand_animations=False``), converted to the colour mode's channels, then
resized to ``image_size`` with TensorFlow's ``tf.image.resize`` rules (half-pixel
centres, no antialiasing), which Keras's ``image_dataset_from_directory`` uses;
``crop_to_aspect_ratio`` first takes the central box of the target's aspect
ratio, as Keras's ``smart_resize``. Values stay 0..255 float32.

Audio is read by the standard library's :mod:`wave` (16-bit PCM, as Keras's
``tf.audio.decode_wav``), scaled to -1..1 and cut or zero-padded to
``output_sequence_length``. Text files are read as UTF-8.

Files are opened only if they are regular files (a named pipe would block the
reader). A file that cannot be decoded raises :class:`UnreadableFile` with a short
reason; the stream counts it as skipped. Pillow's decompression-bomb limit
stays on: an image claiming more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels is
refused from its header, before any pixel is decoded.
"""

from __future__ import annotations

import math
import warnings
import wave
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nodenet.safeio import open_regular

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's ALLOWLIST_FORMATS
TEXT_FORMATS = (".txt",)
AUDIO_FORMATS = (".wav",)
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
INTERPOLATIONS = ("bilinear", "nearest")
MAX_TEXT_BYTES = 2**24  # a text sample larger than 16 MB is not a text sample

# nodenet reports an over-limit image itself (a skipped file naming it); Pillow's own
# warning for the same image would only repeat it on stderr from the reader thread
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class UnreadableFile(Exception):
    """A file of a folder dataset that cannot be decoded; ``str()`` is the reason."""


def decode_image(
    path: Path,
    image_size: tuple[int, int],
    channels: int,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """The image at ``path`` as float32 ``(height, width, channels)``, values 0..255."""
    try:
        with open_regular(path, UnreadableFile) as f, Image.open(f) as img:
            width, height = img.size
            if width * height > (Image.MAX_IMAGE_PIXELS or math.inf):
                raise UnreadableFile(
                    f"claims {width}x{height} pixels, over Pillow's decompression-bomb limit"
                )
            img.seek(0)
            pixels = np.asarray(img.convert(PIL_MODES[channels]))
    except UnreadableFile:
        raise
    except FileNotFoundError:
        raise UnreadableFile("does not exist (deleted or moved?)") from None
    except UnidentifiedImageError:
        raise UnreadableFile("not an image Pillow can read") from None
    except Image.DecompressionBombError:
        raise UnreadableFile("over Pillow's decompression-bomb limit") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as err:
        raise UnreadableFile(f"cannot be decoded ({_short(err)})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if crop_to_aspect_ratio:
        pixels = central_crop(pixels, image_size)
    return resize(pixels, image_size, interpolation)


def central_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The largest central box of ``image`` (h, w, c) with the aspect ratio of ``size``
    (Keras's ``smart_resize`` arithmetic)."""
    height, width = image.shape[:2]
    target_h, target_w = size
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    top = int(float(height - crop_h) / 2)
    left = int(float(width - crop_w) / 2)
    return image[top : top + crop_h, left : left + crop_w]


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """``image`` (h, w, c) resized to ``size`` as float32, by ``tf.image.resize``'s rules."""
    image = image.astype(np.float32)
    if image.shape[:2] == tuple(size):
        return image
    rows = _axis(image.shape[0], size[0], interpolation)
    cols = _axis(image.shape[1], size[1], interpolation)
    if interpolation == "nearest":
        return image[rows[0]][:, cols[0]]
    (r0, r1, rf), (c0, c1, cf) = rows, cols
    top = image[r0][:, c0] * (1 - cf)[None, :, None] + image[r0][:, c1] * cf[None, :, None]
    bottom = image[r1][:, c0] * (1 - cf)[None, :, None] + image[r1][:, c1] * cf[None, :, None]
    return (top * (1 - rf)[:, None, None] + bottom * rf[:, None, None]).astype(np.float32)


def _axis(size_in: int, size_out: int, interpolation: str):
    """Source indices (and bilinear weights) for one axis, half-pixel centres."""
    scale = size_in / size_out
    centres = (np.arange(size_out, dtype=np.float64) + 0.5) * scale
    if interpolation == "nearest":
        return (np.minimum(np.floor(centres).astype(np.int64), size_in - 1),)
    source = centres - 0.5
    low = np.floor(source)
    frac = (source - low).astype(np.float32)
    i0 = np.clip(low, 0, size_in - 1).astype(np.int64)
    i1 = np.clip(low + 1, 0, size_in - 1).astype(np.int64)
    return i0, i1, frac


def decode_audio(
    path: Path, length: int, channels: int | None, sampling_rate: int | None
) -> np.ndarray:
    """The wav file at ``path`` as float32 ``(length, channels)`` in -1..1."""
    try:
        with open_regular(path, UnreadableFile) as f, wave.open(f, "rb") as wav:
            width, rate, count = wav.getsampwidth(), wav.getframerate(), wav.getnchannels()
            frames = wav.readframes(min(wav.getnframes(), length))
    except FileNotFoundError:
        raise UnreadableFile("does not exist (deleted or moved?)") from None
    except (wave.Error, EOFError, OSError, ValueError) as err:
        raise UnreadableFile(f"not a readable wav file ({_short(err)})") from None
    if width != 2:
        raise UnreadableFile(f"holds {8 * width}-bit samples; 16-bit PCM wav is read")
    if sampling_rate is not None and rate != sampling_rate:
        raise UnreadableFile(f"is sampled at {rate} Hz, not the {sampling_rate} Hz asked")
    if channels is not None and count != channels:
        raise UnreadableFile(f"has {count} channel(s), the other files {channels}")
    samples = np.frombuffer(frames[: len(frames) - len(frames) % (2 * count)], "<i2")
    audio = samples.reshape(-1, count).astype(np.float32) / 32768.0
    out = np.zeros((length, count), np.float32)
    out[: len(audio)] = audio[:length]
    return out


def wav_header(path: Path) -> tuple[int, int]:
    """``(channels, sampling rate)`` of a wav file (its header only)."""
    try:
        with open_regular(path, UnreadableFile) as f, wave.open(f, "rb") as wav:
            return wav.getnchannels(), wav.getframerate()
    except FileNotFoundError:
        raise UnreadableFile("does not exist (deleted or moved?)") from None
    except (wave.Error, EOFError, OSError, ValueError) as err:
        raise UnreadableFile(f"not a readable wav file ({_short(err)})") from None


def read_text(path: Path, max_length: int | None = None) -> str:
    """The UTF-8 text of ``path``, cut to ``max_length`` characters (Keras's ``max_length``)."""
    try:
        with open_regular(path, UnreadableFile) as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
    except FileNotFoundError:
        raise UnreadableFile("does not exist (deleted or moved?)") from None
    except OSError as err:
        raise UnreadableFile(f"cannot be read ({_short(err)})") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise UnreadableFile(f"is larger than {MAX_TEXT_BYTES // 2**20} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"not UTF-8 text (byte {err.start})") from None
    return text if max_length is None else text[:max_length]


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
