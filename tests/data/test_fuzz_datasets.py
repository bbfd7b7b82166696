"""Dataset files, fuzzed (hypothesis): truncated pickles, wrong keys and types, indices out of
range, empty and junk class folders. Loading a split, drawing episodes from it and reading their
images either works or raises a DatasetError (a GenieError: the CLI prints it without a
traceback) that names the file — never another exception from inside learn2learn, pickle or PIL."""

import pickle
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genie_plugin.data.datasets import load_split
from genie_plugin.data.episodes import materialise_episodes
from genie_plugin.data.specs import DatasetError
from tests.real_formats import MINI_TEST_WNIDS, write_cub, write_tiered

PER = 3
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _use(name, root):
    """Everything a benchmark does with a split: load, draw episodes, read their images."""
    data = load_split(name, "test", root=root)
    for ep in materialise_episodes(
        data.metadataset, ways=5, shots=1, queries=1, episodes=2, seed=0
    ):
        for idx in (*ep.support, *ep.query):
            for i in idx:
                assert data.image(i).mode == "RGB"
                data.image_id(i)
    return data


def _check(name, root, culprit: str):
    try:
        _use(name, root)
    except DatasetError as exc:
        assert culprit in str(exc), str(exc)  # names the file (or folder) at fault


def _mini_payload():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (PER * len(MINI_TEST_WNIDS), 84, 84, 3), dtype=np.uint8)
    cd = {w: list(range(k * PER, (k + 1) * PER)) for k, w in enumerate(MINI_TEST_WNIDS)}
    return {"image_data": x, "class_dict": cd}


def _mini_mutations():
    def wrong_key(d):
        return {"images": d["image_data"], "class_dict": d["class_dict"]}

    def flat_pixels(d):
        return {**d, "image_data": d["image_data"].reshape(len(d["image_data"]), -1)}

    def float_pixels(d):
        return {**d, "image_data": d["image_data"].astype(np.float64) / 255}

    def as_list(d):
        return {**d, "image_data": d["image_data"].tolist()[:2]}

    def out_of_range(d):
        return {**d, "class_dict": {**d["class_dict"], MINI_TEST_WNIDS[0]: [0, 10**6]}}

    def empty_class(d):
        return {**d, "class_dict": {**d["class_dict"], MINI_TEST_WNIDS[0]: []}}

    def no_classes(d):
        return {**d, "class_dict": {}}

    def strings(d):
        return {**d, "class_dict": {w: "0,1,2" for w in d["class_dict"]}}

    def not_a_dict(d):
        return [d["image_data"]]

    return st.sampled_from(
        [wrong_key, flat_pixels, float_pixels, as_list, out_of_range, empty_class, no_classes,
         strings, not_a_dict]
    )  # fmt: skip


@FUZZ
@given(st.one_of(st.floats(0.0, 0.999).map(lambda f: ("truncate", f)), _mini_mutations()))
def test_fuzzed_mini_imagenet_pickles(tmp_path_factory, mutation):
    root = tmp_path_factory.mktemp("mini")
    path = root / "mini-imagenet-cache-test.pkl"
    payload = _mini_payload()
    if isinstance(mutation, tuple):
        blob = pickle.dumps(payload)
        path.write_bytes(blob[: int(len(blob) * mutation[1])])
    else:
        path.write_bytes(pickle.dumps(mutation(payload)))
    _check("mini-imagenet", root, path.name)


@pytest.fixture(scope="module")
def tiered_template(tmp_path_factory):
    return write_tiered(tmp_path_factory.mktemp("tiered"), per_class=PER)


@FUZZ
@given(
    st.sampled_from(["test_images_png.pkl", "test_labels.pkl"]),
    st.one_of(
        st.floats(0.0, 0.999).map(lambda f: ("truncate", f)),
        st.sampled_from(["wrong_keys", "short_labels", "junk_png", "not_a_list"]),
    ),
)
def test_fuzzed_tiered_imagenet_pickles(tiered_template, tmp_path_factory, which, mutation):
    root = tmp_path_factory.mktemp("t")
    shutil.copytree(tiered_template / "tiered-imagenet", root / "tiered-imagenet")
    path = root / "tiered-imagenet" / which
    if isinstance(mutation, tuple):
        blob = path.read_bytes()
        path.write_bytes(blob[: int(len(blob) * mutation[1])])
    else:
        obj = pickle.loads(path.read_bytes())
        if which == "test_labels.pkl":
            obj = {
                "wrong_keys": {"labels": obj["label_specific"]},
                "short_labels": {**obj, "label_specific": obj["label_specific"][:3]},
                "junk_png": {**obj, "label_specific_str": [1, 2]},
                "not_a_list": obj["label_specific"].tolist(),
            }[mutation]
        else:
            obj = {
                "wrong_keys": {"images": obj},
                "short_labels": obj[:3],
                "junk_png": [np.frombuffer(b"not a png at all", np.uint8)] * len(obj),
                "not_a_list": b"".join(a.tobytes() for a in obj),
            }[mutation]
        path.write_bytes(pickle.dumps(obj))
    _check("tiered-imagenet", root, "tiered-imagenet")


@pytest.fixture(scope="module")
def cub_template(tmp_path_factory):
    return write_cub(tmp_path_factory.mktemp("cub"), per_class=PER, size=16)


@FUZZ
@given(
    st.lists(st.integers(0, 49), min_size=1, max_size=4, unique=True),
    st.sampled_from(["empty_folder", "junk_jpg", "empty_file", "truncated_jpg", "folder_gone"]),
)
def test_fuzzed_cub_folders(cub_template, tmp_path_factory, classes, mutation):
    root = tmp_path_factory.mktemp("c")
    shutil.copytree(cub_template / "cubirds200", root / "cubirds200")
    base = root / "cubirds200" / "CUB_200_2011" / "images"
    folders = sorted(p for p in base.iterdir() if p.is_dir())
    for d in {folders[k % len(folders)] for k in classes}:
        files = sorted(d.iterdir())
        if mutation in ("empty_folder", "folder_gone"):
            for f in files:
                f.unlink()
            if mutation == "folder_gone":
                d.rmdir()
        elif mutation == "junk_jpg":
            files[0].write_text("<html>not an image</html>")
        elif mutation == "empty_file":
            files[0].write_bytes(b"")
        else:
            files[0].write_bytes(files[0].read_bytes()[:40])
    _check("cub", root, "cub")
