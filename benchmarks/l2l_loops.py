"""learn2learn's own MAML and ProtoNet loops, as its examples write them, run on learn2learn
tasksets and on the plugin's with the README's diff; writes per-task generation times (first
pass, then cached) as JSON.

The ``*_example`` functions are learn2learn's ``examples/vision/maml_miniimagenet.py`` and
``protonet_miniimagenet.py`` ``fast_adapt`` (MIT licence), unchanged; the ``*_plugin`` ones are
the same with exactly the lines README's "learn2learn users" diff adds or changes (a test checks
that the two agree). Run: ``python -m benchmarks.l2l_loops [--tasks 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def accuracy(predictions, targets):
    predictions = predictions.argmax(dim=1).view(targets.shape)
    return (predictions == targets).sum().float() / targets.size(0)


def pairwise_distances_logits(a, b):
    n = a.shape[0]
    m = b.shape[0]
    logits = -((a.unsqueeze(1).expand(n, m, -1) - b.unsqueeze(0).expand(n, m, -1)) ** 2).sum(dim=2)
    return logits


# --- learn2learn examples/vision/maml_miniimagenet.py --------------------------------------
def maml_fast_adapt_example(batch, learner, loss, adaptation_steps, shots, ways, device):
    data, labels = batch
    data, labels = data.to(device), labels.to(device)

    # Separate data into adaptation/evalutation sets
    adaptation_indices = np.zeros(data.size(0), dtype=bool)
    adaptation_indices[np.arange(shots * ways) * 2] = True
    evaluation_indices = torch.from_numpy(~adaptation_indices)
    adaptation_indices = torch.from_numpy(adaptation_indices)
    adaptation_data, adaptation_labels = data[adaptation_indices], labels[adaptation_indices]
    evaluation_data, evaluation_labels = data[evaluation_indices], labels[evaluation_indices]

    # Adapt the model
    for step in range(adaptation_steps):  # noqa: B007 - verbatim
        adaptation_error = loss(learner(adaptation_data), adaptation_labels)
        learner.adapt(adaptation_error)

    # Evaluate the adapted model
    predictions = learner(evaluation_data)
    evaluation_error = loss(predictions, evaluation_labels)
    evaluation_accuracy = accuracy(predictions, evaluation_labels)
    return evaluation_error, evaluation_accuracy


def maml_fast_adapt_plugin(batch, learner, loss, adaptation_steps, shots, ways, device):
    data, labels = batch
    data, labels = data.to(device), labels.to(device)

    # Separate data into adaptation/evalutation sets
    adaptation_indices = np.zeros(data.size(0), dtype=bool)
    adaptation_indices[np.arange(shots * ways) * 2] = True
    evaluation_indices = torch.from_numpy(~adaptation_indices)
    adaptation_indices = torch.from_numpy(adaptation_indices)
    adaptation_data, adaptation_labels = data[adaptation_indices], labels[adaptation_indices]
    evaluation_data, evaluation_labels = data[evaluation_indices], labels[evaluation_indices]
    adaptation_data = torch.cat([adaptation_data, batch.generated_x.to(device)])
    adaptation_labels = torch.cat([adaptation_labels, batch.generated_y.to(device)])

    # Adapt the model
    for step in range(adaptation_steps):  # noqa: B007 - verbatim
        adaptation_error = loss(learner(adaptation_data), adaptation_labels)
        learner.adapt(adaptation_error)

    # Evaluate the adapted model
    predictions = learner(evaluation_data)
    evaluation_error = loss(predictions, evaluation_labels)
    evaluation_accuracy = accuracy(predictions, evaluation_labels)
    return evaluation_error, evaluation_accuracy


# --- learn2learn examples/vision/protonet_miniimagenet.py ----------------------------------
def protonet_fast_adapt_example(model, batch, ways, shot, query_num, metric=None, device=None):
    if metric is None:
        metric = pairwise_distances_logits
    if device is None:
        device = model.device()
    data, labels = batch
    data = data.to(device)
    labels = labels.to(device)

    # Sort data samples by labels
    sort = torch.sort(labels)
    data = data.squeeze(0)[sort.indices].squeeze(0)
    labels = labels.squeeze(0)[sort.indices].squeeze(0)

    # Compute support and query embeddings
    embeddings = model(data)
    support_indices = np.zeros(data.size(0), dtype=bool)
    selection = np.arange(ways) * (shot + query_num)
    for offset in range(shot):
        support_indices[selection + offset] = True
    query_indices = torch.from_numpy(~support_indices)
    support_indices = torch.from_numpy(support_indices)
    support = embeddings[support_indices]
    support = support.reshape(ways, shot, -1).mean(dim=1)
    query = embeddings[query_indices]
    labels = labels[query_indices].long()

    logits = pairwise_distances_logits(query, support)
    loss = F.cross_entropy(logits, labels)
    acc = accuracy(logits, labels)
    return loss, acc


def protonet_fast_adapt_plugin(model, batch, ways, shot, query_num, metric=None, device=None):
    if metric is None:
        metric = pairwise_distances_logits
    if device is None:
        device = model.device()
    data, labels = batch
    data = data.to(device)
    labels = labels.to(device)

    # Sort data samples by labels
    sort = torch.sort(labels, stable=True)
    data = data.squeeze(0)[sort.indices].squeeze(0)
    labels = labels.squeeze(0)[sort.indices].squeeze(0)

    # Compute support and query embeddings
    embeddings = model(data)
    support_indices = np.zeros(data.size(0), dtype=bool)
    selection = np.arange(ways) * (shot + query_num)
    for offset in range(shot):
        support_indices[selection + offset] = True
    query_indices = torch.from_numpy(~support_indices)
    support_indices = torch.from_numpy(support_indices)
    support = embeddings[support_indices]
    support = support.reshape(ways, shot, -1)
    if len(batch.generated_x):  # the strategy's images join their class's prototype
        gen = model(batch.generated_x.to(device))[batch.generated_y.argsort(stable=True)]
        support = torch.cat([support, gen.reshape(ways, -1, gen.size(-1))], dim=1)
    support = support.mean(dim=1)
    query = embeddings[query_indices]
    labels = labels[query_indices].long()

    logits = pairwise_distances_logits(query, support)
    loss = F.cross_entropy(logits, labels)
    acc = accuracy(logits, labels)
    return loss, acc


# --- the loops ----------------------------------------------------------------------------
class Flatten(nn.Module):
    """ProtoNet's Convnet: learn2learn's CNN4 backbone, flattened."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        import learn2learn as l2l

        self.encoder = l2l.vision.models.CNN4Backbone(hidden_size=hidden, channels=3)

    def forward(self, x):
        x = self.encoder(x)
        return x.view(x.size(0), -1)


