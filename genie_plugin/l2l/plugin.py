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
import warnings
from collections import namedtuple
from collections.abc import Callable, Mapping
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
        per_class: int | None = None,
        per_task: int | None = None,
        progress: bool = True,
    ) -> None:
        from genie_plugin.core.budget import check_budget

        super().__init__(dataset, task_transforms=task_transforms, num_tasks=num_tasks)
        check_budget(per_class, per_task, where=f"{name}: ")
        self.per_class, self.per_task = per_class, per_task
        self.progress = progress
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
        from learn2learn.data.transforms import FusedNWaysKShots, NWays

        kinds = (NWays, FusedNWaysKShots)  # ANIL's examples use the fused one
        return next((t.n for t in self.task_transforms if isinstance(t, kinds)), None)

    @property
    def generated_per_class(self) -> int:
        """Images generated per class: ``per_class`` if given, else the strategy's budget
        (N-1)·K (reference.md); 0 if the strategy adds none. ``per_task`` may cap it further
        (:attr:`generated_per_task`)."""
        if not self.strategy.generative:
            return 0
        return (self.ways - 1) * self.shots if self.per_class is None else self.per_class

    @property
    def generated_per_task(self) -> int:
        """Images generated per task: ``ways · generated_per_class``, at most ``per_task``."""
        n = (self.ways or 0) * self.generated_per_class
        return n if self.per_task is None else min(n, self.per_task)

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
        from genie_plugin.strategies.base import Episode, FitContext, RenderContext, SupportItem

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
            fit = FitContext.of(self.strategy, self.generator)  # no store: each task fits afresh
            specs = self.strategy.plan_episode(episode, plan_gen, images, self.embed, fit)
            if self.per_class is not None or self.per_task is not None:
                from genie_plugin.core.budget import apply_budget

                specs = apply_budget(
                    specs, episode, per_class=self.per_class, per_task=self.per_task
                )
            outs = []
            if specs:
                bar = _GenerationBar(
                    f"{self.name} task {index}",
                    lambda: self.strategy.planned_image_steps(self.generator, specs),
                    enabled=self.progress,
                )
                ctx = RenderContext(self.generator, images, self.embed, self.max_batch, bar)
                try:
                    outs = self.strategy.render(specs, ctx)
                finally:
                    bar.close()
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


