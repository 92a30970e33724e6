#!/usr/bin/env python
"""Where a GAN run's classifier-feature FID comes from: class mix, or images within classes.

    python scripts/fid_breakdown.py RUN_DIR [--checkpoint last] [--samples 30000] [--raw]

The test set is split in two halves of 5,000 (even / odd images): one is the reference, the
other gives the real-vs-real floor. Generated images are labelled by the FID feature classifier
(the same cached one `test/fid` uses), as are the real ones. Printed: the FID of 5,000 generated
images and the floor, split into the mean and covariance terms; the class mix of real and
generated images; the FID after resampling the generated images to the real class mix (what is
left when the mix is right); and per class, the FID of up to 500 generated images against the
floor of the same number of real ones.
"""

from __future__ import annotations

import argparse

import torch

from genlab.evaluation.feature_classifier import feature_classifier
from genlab.evaluation.features import ClassifierFeatures
from genlab.evaluation.sample_quality import frechet_distance
from genlab.run.loading import load_run


def frechet(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(FID, its mean term) between two feature sets."""
    mean_term = (a.double().mean(0) - b.double().mean(0)).square().sum()
    return frechet_distance(a, b), float(mean_term)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--checkpoint", default="last")
    parser.add_argument("--samples", type=int, default=30_000, help="generated images to label")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--raw", action="store_true", help="the generator, not its weight average")
    args = parser.parse_args()

    model, datamodule, cfg = load_run(args.run_dir, args.checkpoint)
    datamodule.prepare_data()
    datamodule.setup("test")
    classifier, accuracy = feature_classifier(
        datamodule,
        model.value_range,
        model.input_shape,
        cfg.model.eval.cache_dir,
        epochs=cfg.model.eval.get("classifier_epochs", 3),
    )
    features = ClassifierFeatures(classifier, model.value_range)
    if args.raw:
        model.generator_ema = None
    noise = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        real = features(torch.cat([batch[0] for batch in datamodule.test_dataloader()]))
        fake = torch.cat(
            [
                features(model.sample(min(1000, args.samples - done), noise))
                for done in range(0, args.samples, 1000)
            ]
        )
        real_class = classifier.head(real).argmax(1)
        fake_class = classifier.head(fake).argmax(1)
    reference, held_out = real[0::2], real[1::2]
    reference_class, held_out_class = real_class[0::2], real_class[1::2]
    n = len(held_out)
    print(f"{args.run_dir} ({args.checkpoint}); feature classifier test accuracy {accuracy:.3f}")

    floor, _ = frechet(reference, held_out)
    fid, mean_term = frechet(reference, fake[:n])
    print(f"FID {n} generated vs {n} real: {fid:.3f}   floor (real vs real): {floor:.3f}")
    print(f"  mean term {mean_term:.3f}, covariance term {fid - mean_term:.3f}")
    variance = [float(torch.cov(x[:n].double().T).trace()) for x in (reference, fake)]
    print(f"  feature variance (trace): real {variance[0]:.1f}, generated {variance[1]:.1f}")

    classes = classifier.head.out_features
    real_mix = torch.bincount(reference_class, minlength=classes)
    real_share = real_mix.double() / len(reference)
    fake_mix = torch.bincount(fake_class, minlength=classes).double() / len(fake_class)
    print("class mix (classifier's labels), real / generated:")
    for c in range(classes):
        print(f"  class {c}: {real_share[c]:.3f} / {fake_mix[c]:.3f}")
    print(f"  total variation distance {0.5 * float((real_share - fake_mix).abs().sum()):.3f}")

    picked = [torch.nonzero(fake_class == c).flatten()[: int(real_mix[c])] for c in range(classes)]
    resampled = torch.cat(picked)
    if len(resampled) == len(reference):
        print(
            f"FID with the generated class mix resampled to the real one: "
            f"{frechet(reference, fake[resampled])[0]:.3f}"
        )
    else:
        print(
            f"too few generated images of some class to resample to the real mix "
            f"({len(resampled)} of {len(reference)}): raise --samples"
        )

    print("per class: FID of <= 500 generated vs floor of as many real")
    for c in range(classes):
        ref_c = reference[reference_class == c]
        held_c = held_out[held_out_class == c][:500]
        fake_c = fake[fake_class == c][: len(held_c)]
        if len(fake_c) < 50:
            print(f"  class {c}: only {len(fake_c)} generated")
            continue
        held_c = held_c[: len(fake_c)]
        print(
            f"  class {c}: FID {frechet(ref_c, fake_c)[0]:7.2f}   "
            f"floor {frechet(ref_c, held_c)[0]:5.2f}   (n={len(fake_c)})"
        )


if __name__ == "__main__":
    main()
