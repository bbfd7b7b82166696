"""Real on-disk formats (tiny files) loaded through learn2learn's own dataset classes."""

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from genie_plugin.data.datasets import load_split  # noqa: E402
from genie_plugin.data.episodes import materialise_episodes  # noqa: E402
from genie_plugin.data.specs import DatasetError, check_dataset  # noqa: E402

MINI_WNIDS = ["n02099601", "n02129165", "n04146614", "n03272010", "n02110341", "n01930112"]


def _pixels(n, size, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture
def mini_root(tmp_path):
    per = 5
    x = _pixels(per * len(MINI_WNIDS), 84, 0)
    class_dict = {w: list(range(k * per, (k + 1) * per)) for k, w in enumerate(MINI_WNIDS)}
    with open(tmp_path / "mini-imagenet-cache-test.pkl", "wb") as fh:
        pickle.dump({"image_data": x, "class_dict": class_dict}, fh)
    return tmp_path, x


def test_mini_imagenet_pickle_through_learn2learn(mini_root):
    root, x = mini_root
    data = load_split("mini-imagenet", "test", root=root)
    assert type(data.metadataset.dataset.inner).__name__ == "MiniImagenet"
    assert data.class_names[:3] == ("golden retriever", "lion", "school bus")
    for i in (0, 7, 29):
        assert np.array_equal(np.asarray(data.image(i)), x[i])
        assert data.label(i) == i // 5
    eps = materialise_episodes(data.metadataset, ways=5, shots=1, queries=4, episodes=20, seed=0)
    for e in eps:
        s = {i for idx in e.support for i in idx}
        q = {i for idx in e.query for i in idx}
        assert not s & q and len(s) == 5 and len(q) == 20
    # learn2learn's bookkeeping pickle (never refreshed) is neither written nor read
    assert not list(root.glob("*bookkeeping*"))
    (root / "mini-imagenet-bookkeeping-test.pkl").write_bytes(b"stale")
    assert load_split("mini-imagenet", "test", root=root).label(7) == 1


def test_tiered_imagenet_png_pickles_through_learn2learn(tmp_path):
    d = tmp_path / "tiered-imagenet"
    d.mkdir()
    x = _pixels(12, 84, 1)
    pngs = []
    for a in x:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        pngs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    labels = np.repeat(np.arange(3), 4)
    with open(d / "test_images_png.pkl", "wb") as fh:
        pickle.dump(pngs, fh)
    with open(d / "test_labels.pkl", "wb") as fh:
        pickle.dump(
            {
                "label_specific": labels,
                "label_general": np.zeros(12, dtype=int),
                "label_specific_str": ["n1_tabby_cat", "n2_egyptian_cat", "n3_red_fox"],
                "label_general_str": ["animal"],
            },
            fh,
        )
    data = load_split("tiered-imagenet", "test", root=tmp_path)
    assert data.class_names == ("n1 tabby cat", "n2 egyptian cat", "n3 red fox")
    assert np.array_equal(np.asarray(data.image(5)), x[5]) and data.label(5) == 1
    assert data.image_id(5) == "tiered-imagenet/test/000005"


def test_cub_folder_through_learn2learn_sorted(tmp_path):
    from learn2learn.vision.datasets.cu_birds200 import SPLITS

    base = tmp_path / "cubirds200" / "CUB_200_2011" / "images"
    classes = SPLITS["test"]
    assert len(classes) == 30
    for k, c in enumerate(classes):
        (base / c).mkdir(parents=True)
        for j in (2, 0, 1):  # written out of order: the loader sorts
            Image.fromarray(_pixels(1, 16, 100 * k + j)[0]).save(base / c / f"img_{j}.jpg")
    data = load_split("cub", "test", root=tmp_path)
    assert len(data.metadataset) == 90
    assert data.class_names[0] == classes[0].split(".", 1)[1].replace("_", " ")
    assert [data.image_id(i).rsplit("/", 1)[1] for i in range(3)] == [
        "img_0.jpg",
        "img_1.jpg",
        "img_2.jpg",
    ]
    assert data.label(3) == 1 and data.image(0).mode == "RGB"


def test_missing_split_lists_expected_files_and_source(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_split("mini-imagenet", "test", root=tmp_path)
    msg = str(e.value)
    assert "missing mini-imagenet-cache-test.pkl" in msg and "zenodo" in msg
    rep = check_dataset("tiered-imagenet", tmp_path)
    assert "tiered-imagenet/train_images_png.pkl" in rep.missing and not rep.ok
    assert len(rep.missing) == 6


def test_html_saved_as_pickle_is_named(tmp_path):
    (tmp_path / "mini-imagenet-cache-test.pkl").write_text(
        "<!DOCTYPE html><html><body>Google Drive - quota exceeded</body></html>"
    )
    with pytest.raises(DatasetError, match="HTML page"):
        load_split("mini-imagenet", "test", root=tmp_path)


def test_unknown_dataset_and_split_list_choices(tmp_path):
    from genie_plugin.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="mini-imagenet"):
        load_split("imagenet-1k", "test", root=tmp_path)
    with pytest.raises(UnknownNameError, match="validation"):
        load_split("mini-imagenet", "dev", root=tmp_path)


def test_cli_datasets_check_reports_present_missing_and_corrupt(mini_root):
    from typer.testing import CliRunner

    from genie_cli.main import app

    root, _ = mini_root
    (root / "mini-imagenet-cache-train.pkl").write_text("<html>quota exceeded</html>")
    r = CliRunner().invoke(app, ["datasets", "check", str(root), "-d", "mini-imagenet"])
    assert r.exit_code == 0, r.output
    assert "mini-imagenet: partial (usable splits: test)" in r.output
    assert "missing  mini-imagenet-cache-validation.pkl" in r.output
    assert "corrupt  mini-imagenet-cache-train.pkl: is an HTML page" in r.output
    r = CliRunner().invoke(app, ["datasets", "check", str(root), "-d", "cub"])
    assert r.exit_code == 1 and "cub: missing" in r.output and "zenodo" in r.output


def test_an_unreadable_dataset_image_is_one_line_naming_it(tmp_path):
    from tests.real_formats import write_cub

    write_cub(tmp_path, per_class=2)
    data = load_split("cub", "test", root=tmp_path)
    bad = tmp_path / "cubirds200" / "CUB_200_2011" / "images" / data.image_id(0).split("/", 2)[2]
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(DatasetError) as exc:
        data.image(0)
    msg = str(exc.value)
    assert data.image_id(0) in msg and "unreadable" in msg and "\n" not in msg
    assert data.image(1).mode == "RGB"  # the others still load
