"""Strategies as learn2learn augmentations: wrap a ``TaskDataset``, get tasks whose support set
holds the strategy's generated images.

learn2learn splits support from query *after* a task is loaded (``partition_task``: the first
``shots`` items of each class), so images appended inside the task transform chain would be
split into the query. The wrapper therefore samples the task with learn2learn, partitions it
with learn2learn's own ``partition_task``, and only then generates and appends. learn2learn
draws tasks from Python's global ``random``: each task is drawn inside :func:`isolated_random`
seeded from (seed, task index), so task ``i`` is the same every time and the caller's RNG is
untouched.
"""

from __future__ import annotations

import random
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from genie_plugin.l2l import require_learn2learn
from genie_plugin.l2l.episodes import check_split_size, isolated_random
from genie_plugin.seeding import stable_seed

BenchmarkTasksets = namedtuple("BenchmarkTasksets", ("train", "validation", "test"))


@dataclass
class AugmentedTask:
    """One task: the support set (real then generated), the query set, and what was generated."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    generated_x: torch.Tensor
    generated_y: torch.Tensor
    records: list[dict] = field(default_factory=list)  # manifest records of the generated images
    class_names: tuple[str, ...] = ()  # by task label


class GenerativeTaskset:
    """Wrap a learn2learn ``TaskDataset``; ``sample()`` returns an :class:`AugmentedTask`.

    ``source(i)`` gives the PIL image of dataset index ``i`` (what the generator starts from),
    ``class_names[label]`` the prompt word of a dataset label and ``image_transform`` turns a
    generated PIL image into a tensor like the task's own data.
    """

    def __init__(
        self,
        taskset,
        strategy,
        *,
        shots: int,
        source: Callable[[int], Any],
        source_id: Callable[[int], str],
        class_names,
        image_transform: Callable[[Any], torch.Tensor],
        generator=None,
        embed=None,
        seed: int = 0,
        name: str = "task",
        max_batch: int = 16,
        device=None,
    ) -> None:
        if strategy.generative and generator is None:
            from genie_plugin.errors import ConfigError

            raise ConfigError(f"strategy {strategy.name!r} generates images: pass a generator")
        self.taskset, self.strategy, self.shots = taskset, strategy, shots
        self.source, self.source_id = source, source_id
        self.class_names = tuple(class_names)
        self.image_transform = image_transform
        self.generator, self.embed = generator, embed
        self.seed, self.name, self.max_batch = seed, name, max_batch
        self.device = torch.device(device) if device is not None else None  # task tensors
        self._next = 0
        self._pool_rng = random.Random(stable_seed(seed, name, "pool"))

    def __len__(self) -> int:
        return len(self.taskset)

    def sample(self) -> AugmentedTask:
        """The next task. With ``num_tasks = N > 0`` a task of a fixed pool of N, picked at
        random as learn2learn's ``TaskDataset.sample`` does (so each pool task's images are
        generated once, then read from the cache), but from a private seeded ``random.Random``
        instead of the global ``random``: the caller's RNG never moves and the sequence is the
        same on every run. With ``num_tasks = -1`` every call is a new task (0, 1, 2, ...)."""
        pool = getattr(self.taskset, "num_tasks", -1)
        if pool is not None and pool > 0:
            return self.sample_task(self._pool_rng.randrange(pool))
        task = self.sample_task(self._next)
        self._next += 1
        return task

    def sample_task(self, index: int) -> AugmentedTask:
        require_learn2learn()
        from learn2learn.data.utils import partition_task

        from genie_plugin.strategies.base import Episode, RenderContext, SupportItem

        with isolated_random(stable_seed(self.seed, self.name, "task", index)):
            desc = self.taskset.sample_task_description()
        x, y = self.taskset.get_task(desc)
        y = torch.as_tensor(y)
        pos = torch.arange(len(y))
        (sx, sy), (qx, qy) = partition_task(x, y, shots=self.shots)
        (s_pos, _), _ = partition_task(pos, y, shots=self.shots)
        # task label -> dataset label, from the support items themselves
        md = self.taskset.dataset
        ds_label = {
            int(y[p]): int(md.indices_to_labels[desc[int(p)].index]) for p in s_pos.tolist()
        }
        ways = len(ds_label)
        names = tuple(self.class_names[ds_label[k]] for k in range(ways))
        support, images = [], {}
        for p in s_pos.tolist():
            i = desc[p].index
            sid = self.source_id(i)
            images[sid] = self.source(i)
            support.append(SupportItem(sid, int(y[p])))
        episode = Episode(
            dataset=self.name,
            index=index,
            class_names=names,
            support=tuple(support),
            shots=self.shots,
            seed=self.seed,
        )
        plan_gen = torch.Generator().manual_seed(
            stable_seed(self.seed, self.strategy.name, "plan", self.name, index)
        )
        specs = self.strategy.plan(episode, plan_gen)
        outs = []
        if specs:
            ctx = RenderContext(self.generator, images, self.embed, self.max_batch, None)
            outs = self.strategy.render(specs, ctx)
        if outs:
            gx = torch.stack([self.image_transform(o.image) for o in outs]).to(sx)
            gy = torch.tensor([o.label for o in outs], dtype=sy.dtype, device=sy.device)
        else:
            gx, gy = sx[:0], sy[:0]
        dev = self.device
        return AugmentedTask(
            support_x=torch.cat([sx, gx]).to(dev),
            support_y=torch.cat([sy, gy]).to(dev),
            query_x=qx.to(dev),
            query_y=qy.to(dev),
            generated_x=gx.to(dev),
            generated_y=gy.to(dev),
            records=[o.record for o in outs],
            class_names=names,
        )


class _TensorView(torch.utils.data.Dataset):
    """A split's images through one tensor transform (the same one generated images get)."""

    def __init__(self, data, transform) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data.metadataset)

    def __getitem__(self, i: int):
        return self.transform(self.data.image(i)), self.data.label(i)


