"""Strategies as learn2learn augmentations: the tasksets *are* learn2learn ``Taskset``s whose
``sample()`` returns ``(X, y)`` as learn2learn's do, and whose tasks carry the strategy's images.

Which real images are the support set is the user's split, not ours, so it is named:
``support="first"`` (the first ``shots`` images of each class: learn2learn's ``partition_task``
and the ProtoNet example) or ``"alternate"`` (the even positions ``np.arange(shots * ways) * 2``
of the MAML examples). Only support images are sources, so a generated image never carries a
query image's content. learn2learn draws tasks from Python's global ``random``; task ``i`` is
drawn inside :func:`isolated_random` seeded from (seed, split, i) and its data transforms run
under a forked torch RNG seeded the same way, so task ``i`` is the same on every run (and its
images hit the cache) and the caller's RNGs never move.
"""

from __future__ import annotations

import random
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import torch

from genie_plugin.data import require_learn2learn
from genie_plugin.data.episodes import check_split_size, isolated_random
from genie_plugin.errors import ConfigError
from genie_plugin.l2l.task import SUPPORT_RULES, AugmentedTask, support_positions
from genie_plugin.l2l.transforms import data_transforms
from genie_plugin.seeding import stable_seed

BenchmarkTasksets = namedtuple("BenchmarkTasksets", ("train", "validation", "test"))

_l2l = require_learn2learn()