def l2l_tasksets(ways: int, samples: int, num_tasks: int = -1, size: int = 32):
    """learn2learn ``get_tasksets``-style tasksets over the embedded shapes data (learn2learn has
    no shapes benchmark): its transforms, in its order, on ``ToTensor`` images."""
    import learn2learn as l2l
    from learn2learn.data.transforms import ConsecutiveLabels, KShots, LoadData, NWays, RemapLabels
    from torchvision.transforms import ToTensor

    from genie_plugin.data.datasets import load_split

    out = []
    for split in ("train", "validation", "test"):
        data = load_split("shapes", split)

        class View(torch.utils.data.Dataset):
            def __len__(self, d=data):
                return len(d.metadataset)

            def __getitem__(self, i, d=data):
                return ToTensor()(d.image(i)), d.label(i)

        md = l2l.data.MetaDataset(View(), labels_to_indices=data.metadataset.labels_to_indices)
        labels = [RemapLabels(md), ConsecutiveLabels(md)]
        if split == "validation":
            labels.reverse()
        tf = [NWays(md, ways), KShots(md, samples), LoadData(md), *labels]
        out.append(l2l.data.Taskset(md, task_transforms=tf, num_tasks=num_tasks))
    return out


def run_maml(taskset, fast_adapt, *, ways, shots, iterations=2, meta_batch=2, seed=0):
    """learn2learn's MAML meta-training loop (CNN4, first-order for CPU speed)."""
    import learn2learn as l2l

    with torch.random.fork_rng(devices=[]):  # the examples seed globally; keep the caller's RNG
        torch.manual_seed(seed)
        model = l2l.vision.models.CNN4(ways, hidden_size=8, embedding_size=8 * 4)
    maml = l2l.algorithms.MAML(model, lr=0.5, first_order=True)
    opt = torch.optim.Adam(maml.parameters(), 0.003)
    loss = nn.CrossEntropyLoss(reduction="mean")
    accs = []
    for _ in range(iterations):
        opt.zero_grad()
        for _ in range(meta_batch):
            learner = maml.clone()
            batch = taskset.sample()
            err, acc = fast_adapt(batch, learner, loss, 1, shots, ways, "cpu")
            err.backward()
            accs.append(float(acc))
        for p in maml.parameters():
            p.grad.data.mul_(1.0 / meta_batch)
        opt.step()
    return accs


