"""BM3D as the denoising experiment runs it, measured outside the experiment: docs/denoise.md quotes these lines.

    python benchmarks/bm3d_check.py              # tuned on 100 training images per sigma, scored on the first 60 test images
    python benchmarks/bm3d_check.py --profiles   # the library's default profile against the white-noise mode, on training images

The first form runs `classical_denoisers.tune` on training images (never test) and then `apply` on the experiment's
fixed noisy copies of the first 60 test images, printing PSNR/SSIM (the experiment's `score`), the same with the
untuned factor 1.0, the noisy input, and the time per image. The second compares, on the first 60 training images'
tuning copies, bm3d's default profile (a correlated-noise model, nf=32) with the classic white-noise mode the
experiment uses (nf=0), at the white-noise mode's tuned factor and at 1.0: that choice was made on training data.
Timings depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import time

import bm3d
import numpy as np
import torch
from joblib import Parallel, delayed

from core import classical_denoisers as classical
from core.noise import to_unit
from lightning_impl.data.noise import NoisyDataModule
from experiments.denoising import SIGMAS, tuning_pairs
from core.image_quality import score
from core import flags


def tuned_on_test(data: NoisyDataModule, n_tune: int, n_test: int) -> None:
    method = classical.METHODS["bm3d"]
    for sigma in SIGMAS:
        params, tune_psnr = classical.tune(method, *tuning_pairs(data, sigma, n_tune), sigma, n_jobs=2)
        pairs = data.eval_pairs("test", sigma, n_test)
        clean, noisy = to_unit(pairs.clean)[:, 0], pairs.noisy[:, 0].numpy()
        start = time.perf_counter()
        out = classical.apply(method, noisy, sigma, params, n_jobs=1)
        ms = (time.perf_counter() - start) / len(noisy) * 1e3
        untuned = classical.apply(method, noisy, sigma, {"sigma_factor": 1.0}, n_jobs=1)
        tuned, plain, raw = (score(torch.from_numpy(x), clean) for x in (out, untuned, noisy))
        print(f"sigma={sigma}: tuned {params} ({tune_psnr:.2f} dB on {n_tune} training images) -> test PSNR "
              f"{tuned['psnr']:.2f} SSIM {tuned['ssim']:.3f} | factor 1.0: {plain['psnr']:.2f} | noisy input: "
              f"{raw['psnr']:.2f} | {ms:.1f} ms/image on {n_test} test images", flush=True)


def _profile_psnr(data: NoisyDataModule, sigma: float, factor: float, nf: int, n: int) -> str:
    clean, noisy = tuning_pairs(data, sigma, n)
    start, out = time.perf_counter(), []
    for image in noisy:
        profile = bm3d.BM3DProfile()
        profile.nf, profile.num_threads = nf, 1
        out.append(bm3d.bm3d(image, sigma_psd=factor * sigma, profile=profile))
    ms = (time.perf_counter() - start) / len(noisy) * 1e3
    psnr = score(torch.from_numpy(np.stack(out).astype(np.float32)), torch.from_numpy(clean), ssim=False)["psnr"]
    return f"sigma={sigma} factor={factor} nf={nf}: {psnr:.2f} dB, {ms:.0f} ms/image on {n} training images"


def compare_profiles(data: NoisyDataModule, n: int, factors: dict[float, float]) -> None:
    jobs = [(s, f, nf) for s in SIGMAS for f in sorted({factors[s], 1.0}) for nf in (0, 32)]
    for line in Parallel(n_jobs=2)(delayed(_profile_psnr)(data, s, f, nf, n) for s, f, nf in jobs):
        print(line, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = flags.Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", action="store_true", help="compare bm3d's profiles on training images instead")
    parser.add_argument("--tune-images", type=flags.positive_int, default=100)
    parser.add_argument("--test-images", type=flags.positive_int, default=60)
    args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = NoisyDataModule(download=False, test_limit=args.test_images)
    data.prepare_data(), data.setup()
    if args.profiles:
        # The white-noise mode's factors tuned on 100 training images (the first form's output).
        compare_profiles(data, 60, {0.1: 0.8, 0.2: 0.8, 0.3: 0.7, 0.5: 0.6})
    else:
        tuned_on_test(data, args.tune_images, args.test_images)


if __name__ == "__main__":
    main()