class GenerativeTaskset(_l2l.data.Taskset):
    """A learn2learn ``Taskset`` whose tasks carry the strategy's generated images.

    Indexing, ``sample()``, iteration and ``len()`` behave as learn2learn's; each returns an
    :class:`AugmentedTask`. ``num_tasks = N > 0``: a fixed pool of N tasks (``sample()``
    picks one at random from a private seeded ``random.Random``, as learn2learn does from
    the global one), so each pool task is generated once and then read from the cache;
    ``-1``: every draw is a new task (0, 1, 2, ... — the index is the task's identity).
    ``source(i)`` is the PIL image of dataset index ``i`` (what the generator starts from),
    ``class_names[label]`` the prompt word of a dataset label, ``image_transform`` turns a
    generated PIL image into a tensor as the split's own data transform does.
    """

    def __init__(
        self,
        dataset,
        task_transforms,
        num_tasks: int = -1,
        *,
        strategy,
        shots: int,
        source: Callable[[int], Any],
        source_id: Callable[[int], str],
        class_names,
        image_transform: Callable[[Any], torch.Tensor],
        support: str = "first",
        generator=None,
        embed=None,
        seed: int = 0,
        name: str = "task",
        max_batch: int = 16,
        device=None,
    ) -> None:
        super().__init__(dataset, task_transforms=task_transforms, num_tasks=num_tasks)
        if strategy.generative and generator is None:
            raise ConfigError(f"strategy {strategy.name!r} generates images: pass a generator")
        if support not in SUPPORT_RULES:
            raise ConfigError(f"support={support!r}: choose one of {', '.join(SUPPORT_RULES)}")
        self.strategy, self.shots, self.support = strategy, shots, support
        self.source, self.source_id = source, source_id
        self.class_names = tuple(class_names)
        self.image_transform = image_transform
        self.generator, self.embed = generator, embed
        self.seed, self.name, self.max_batch = seed, name, max_batch
        self.device = torch.device(device) if device is not None else None
        self._next = 0
        self._pool_rng = random.Random(stable_seed(seed, name, "pool"))

    @classmethod
    def wrap(cls, taskset, strategy, **options):
        """A ``Taskset`` you built yourself (its dataset, transforms and ``num_tasks``)."""
        return cls(
            taskset.dataset,
            taskset.task_transforms,
            taskset.num_tasks,
            strategy=strategy,
            **options,
        )

    @property
    def ways(self) -> int | None:
        """Classes per task, from learn2learn's ``NWays`` transform."""
        from learn2learn.data.transforms import NWays

        return next((t.n for t in self.task_transforms if isinstance(t, NWays)), None)

    @property
    def generated_per_class(self) -> int:
        """The strategy's budget: (N-1)·K images per class (reference.md), 0 if it adds none."""
        if not self.strategy.generative:
            return 0
        return (self.ways - 1) * self.shots

    def task_seed(self, index: int) -> int:
        """The seed task ``index`` is drawn with: ``random.seed(ts.task_seed(i))`` before a
        plain learn2learn taskset's ``sample_task_description()`` gives the same task."""
        return stable_seed(self.seed, self.name, "task", index)

    def sample(self):
        if self.num_tasks > 0:
            return self.sample_task(self._pool_rng.randrange(self.num_tasks))
        return self._fresh()

    def _fresh(self):
        task = self.sample_task(self._next)
        self._next += 1
        return task

    def __getitem__(self, i):
        if self.num_tasks == -1:  # learn2learn: any index gives a new task
            return self._fresh()
        if not -self.num_tasks <= i < self.num_tasks:
            raise IndexError(f"{self.name}: task {i} of a pool of {self.num_tasks}")
        return self.sample_task(i % self.num_tasks)

    def __iter__(self):
        if self.num_tasks == -1:
            while True:
                yield self._fresh()
        for i in range(self.num_tasks):
            yield self.sample_task(i)

    def description(self, index: int):
        if index in self.sampled_descriptions:
            return self.sampled_descriptions[index]
        with isolated_random(self.task_seed(index)):
            desc = self.sample_task_description()
        if self.num_tasks > 0:
            self.sampled_descriptions[index] = desc
        return desc

    def sample_task(self, index: int) -> AugmentedTask:
        """Task ``index``: learn2learn's data for it, then the strategy's images."""
        from genie_plugin.strategies.base import Episode, RenderContext, SupportItem

        desc = self.description(index)
        data_seed = stable_seed(self.seed, self.name, "data", index)
        with torch.random.fork_rng(devices=[]):  # random data transforms: seeded, isolated
            torch.manual_seed(data_seed)
            x, y = self.get_task(desc)
            y = torch.as_tensor(y)
            is_support = support_positions(y, self.shots, self.support)
            s_pos = is_support.nonzero().flatten().tolist()
            md = self.dataset
            ds_label = {int(y[p]): int(md.indices_to_labels[desc[p].index]) for p in s_pos}
            ways = len(ds_label)
            names = tuple(self.class_names[ds_label[k]] for k in range(ways))
            support, images = [], {}
            for p in s_pos:
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
                gx = torch.stack([self.image_transform(o.image) for o in outs]).to(x)
                gy = torch.tensor([o.label for o in outs], dtype=y.dtype)
            else:
                gx, gy = x[:0], y[:0]
        return self._assemble(index, x, y, is_support, gx, gy, outs, names)

    def _assemble(self, index, x, y, is_support, gx, gy, outs, names) -> AugmentedTask:
        dev = self.device
        return AugmentedTask(
            x.to(dev),
            y.to(dev),
            index=index,
            support_mask=is_support.to(dev),
            support_x=torch.cat([x[is_support], gx]).to(dev),
            support_y=torch.cat([y[is_support], gy]).to(dev),
            query_x=x[~is_support].to(dev),
            query_y=y[~is_support].to(dev),
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


_LOADER_OPTIONS = ("download", "class_names")


def get_tasksets(
    name: str,
    train_ways: int = 5,
    train_samples: int = 10,
    test_ways: int = 5,
    test_samples: int = 10,
    num_tasks: int = -1,
    root: str = "~/data",
    device=None,
    data_augmentation: str | None = None,
    *,
    strategy: str = "genie",
    shots: int | None = None,
    support: str = "first",
    model: str | None = None,
    backbone: str | None = None,
    seed: int = 0,
    cache_dir=None,
    image_transform=None,
    strategy_options: dict | None = None,
    max_batch: int = 16,
    **kwargs,
) -> BenchmarkTasksets:
    """``learn2learn.vision.benchmarks.get_tasksets`` with a strategy: same arguments, meaning
    and defaults, and tasksets that are learn2learn ``Taskset`` s; ``sample()`` returns ``(X, y)``
    laid out as learn2learn lays them out (:class:`AugmentedTask`).

    ``*_samples`` are support + query images per class, as there. ``shots`` (default
    ``*_samples // 2``, the split of learn2learn's examples) is how many of them per class the
    caller's split takes as support, ``support`` which ones (``"first"``: ProtoNet /
    ``partition_task``; ``"alternate"``: MAML's even positions): only those are sources.
    The generated images are ``task.generated_x``/``generated_y`` (``generated_per_class`` of
    each class); ``task.support_x``/``support_y`` hold real support + generated.
    Datasets: ``shapes`` (embedded), ``mini-imagenet``, ``tiered-imagenet``, ``cub``,
    ``mini-imagenet-full``, ``tiered-imagenet-full`` (files checked first; ``download=True``
    lets learn2learn download what it can). ``model``/``backbone`` default to the embedded ones
    on ``shapes`` only. Generated images are cached under ``cache_dir`` (content-addressed).
    """
    l2l = _l2l
    from learn2learn.data.transforms import (
        ConsecutiveLabels,
        KShots,
        LoadData,
        NWays,
        RemapLabels,
    )

    from genie_plugin.data.datasets import load_split
    from genie_plugin.registry import REGISTRY

    for arg, value in (("train_ways", train_ways), ("test_ways", test_ways)):
        if isinstance(value, str):
            raise ConfigError(
                f"get_tasksets: {arg}={value!r}: the strategy is a keyword, as the other "
                f"arguments keep learn2learn's order: get_tasksets({name!r}, strategy={value!r})"
            )
    unknown = sorted(set(kwargs) - set(_LOADER_OPTIONS))
    if unknown:
        raise ConfigError(
            f"get_tasksets: unknown keyword {', '.join(unknown)}; passed on to the dataset "
            f"loader are {', '.join(_LOADER_OPTIONS)}"
        )
    strat = REGISTRY.get(strategy).create(**(strategy_options or {}))
    if not strat.generative and strat.augment_real:
        raise ConfigError(
            f"strategy {strategy!r} augments views inside the benchmark's feature protocol "
            "(`genie bench run`), not learn2learn tasks: here use strategy='none' with "
            "data_augmentation= or image_transform=, or a generative strategy"
        )
    if image_transform is not None and data_augmentation is not None:
        raise ConfigError("get_tasksets: pass data_augmentation= or image_transform=, not both")
    train_tf, test_tf = data_transforms(name, data_augmentation)
    if image_transform is not None:
        train_tf = test_tf = image_transform
    model, backbone = _defaults_for(name, strat, model, backbone)
    plan = []
    for split, ways, samples in (
        ("train", train_ways, train_samples),
        ("validation", test_ways, test_samples),
        ("test", test_ways, test_samples),
    ):
        k = samples // 2 if shots is None else shots
        prefix = "train" if split == "train" else "test"
        if samples < 2:
            raise ConfigError(
                f"get_tasksets: {prefix}_samples={samples}: a task needs at least one support "
                f"and one query image per class (pass {prefix}_samples of 2 or more)"
            )
        if not 1 <= k < samples:
            raise ConfigError(
                f"get_tasksets: {split} tasks have {samples} samples per class and shots={k}: "
                f"support and query each need at least one (pass "
                f"{'shots=1' if samples == 2 else f'shots between 1 and {samples - 1}'}, or more "
                f"{prefix}_samples)"
            )
        if support == "alternate" and samples != 2 * k:
            raise ConfigError(
                f"get_tasksets: support='alternate' is the MAML examples' even/odd split of "
                f"samples = 2·shots; {split} has {samples} samples and shots={k}"
            )
        plan.append((split, ways, samples, k))
    gen = embed = None
    if strat.generative:
        from genie_plugin.diffusion import load_generator
        from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
        from genie_plugin.paths import cache_root

        gen = CachedGenerator(
            load_generator(model, device=device),
            AugmentationCache(cache_dir or cache_root() / "augmentations"),
        )
    if backbone is not None:
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(backbone, device=device)
    loader = {k: v for k, v in kwargs.items() if k in _LOADER_OPTIONS}
    out = []
    for split, ways, samples, k in plan:
        data = load_split(name, split, root=None if name == "shapes" else root, **loader)
        check_split_size(
            data.metadataset,
            ways=ways,
            samples=samples,
            where=f"{name}/{data.split}",
            class_names=data.class_names,
        )
        tf = train_tf if split == "train" else test_tf
        md = l2l.data.MetaDataset(
            _TensorView(data, tf), labels_to_indices=data.metadataset.labels_to_indices
        )
        # learn2learn's order of transforms, including validation's (ConsecutiveLabels first)
        labels = [RemapLabels(md), ConsecutiveLabels(md)]
        if split == "validation":
            labels.reverse()
        out.append(
            GenerativeTaskset(
                md,
                [NWays(md, ways), KShots(md, samples), LoadData(md), *labels],
                num_tasks,
                strategy=strat,
                shots=k,
                support=support,
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