def run_protonet(taskset, fast_adapt, *, ways, shot, query, tasks=2, seed=0):
    """learn2learn's ProtoNet evaluation loop (CNN4 backbone, no training)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Flatten().eval()
    accs = []
    with torch.no_grad():
        for _ in range(tasks):
            batch = taskset.sample()
            _, acc = fast_adapt(model, batch, ways, shot, query, device="cpu")
            accs.append(float(acc))
    return accs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=3, help="pool size (num_tasks) per loop")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/l2l_loops_cpu.json"))
    args = ap.parse_args(argv)
    import tempfile

    from genie_plugin.bench.env import environment
    from genie_plugin.io import atomic_write_text
    from genie_plugin.l2l import get_tasksets

    ways, shots, query = 4, 1, 3
    rows = []
    for strategy in ("none", "genie", "genie_ada"):
        with tempfile.TemporaryDirectory() as cache:
            for loop in ("maml", "protonet"):
                opts = dict(
                    strategy=strategy, num_tasks=args.tasks, cache_dir=cache, test_ways=ways
                )
                if strategy != "none":
                    opts["model"] = args.model
                if loop == "maml":
                    opts.update(train_ways=ways, train_samples=2 * shots, support="alternate")
                else:
                    opts.update(test_samples=shots + query, shots=shots)
                for rnd in ("first pass", "cached"):
                    ts = get_tasksets("shapes", **opts)
                    split = ts.train if loop == "maml" else ts.test
                    t0 = time.perf_counter()
                    for i in range(args.tasks):  # each pool task once: its generation time
                        split.sample_task(i)
                    per_task = (time.perf_counter() - t0) / args.tasks
                    gen = split.generator
                    if loop == "maml":
                        accs = run_maml(split, maml_fast_adapt_plugin, ways=ways, shots=shots)
                    else:
                        accs = run_protonet(
                            split, protonet_fast_adapt_plugin, ways=ways, shot=shots, query=query
                        )
                    row = {
                        "strategy": strategy,
                        "loop": loop,
                        "pass": rnd,
                        "tasks": args.tasks,
                        "seconds_per_task": round(per_task, 3),
                        "generated": gen.generated if gen else 0,
                        "cache_hits": gen.hits if gen else 0,
                        "mean_accuracy": round(float(np.mean(accs)), 4),
                    }
                    print(json.dumps(row))
                    rows.append(row)
    doc = {
        "what": "learn2learn MAML and ProtoNet loops through genie_plugin.l2l.get_tasksets "
        f"(shapes, {ways}-way {shots}-shot, model {args.model!r}, CPU): per-task time to "
        "build a task (generation included) on the first pass and read back from the cache",
        "rows": rows,
        "env": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
