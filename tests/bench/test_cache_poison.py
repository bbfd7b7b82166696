"""The cache trusts nothing it reads: crafted manifest keys, linked shard folders and files,
zeroed feature-memo entries, racing writers and a repair beside them."""

import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import time

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion.cache import AugmentationCache, verify_cache
from genie_plugin.fewshot.backbones import MemoEmbedder
from genie_plugin.io import seal


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def _outside(tmp_path):
    """A folder beside the cache holding files a hostile manifest points at; its state."""
    out = tmp_path / "outside"
    out.mkdir()
    for name in ("x.png", "victim.png", "ab" + "0" * 30 + ".png"):
        (out / name).write_bytes(_png((1, 2, 3)))
    return out


def _state(folder):
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def _crafted_manifest(cache_root, outside):
    m = cache_root / "manifests"
    m.mkdir(parents=True, exist_ok=True)
    lines = [
        {"key": "../../outside/x", "sha256": "0" * 64},
        {"key": str(outside / "victim"), "sha256": "0" * 64},
        {"key": "../" * 8 + "etc/passwd", "sha256": "0" * 64},
        {"key": "AB" + "0" * 30, "sha256": "0" * 64},  # upper case: not a key
        {"key": ["a list"], "sha256": "0" * 64},
    ]
    (m / "evil.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_crafted_keys_and_linked_shards_touch_nothing_outside(tmp_path):
    outside = _outside(tmp_path)
    before = _state(outside)
    root = tmp_path / "cache"
    cache = AugmentationCache(root)
    good = "cd" + "0" * 30
    cache.put(good, Image.new("RGB", (8, 8), (9, 9, 9)), {})
    _crafted_manifest(root, outside)
    os.symlink(outside, root / "ab")  # a linked shard holding a key-named file
    os.symlink(outside / "x.png", root / "cd" / ("cd" + "1" * 30 + ".png"))  # a linked file
    rep = verify_cache(root, repair=True)
    assert rep["ok"] == 1 and rep["links_skipped"] == 2 and rep["torn_lines"] == 5
    assert _state(outside) == before  # nothing outside read as an entry, nothing deleted
    assert os.path.islink(root / "ab") and os.path.islink(root / "cd" / ("cd" + "1" * 30 + ".png"))
    fresh = AugmentationCache(root)
    assert fresh.get("ab" + "0" * 30) is None  # through the linked shard: never read
    assert fresh.get("cd" + "1" * 30) is None  # a linked file: never read, never removed
    assert _state(outside) == before
    assert fresh.get(good) is not None
    bad = CliRunner().invoke(app, ["cache", "verify", str(root)])
    assert bad.exit_code == 0 and "2 links skipped" in bad.output, bad.output


def test_a_zeroed_feature_entry_is_recomputed_and_verify_reports_it(tmp_path):
    calls = []

    def embed(images):
        calls.append(len(images))
        return np.arange(len(images) * 4, dtype=np.float32).reshape(len(images), 4) + 1

    store = tmp_path / "features"
    ims = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(3)]
    first = MemoEmbedder(embed, store=store)(ims)
    (entry,) = list(store.rglob("*.npy"))
    data = entry.read_bytes()
    assert verify_cache(tmp_path)["features_ok"] == 1
    # what a power cut can leave: the header intact, everything after it zeros
    entry.write_bytes(data[:80] + b"\0" * (len(data) - 80))
    rep = verify_cache(tmp_path)
    assert rep["features_bad"] == 1 and rep["features_ok"] == 0
    run = CliRunner().invoke(app, ["cache", "verify", str(tmp_path)])
    assert run.exit_code == 1 and "features 0 ok, 1 bad" in run.output, run.output
    again = MemoEmbedder(embed, store=store)(ims)  # another process: reads the damaged entry
    assert calls == [3, 3] and np.array_equal(again, first)  # recomputed, not zeros
    assert verify_cache(tmp_path)["features_bad"] == 0  # and rewritten whole
    # a legacy unsealed .npy (or a crafted pickle) is never parsed: recomputed
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 4), np.float32))
    entry.write_bytes(buf.getvalue())
    assert np.array_equal(MemoEmbedder(embed, store=store)(ims), first) and calls == [3, 3, 3]
    entry.write_bytes(seal(b"\x93NUMPY garbage"))  # sealed but not an array: recomputed
    assert np.array_equal(MemoEmbedder(embed, store=store)(ims), first)


