"""The augmentation cache verifies what it reads: bad entries are misses, counted, mended."""

from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion.cache import AugmentationCache, verify_cache


def _filled(root, n=4):
    cache = AugmentationCache(root)
    for i in range(n):
        cache.put(f"{i:02x}" + "0" * 30, Image.new("RGB", (8, 8), (40 * i, 0, 0)), {"i": i})
    return cache


def test_bad_entries_are_misses_and_counted(tmp_path):
    cache = _filled(tmp_path)
    keys = [f"{i:02x}" + "0" * 30 for i in range(4)]
    cache.path(keys[0]).write_bytes(cache.path(keys[0]).read_bytes()[:60])  # truncated
    cache.path(keys[1]).write_bytes(cache.path(keys[2]).read_bytes())  # valid PNG, wrong one
    cache.path(keys[3]).unlink()  # gone: a plain miss, nothing to repair
    fresh = AugmentationCache(tmp_path)  # another process: reads the manifest's hashes
    assert fresh.get(keys[0]) is None and fresh.get(keys[1]) is None
    assert fresh.get(keys[3]) is None
    assert fresh.get(keys[2]).getpixel((0, 0)) == (80, 0, 0)
    assert fresh.repaired == 2
    assert not cache.path(keys[0]).exists() and not cache.path(keys[1]).exists()


def test_a_torn_manifest_line_is_skipped_and_never_swallows_another_record(tmp_path):
    cache = _filled(tmp_path, 2)
    (own,) = cache.manifest_files()
    with open(own, "ab") as fh:
        fh.write(b'{"key": "torn-by-a-ki')  # a kill mid-append
    other = AugmentationCache(tmp_path)  # the next process writes its own manifest
    other.put("ff" + "0" * 30, Image.new("RGB", (8, 8)), {"i": 9})
    assert len(other.manifest_files()) == 2
    assert AugmentationCache(tmp_path).get("ff" + "0" * 30) is not None
    rep = verify_cache(tmp_path)
    assert (rep["ok"], rep["torn_lines"], rep["bad"]) == (3, 1, 0)


def test_verify_reports_and_repair_mends(tmp_path):
    cache = _filled(tmp_path)
    key = "01" + "0" * 30
    cache.path(key).write_bytes(b"\x89PNG not really")
    run = CliRunner().invoke(app, ["cache", "verify", str(tmp_path)])
    assert run.exit_code == 1, run.output
    assert "3 ok, 1 bad" in run.output and "--repair" in run.output
    run = CliRunner().invoke(app, ["cache", "verify", "--repair", str(tmp_path)])
    assert run.exit_code == 0 and "repaired: 1" in run.output
    assert not cache.path(key).exists()
    records, _ = cache.records()
    assert key in {r["key"] for r in records}  # no manifest is rewritten: a plain miss now
    run = CliRunner().invoke(app, ["cache", "verify", str(tmp_path)])
    assert run.exit_code == 0 and "3 ok, 0 bad, 1 listed but missing" in run.output
    missing = CliRunner().invoke(app, ["cache", "verify", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such cache folder" in missing.output