def default_image_transform(dataset: str):
    """Resize to the benchmark's native size (84 px; the embedded set: 32) + ``ToTensor``."""
    from torchvision import transforms

    size = 32 if dataset == "shapes" else 84
    return transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
        ]
    )


def _defaults_for(dataset: str, strategy, model, backbone) -> tuple[str | None, str | None]:
    """The embedded model/backbone on the shapes set only; elsewhere the caller names them."""
    from genie_plugin.errors import ConfigError

    if dataset == "shapes":
        model = model or "embedded"
        backbone = backbone or ("embedded" if strategy.needs_embedder else None)
    if strategy.generative and model is None:
        raise ConfigError(
            f"get_tasksets({dataset!r}, {strategy.name!r}): pass model= (a hub id, diffusers "
            "folder or .safetensors file); the embedded shapes model is for the shapes set only"
        )
    if strategy.needs_embedder and backbone is None:
        raise ConfigError(
            f"get_tasksets({dataset!r}, {strategy.name!r}): this strategy scores images with the "
            "few-shot backbone: pass backbone= (e.g. 'resnet18:unisiam.pth')"
        )
    return model, backbone


def get_tasksets(
    name: str,
    strategy: str = "genie",
    *,
    train_ways: int = 5,
    train_samples: int = 10,
    test_ways: int = 5,
    test_samples: int = 10,
    shots: int = 1,
    num_tasks: int = -1,
    root: str | None = None,
    model: str | None = None,
    backbone: str | None = None,
    seed: int = 0,
    device=None,
    cache_dir=None,
    image_transform=None,
    strategy_options: dict | None = None,
    max_batch: int = 16,
) -> BenchmarkTasksets:
    """``learn2learn.vision.benchmarks.get_tasksets`` with a strategy name.

    Same task transforms as learn2learn's benchmarks (``NWays``, ``KShots``, ``LoadData``,
    ``RemapLabels``, ``ConsecutiveLabels``); ``*_samples`` are shots + queries per class, as
    there. Datasets: ``shapes`` (embedded), ``mini-imagenet``, ``tiered-imagenet``, ``cub``
    (files checked first; nothing is downloaded). Generated images are cached under
    ``cache_dir`` (content-addressed), so a second pass over the same tasks generates nothing.

    ``model``/``backbone`` default to the embedded ones on ``shapes`` only; on a real dataset a
    generative strategy needs ``model`` and one that scores images (``needs_embedder``: the
    GeNIe-Ada variants) needs ``backbone``, named by the caller.
    """
    l2l = require_learn2learn()
    from learn2learn.data.transforms import (
        ConsecutiveLabels,
        KShots,
        LoadData,
        NWays,
        RemapLabels,
    )

    from genie_plugin.l2l.datasets import load_split
    from genie_plugin.registry import REGISTRY

    strat = REGISTRY.get(strategy).create(**(strategy_options or {}))
    if not strat.generative and strat.augment_real:
        from genie_plugin.errors import ConfigError

        raise ConfigError(
            f"strategy {strategy!r} augments views inside the benchmark's feature protocol "
            "(`genie bench run`), not learn2learn tasks: here use strategy='none' with your own "
            "image_transform, or a generative strategy"
        )
    tf = image_transform or default_image_transform(name)
    model, backbone = _defaults_for(name, strat, model, backbone)
    gen = embed = None
    if strat.generative:
        from genie_plugin.cache import AugmentationCache, CachedGenerator
        from genie_plugin.diffusion import load_generator
        from genie_plugin.paths import cache_root

        gen = CachedGenerator(
            load_generator(model, device=device),
            AugmentationCache(cache_dir or cache_root() / "augmentations"),
        )
    if backbone is not None:
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(backbone, device=device)
    out = []
    for split, ways, samples in (
        ("train", train_ways, train_samples),
        ("validation", test_ways, test_samples),
        ("test", test_ways, test_samples),
    ):
        data = load_split(name, split, root=root)
        check_split_size(
            data.metadataset,
            ways=ways,
            samples=samples,
            where=f"{name}/{data.split}",
            class_names=data.class_names,
        )
        md = l2l.data.MetaDataset(
            _TensorView(data, tf), labels_to_indices=data.metadataset.labels_to_indices
        )
        taskset = l2l.data.TaskDataset(
            md,
            task_transforms=[
                NWays(md, ways),
                KShots(md, samples),
                LoadData(md),
                RemapLabels(md),
                ConsecutiveLabels(md),
            ],
            num_tasks=num_tasks,
        )
        out.append(
            GenerativeTaskset(
                taskset,
                strat,
                shots=shots,
                source=data.image,
                source_id=data.image_id,
                class_names=data.class_names,
                image_transform=tf,
                generator=gen,
                embed=embed,
                seed=seed,
                name=f"{name}/{data.split}",
                max_batch=max_batch,
                device=device,
            )
        )
    return BenchmarkTasksets(*out)