class _GenerationBar:
    """Progress of one task's generation inside ``sample()``, shown only once the UNet runs
    (a cached task prints nothing): a rich bar on a terminal, plain lines in a log."""

    def __init__(self, description: str, total: Callable[[], int], *, enabled: bool) -> None:
        self.description, self.total, self.enabled = description, total, enabled
        self.bar = self.task = None

    def __call__(self, steps: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from genie_plugin.progress import make_progress

            self.bar = make_progress("image-steps", transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.description, total=self.total(), info="")
        self.bar.advance(self.task, steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


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
        backbone = backbone or (
            "embedded" if strategy.needs_embedder or strategy.needs_affinity else None
        )
    if strategy.generative and model is None:
        raise ConfigError(
            f"get_tasksets({dataset!r}, {strategy.name!r}): pass model= (a hub id, diffusers "
            "folder or .safetensors file); the embedded shapes model is for the shapes set only"
        )
    if (strategy.needs_embedder or strategy.needs_affinity) and backbone is None:
        raise ConfigError(
            f"get_tasksets({dataset!r}, {strategy.name!r}): this strategy scores images with the "
            "few-shot backbone: pass backbone= (e.g. 'resnet18:unisiam.pth')"
        )
    return model, backbone


_LOADER_OPTIONS = ("download", "class_names")
SPLITS = ("train", "validation", "test")


def _per_split(value, arg: str, default) -> dict:
    """``value`` for every split, or a mapping by split (unnamed splits get ``default``)."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(SPLITS))
        if unknown:
            raise ConfigError(
                f"get_tasksets: {arg}={dict(value)!r}: unknown split {unknown[0]!r}; the "
                f"splits are {', '.join(SPLITS)}"
            )
        return {s: value.get(s, default) for s in SPLITS}
    return dict.fromkeys(SPLITS, value)


def get_tasksets(
    name: str,
    train_ways: int = 5,
    train_samples: int = 10,
    test_ways: int = 5,
    test_samples: int = 10,
    num_tasks: int | Mapping[str, int] = -1,
    root: str = "~/data",
    device=None,
    data_augmentation: str | None = None,
    *,
    strategy: str | Mapping[str, str] = "genie",
    shots: int | None | Mapping[str, int] = None,
    support: str | None = None,
    per_class: int | None | Mapping[str, int | None] = None,
    per_task: int | None | Mapping[str, int | None] = None,
    model: str | None = None,
    backbone: str | None = None,
    seed: int = 0,
    cache_dir=None,
    image_transform=None,
    strategy_options: dict | None = None,
    max_batch: int = 16,
    progress: bool = True,
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
    Per split: ``strategy``, ``shots``, ``num_tasks``, ``per_class`` and ``per_task`` each take
    one value for every split or a mapping by split (``"train"``, ``"validation"``,
    ``"test"``); a strategy mapping leaves unnamed splits un-augmented, so
    ``strategy={"test": "genie"}`` augments the test split only (the paper's protocol).
    ``per_class``: images generated per class (default the strategy's (N-1)·K; fewer are a
    seeded subset, more are further copies); ``per_task``: a cap on a task's total, spread
    evenly over its classes — ProtoNet's 30-way training would otherwise generate 870 per
    class per task. ``progress``: a task that generates shows its progress on stderr (a bar on
    a terminal, plain lines in a log); a cached task shows nothing.
    Datasets: ``shapes`` (embedded), ``mini-imagenet``, ``tiered-imagenet``, ``cub``,
    ``cifarfs``, ``fc100`` (learn2learn's own CIFARFS / FC100 classes, 32 px),
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
    names = _per_split(strategy, "strategy", "none")
    strats = {}
    for split, sname in names.items():
        if not isinstance(sname, str):
            raise ConfigError(f"get_tasksets: strategy for {split} = {sname!r}: a strategy name")
        options = (strategy_options or {}) if sname != "none" else {}  # options: the augmenter's
        strats[split] = REGISTRY.get(sname).create(**options)
        if not strats[split].generative and strats[split].augment_real:
            raise ConfigError(
                f"strategy {sname!r} augments views inside the benchmark's feature protocol "
                "(`genie bench run`), not learn2learn tasks: here use strategy='none' with "
                "data_augmentation= or image_transform=, or a generative strategy"
            )
    shots_of = _per_split(shots, "shots", None)
    tasks_of = _per_split(num_tasks, "num_tasks", -1)
    per_class_of = _per_split(per_class, "per_class", None)
    per_task_of = _per_split(per_task, "per_task", None)
    if image_transform is not None and data_augmentation is not None:
        raise ConfigError("get_tasksets: pass data_augmentation= or image_transform=, not both")
    train_tf, test_tf = data_transforms(name, data_augmentation)
    if image_transform is not None:
        train_tf = test_tf = image_transform
    for st in strats.values():  # the model and backbone every split's strategy needs
        model, backbone = _defaults_for(name, st, model, backbone)
    if any(s.generative for s in strats.values()):
        _warn_if_rehearsal("get_tasksets", name, model)
    plan = []
    for split, ways, samples in (
        ("train", train_ways, train_samples),
        ("validation", test_ways, test_samples),
        ("test", test_ways, test_samples),
    ):
        k = samples // 2 if shots_of[split] is None else shots_of[split]
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
    if support is None:
        support = "first"
        if any(s.generative for s in strats.values()) and all(
            samples == 2 * k for _, _, samples, k in plan
        ):  # MAML's layout: its loop takes the even positions as support
            warnings.warn(
                "get_tasksets: support='first' (the first shots images of each class are the "
                "sources, as ProtoNet splits tasks). learn2learn's MAML examples take the even "
                "positions (np.arange(shots * ways) * 2) as support: with that loop, pass "
                "support='alternate', else half the sources are its query images",
                stacklevel=2,
            )
    gen = embed = None
    if any(s.generative for s in strats.values()):
        gen = _cached_generator(model, device, cache_dir)
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
                tasks_of[split],
                strategy=strats[split],
                shots=k,
                per_class=per_class_of[split],
                per_task=per_task_of[split],
                progress=progress,
                support=support,
                source=data.image,
                source_id=data.image_id,
                class_names=data.class_names,
                image_transform=tf,
                generator=gen if strats[split].generative else None,
                embed=embed,
                seed=seed,
                name=f"{name}/{data.split}",
                max_batch=max_batch,
                device=device,
            )
        )
    return BenchmarkTasksets(*out)


def one_task(batch):
    """``collate_fn`` for a ``DataLoader`` of single tasks: the task itself, generated images
    included (the default collation keeps only ``(X, y)``, with a batch dimension of 1 that
    learn2learn's examples ``squeeze(0)`` away — a no-op on the task itself)."""
    if len(batch) != 1:
        raise ConfigError("one_task collates one task per batch: use batch_size=1")
    return batch[0]


def augment(
    taskset,
    dataset: str,
    *,
    strategy: str = "genie",
    model: str | None = None,
    shots: int,
    support: str = "first",
    class_names=None,
    backbone: str | None = None,
    seed: int = 0,
    per_class: int | None = None,
    per_task: int | None = None,
    cache_dir=None,
    device=None,
    max_batch: int = 16,
    strategy_options: dict | None = None,
    progress: bool = True,
) -> GenerativeTaskset:
    """A plain learn2learn ``Taskset`` you built yourself (as ``protonet_miniimagenet.py``
    builds its three, over ``l2l.vision.datasets.MiniImagenet``) with the strategy's images:
    the same tasks, dataset, transforms and ``num_tasks``, and the sources, class names and
    image transform read from the learn2learn dataset under it. ``shots`` is how many of each
    class's images your loop takes as support (``support``: which ones). Source ids are
    :func:`get_tasksets`' (``mini-imagenet/test/000123``), so both share cached images.
    ``class_names`` (by label): needed where the dataset does not name its classes (all but
    learn2learn's ``MiniImagenet``, whose ``class_dict`` has WordNet ids, and ``FC100``,
    whose labels are CIFAR-100's)."""
    import numpy as np
    from PIL import Image

    from genie_plugin.data.names import wordnet_lemma
    from genie_plugin.l2l.transforms import default_image_transform
    from genie_plugin.registry import REGISTRY

    md = taskset.dataset
    inner = getattr(md, "dataset", md)
    split = getattr(inner, "mode", None) or "train"
    if class_names is None and dataset == "fc100":  # its labels are CIFAR-100 fine ids
        from genie_plugin.data.specs import CIFAR100_CLASSES

        class_names = [c.replace("_", " ") for c in CIFAR100_CLASSES]
    if class_names is None:
        data = getattr(inner, "data", None)
        if not isinstance(data, dict) or "class_dict" not in data:
            raise ConfigError(
                f"augment({dataset!r}): this dataset does not name its classes: pass "
                "class_names= (the prompt word of each label, in label order)"
            )
        class_names = [wordnet_lemma(w) for w in data["class_dict"]]  # label = insertion order
    names = tuple(class_names)
    labels = set(md.labels_to_indices)
    if not labels <= set(range(len(names))):
        raise ConfigError(
            f"augment({dataset!r}): labels {min(labels)}..{max(labels)} but {len(names)} "
            "class_names; pass one name per label"
        )

    raw = getattr(inner, "images", None)  # FC100's uint8 arrays: the pixels, not a transform's

    def source(i):
        if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 4:
            return Image.fromarray(raw[i]).convert("RGB")
        img = inner[i][0]
        if isinstance(img, Image.Image):
            return img.convert("RGB")
        arr = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
        if arr.ndim == 3 and arr.shape[0] in (1, 3):
            arr = arr.transpose(1, 2, 0)
        if arr.max() <= 1.0:  # 0-1 tensors (ToTensor) as 8-bit
            arr = arr * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8)).convert("RGB")

    strat = REGISTRY.get(strategy).create(**(strategy_options or {}))
    model, backbone = _defaults_for(dataset, strat, model, backbone)
    if strat.generative:
        _warn_if_rehearsal("augment", dataset, model)
    gen = _cached_generator(model, device, cache_dir) if strat.generative else None
    embed = None
    if backbone is not None:
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(backbone, device=device)
    return GenerativeTaskset.wrap(
        taskset,
        strat,
        shots=shots,
        support=support,
        source=source,
        source_id=lambda i: f"{dataset}/{split}/{i:06d}",
        class_names=names,
        image_transform=default_image_transform(dataset),
        generator=gen,
        embed=embed,
        seed=seed,
        name=f"{dataset}/{split}",
        max_batch=max_batch,
        device=device,
        per_class=per_class,
        per_task=per_task,
        progress=progress,
    )


def _warn_if_rehearsal(caller: str, dataset: str, model) -> None:
    """The embedded shapes model on another dataset: a rehearsal, said once per call."""
    if model == "embedded" and dataset != "shapes":
        warnings.warn(
            f"{caller}({dataset!r}): the embedded model is a 32 px shapes model; on {dataset} "
            "it is a rehearsal of the real path, not results — pass model= (SD 1.5)",
            stacklevel=3,
        )


def _cached_generator(model, device, cache_dir):
    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.paths import cache_root

    return CachedGenerator(
        load_generator(model, device=device),
        AugmentationCache(cache_dir or cache_root() / "augmentations"),
    )
