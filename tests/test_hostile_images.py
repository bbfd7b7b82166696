"""Hostile input images: each works as documented or stops with one line naming the file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.errors import InputImageError
from genie_plugin.io import MAX_INPUT_PIXELS, load_image


def _png_header_only(path, w, h):
    """A PNG that claims w×h pixels (a decompression bomb's header), with one tiny IDAT."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )
    return path


def test_working_kinds_load_as_rgb(tmp_path):
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    cases = {
        "one.png": Image.new("RGB", (1, 1), (9, 8, 7)),
        "gray16.png": Image.fromarray(np.full((4, 4), 65535, np.uint16)),
        "cmyk.jpg": Image.new("CMYK", (4, 4), (0, 0, 0, 0)),
        "palette.png": Image.new("P", (4, 4), 3),
        "la.png": Image.new("LA", (4, 4), (0, 0)),  # fully transparent: white
        "rgba.png": Image.new("RGBA", (4, 4), (0, 0, 255, 255)),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
    out = {name: load_image(tmp_path / name) for name in cases}
    assert all(o.mode == "RGB" for o in out.values())
    assert out["one.png"].getpixel((0, 0)) == (9, 8, 7)
    assert out["gray16.png"].getpixel((0, 0)) == (255, 255, 255)
    assert out["la.png"].getpixel((0, 0)) == (255, 255, 255)
    assert out["rgba.png"].getpixel((0, 0)) == (0, 0, 255)
    assert out["cmyk.jpg"].getpixel((0, 0))[0] > 240  # CMYK 0 ink: white


def test_exif_rotation_is_applied(tmp_path):
    im = Image.new("RGB", (6, 2), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rot.jpg").size == (2, 6)


def test_animated_gives_the_first_frame_and_says_so(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    notes = []
    im = load_image(tmp_path / "a.gif", on_note=notes.append)
    assert im.getpixel((0, 0))[0] > 200 and im.getpixel((0, 0))[1] < 50
    assert len(notes) == 1 and "first frame" in notes[0] and "2 frames" in notes[0]


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("empty.png", lambda p: p.write_bytes(b""), "not a readable image"),
        ("text.png", lambda p: p.write_text("hello"), "not a readable image"),
        ("bomb.png", lambda p: _png_header_only(p, 40000, 40000), "MP"),
        ("big.png", lambda p: _png_header_only(p, 9000, 9000), "over the 64 MP limit"),
        ("trunc.png", lambda p: p.write_bytes(_png_bytes()[:300]), "corrupt or truncated"),
    ],
)
def test_bad_files_stop_with_one_line(tmp_path, name, make, says):
    make(tmp_path / name)
    with pytest.raises(InputImageError) as exc:
        load_image(tmp_path / name)
    msg = str(exc.value)
    assert msg.startswith(str(tmp_path / name)) and says in msg and "\n" not in msg
    assert MAX_INPUT_PIXELS < 9000 * 9000


def _png_bytes():
    buf = io.BytesIO()  # noisy pixels: the image data spans far more than the first 300 bytes
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_cli_refuses_a_bomb_before_loading_a_model(tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["augment", str(bomb), "-t", "star", "-o", str(out)])
    assert res.exit_code == 2 and "bomb.png" in res.output and "Traceback" not in res.output
    assert not out.exists()
