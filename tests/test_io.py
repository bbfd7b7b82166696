"""Bad image input: clear one-line errors; odd modes converted, not rejected; atomic writes."""

import numpy as np
import pytest
from PIL import Image

from genie_plugin.errors import InputImageError
from genie_plugin.io import atomic_write_bytes, load_image, read_jsonl, write_jsonl


def test_missing_folder_text_and_truncated_files(tmp_path):
    with pytest.raises(InputImageError, match="missing.png: file not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputImageError, match="is a folder"):
        load_image(tmp_path)
    txt = tmp_path / "notes.png"
    txt.write_text("hello, not an image")
    with pytest.raises(InputImageError, match="notes.png: not a readable image"):
        load_image(txt)
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputImageError, match="cut.png: corrupt or truncated"):
        load_image(cut)
    jpg = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg)
    jpg.write_bytes(jpg.read_bytes()[:300])
    with pytest.raises(InputImageError, match="cut.jpg"):
        load_image(jpg)


def test_modes_are_converted_to_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (8, 8), 128).save(gray)
    assert load_image(gray).getpixel((0, 0)) == (128, 128, 128)

    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(rgba)  # fully transparent red
    im = load_image(rgba)
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)  # composited on white

    deep = tmp_path / "deep16.png"
    Image.fromarray(np.full((8, 8), 65535 // 2, dtype=np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    im = load_image(deep)
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (127, 127, 127)

    pal = tmp_path / "pal.gif"
    Image.new("P", (8, 8), 3).save(pal)
    assert load_image(pal).mode == "RGB"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = atomic_write_bytes(tmp_path / "a" / "b.bin", b"123")
    assert p.read_bytes() == b"123"
    write_jsonl(tmp_path / "m.jsonl", [{"b": 1, "a": 2}])
    assert read_jsonl(tmp_path / "m.jsonl") == [{"a": 2, "b": 1}]
    assert sorted(x.name for x in tmp_path.rglob("*") if x.is_file()) == ["b.bin", "m.jsonl"]


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    import os

    target = tmp_path / "m.jsonl"
    target.write_text("old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old\n"
    assert [x.name for x in tmp_path.iterdir()] == ["m.jsonl"]