def test_first_writer_wins_and_a_mismatch_rereads_the_index(tmp_path):
    key = "ee" + "0" * 30
    a, b = AugmentationCache(tmp_path), AugmentationCache(tmp_path)
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    assert b.get(key) is None  # b indexed the (empty) manifests before a wrote
    assert a.put(key, red, {}).getpixel((0, 0)) == (255, 0, 0)
    # b renders the same key in another batch (other bits): a's image stays, b is given it
    assert b.put(key, blue, {}).getpixel((0, 0)) == (255, 0, 0)
    assert len(a.records()[0]) == 1
    c = AugmentationCache(tmp_path)
    c._hashes[key] = {"f" * 64}  # a stale index: c has not seen a's record
    assert c.get(key).getpixel((0, 0)) == (255, 0, 0)  # re-read, found, not deleted
    assert c.repaired == 0 and a.path(key).exists()


def _writer(root, k, n, seed):
    rng = random.Random(seed)
    cache = AugmentationCache(root)
    for i in range(n):
        cache.put(f"{k:02x}{i:030x}", Image.new("RGB", (8, 8), (k, i, 7)), {"writer": k, "i": i})
        if rng.random() < 0.3:  # random delays: writers and the repair interleave anew each run
            time.sleep(rng.random() / 50)


def _repairer(root, stop, out):
    rounds = 0
    while not stop.is_set():
        rep = verify_cache(root, repair=True)
        assert rep["bad"] == 0, rep["bad_keys"]
        rounds += 1
    out.put(rounds)


def test_four_writers_and_a_repair_beside_them_lose_no_record(tmp_path):
    outside = _outside(tmp_path)
    before = _state(outside)
    root = tmp_path / "cache"
    AugmentationCache(root)
    _crafted_manifest(root, outside)
    os.symlink(outside, root / "ab")
    ctx = mp.get_context("spawn")
    stop, rounds = ctx.Event(), ctx.Queue()
    repair = ctx.Process(target=_repairer, args=(str(root), stop, rounds))
    repair.start()
    writers = [ctx.Process(target=_writer, args=(str(root), k, 40, k)) for k in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    stop.set()
    assert rounds.get(timeout=60) >= 1
    repair.join(60)
    assert repair.exitcode == 0
    recs, _ = AugmentationCache(root).records()
    assert sorted((r["writer"], r["i"]) for r in recs) == [
        (k, i) for k in range(4) for i in range(40)
    ]
    cache = AugmentationCache(root)
    for r in recs:
        assert cache.get(r["key"]).getpixel((0, 0)) == (r["writer"], r["i"], 7)
    assert cache.repaired == 0
    rep = verify_cache(root)
    assert (rep["ok"], rep["bad"], rep["missing"], rep["unlisted"]) == (160, 0, 0, 0)
    assert _state(outside) == before
    assert not list(root.rglob("*.tmp"))


def test_repair_reopens_generate_blocks_marked_done(tmp_path):
    """A repair that removes an image clears `bench generate`'s done marks, so the next
    generate revisits the blocks and regenerates it; a clean repair leaves them."""
    root = tmp_path / "cache"
    cache = AugmentationCache(root)
    cache.put("a" * 32, Image.new("RGB", (8, 8), (5, 5, 5)), {})
    cache.put("b" * 32, Image.new("RGB", (8, 8), (6, 6, 6)), {})
    marks = root / "claims" / "job"
    marks.mkdir(parents=True)
    for b in (0, 1):
        (marks / f"{b}.done").write_text("")
    (marks / "notes.txt").write_text("kept")
    assert verify_cache(root, repair=True)["done_marks_cleared"] == 0
    assert sorted(p.name for p in marks.iterdir()) == ["0.done", "1.done", "notes.txt"]
    (root / "aa" / ("a" * 32 + ".png")).write_bytes(_png((9, 9, 9)))  # damaged
    res = CliRunner().invoke(app, ["cache", "verify", "--repair", str(root)])
    assert res.exit_code == 0, res.output
    assert "repaired: 1" in res.output and "2 `bench generate` blocks" in res.output
    assert sorted(p.name for p in marks.iterdir()) == ["notes.txt"]
    assert cache.get("a" * 32) is None and cache.get("b" * 32) is not None
