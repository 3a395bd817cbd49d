"""P4: all-pairs mutual information (conv1 × conv2, 32 × 64 maps, 2000 images) vs sklearn's KSG per pair.

The activations are real: globally average-pooled conv1 and conv2 maps of a qixai-cnn trained on
mnist (trained here for 1 epoch if --checkpoint is not given). The reference, scikit-learn's
``mutual_info_regression`` (KSG, k = 3), is run pair by pair on a random sample of pairs and its time
projected to all 2048 pairs (said in the output). Spearman correlation is over the sampled pairs.

    python benchmarks/p4_mutual_info.py [--checkpoint CKPT] [--pairs 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from qxai.analysis.capture import capture_activations
from qxai.analysis.mutual_info import ksg_mi, mutual_information_matrix
from qxai.models.loading import load_model_and_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=256, help="KSG pairs actually run (projected to all)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ckpt = args.checkpoint
    if ckpt is None:
        from qxai.pipeline.train import run_train, train_config

        ckpt = str(Path(tempfile.mkdtemp()) / "mnist-qixai.pt")
        config = train_config("mnist", "qixai-cnn", maps=None, epochs=1, seed=0, batch_size=64, lr=2e-3)
        run_train(config, ckpt)
    md = load_model_and_data(ckpt, "mnist")
    images = torch.cat([md.split.test.images, md.split.train.images])[: args.images]
    acts = capture_activations(md.model, images, ["conv1", "conv2"])
    x, y = acts.matrix("conv1"), acts.matrix("conv2")
    print(f"activations: conv1 {x.shape}, conv2 {y.shape} (GAP over {len(x)} images)")

    results = {}
    for method in ("gcmi", "binned"):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = mutual_information_matrix(x, y, method=method)
            times.append(time.perf_counter() - t0)
        results[method] = (r.mi, min(times))
    t0 = time.perf_counter()
    perm = mutual_information_matrix(x, y, permutations=100)
    t_perm = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    flat = rng.choice(x.shape[1] * y.shape[1], size=min(args.pairs, x.shape[1] * y.shape[1]), replace=False)
    pairs = [np.unravel_index(f, (x.shape[1], y.shape[1])) for f in flat]
    t0 = time.perf_counter()
    ksg = np.array([ksg_mi(x[:, i], y[:, j]) for i, j in pairs])
    t_ksg = time.perf_counter() - t0
    total_pairs = x.shape[1] * y.shape[1]
    t_ksg_all = t_ksg / len(pairs) * total_pairs
    print(f"sklearn KSG: {len(pairs)} pairs in {t_ksg:.2f} s → projected {t_ksg_all:.1f} s for {total_pairs}")
    for method, (mi, t) in results.items():
        rho = spearmanr([mi[i, j] for i, j in pairs], ksg).statistic
        print(
            f"{method:7s} all {total_pairs} pairs: {t * 1e3:8.1f} ms  speed-up ×{t_ksg_all / t:10.0f}  "
            f"Spearman vs KSG {rho:.3f}"
        )
    print(f"gcmi + 100 permutation p-values: {t_perm:.2f} s (×{t_ksg_all / t_perm:.0f} vs KSG, no p-values)")
    top = perm.top_pairs(1, ("conv1", "conv2"))[0]
    pair = f"conv1 map {top['conv1']} – conv2 map {top['conv2']}"
    print(f"top pair: {pair} ({top['mi']:.3f} nats, p={top['p']:.3g})")


if __name__ == "__main__":
    main()
