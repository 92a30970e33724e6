#!/usr/bin/env python
"""Peak memory of genlab-train on text corpora of growing size: the token file is read through a
memory map, so the peak should not grow with the corpus.

For each size (default 20 and 400 MB) a corpus of random words of tiny Shakespeare's
vocabulary (with their punctuation), ten to a line, is written in chunks; then

    genlab-train experiment=gpt_shakespeare_char data.path=<corpus> trainer.max_steps=200 ...

runs in a subprocess (validation every 100 steps on 5 batches, no test, no logger), and its peak
resident memory (the child's own `ru_maxrss`, from os.wait4) and the time it spent reading
the characters and tokenizing (from its train.log) are recorded. The largest corpus is then run
a second time: its token file is in the cache, so nothing is tokenized again.

    python scripts/bench_text_memory.py [--sizes 20,400] [--steps 200] [--data tinyshakespeare.txt]
                                        [--workdir DIR] [--keep]

Prints each run's peak RSS, wall time and tokenizing time, and the ratio of the peaks.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
# Without tiny Shakespeare; the experiment's sample prompt "ROMEO:" needs its characters.
FALLBACK_WORDS = ["ROMEO:", "JULIET:", "the", "king", "my", "good", "lord", "thou", "love"]


def vocabulary(data: Path | None) -> list[str]:
    """The text's words with their punctuation (ROMEO: among them)."""
    if data is None or not data.is_file():
        return FALLBACK_WORDS
    return sorted(set(data.read_text(encoding="utf-8").split()))


def write_corpus(path: Path, megabytes: int, words: list[str], seed: int = 0) -> None:
    """`megabytes` MB of random words, ten to a line, written about 1 MB at a time."""
    import numpy as np

    rng = np.random.default_rng(seed)
    target, written = megabytes * 1_000_000, 0
    with path.open("w", encoding="utf-8") as f:
        while written < target:
            picks = rng.choice(len(words), size=200_000)
            lines = (" ".join(words[i] for i in picks[j : j + 10]) for j in range(0, 200_000, 10))
            chunk = "\n".join(lines) + "\n"
            chunk = chunk[: target - written]
            f.write(chunk)
            written += len(chunk.encode("utf-8"))


def run_genlab(corpus: Path, steps: int, workdir: Path, name: str) -> dict:
    run_dir = workdir / name
    command = [
        str(Path(sys.executable).with_name("genlab-train")),
        "experiment=gpt_shakespeare_char",
        f"data.path={corpus}",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={min(100, steps)}",
        "trainer.limit_val_batches=5",
        "test=false",
        "logger=none",
        f"paths.cache_dir={workdir / 'cache'}",
        f"hydra.run.dir={run_dir}",
        "overwrite=true",
    ]
    start = time.perf_counter()
    with open(workdir / f"{name}.out", "w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"bench_text_memory: genlab-train failed, see {workdir / f'{name}.out'}")
    log = (run_dir / "train.log").read_text()
    timed = r"(?:read|tokenized into \d+ tokens) in ([\d.]+) s"
    seconds = [float(s) for s in re.findall(timed, log)]
    cached = re.search(r"reading (\d+) cached tokens", log)
    return {
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "wall_s": wall,
        "tokenize_s": sum(seconds),
        "tokenized": "cache reused" if cached else "tokenized",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20,400", help="corpus sizes in MB, comma-separated")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA if DEFAULT_DATA.is_file() else None,
        help="where the words come from (tiny Shakespeare); a short word list without it",
    )
    parser.add_argument("--workdir", type=Path, help="corpora, cache, runs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_text_memory_"))
    workdir.mkdir(parents=True, exist_ok=True)
    words = vocabulary(args.data)
    results = []
    try:
        for size in sizes:
            corpus = workdir / f"corpus_{size}mb.txt"
            start = time.perf_counter()
            write_corpus(corpus, size, words)
            print(f"wrote {corpus} ({size} MB) in {time.perf_counter() - start:.1f} s", flush=True)
            results.append((f"{size} MB", run_genlab(corpus, args.steps, workdir, f"run_{size}mb")))
        largest = max(sizes)
        corpus = workdir / f"corpus_{largest}mb.txt"
        results.append(
            (f"{largest} MB again", run_genlab(corpus, args.steps, workdir, f"run_{largest}mb_2"))
        )
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"genlab-train experiment=gpt_shakespeare_char, {args.steps} steps, {len(words)} words")
    print(f"{'corpus':16}{'peak RSS MB':>12}{'wall s':>9}{'tokenizing s':>14}  token file")
    for name, r in results:
        print(
            f"{name:16}{r['peak_rss_mb']:12.0f}{r['wall_s']:9.1f}{r['tokenize_s']:14.1f}  "
            f"{r['tokenized']}"
        )
    peaks = {name: r["peak_rss_mb"] for name, r in results}
    smallest, largest_name = f"{min(sizes)} MB", f"{max(sizes)} MB"
    print(
        f"peak RSS {largest_name} / {smallest}: {peaks[largest_name] / peaks[smallest]:.3f} "
        f"(corpus {max(sizes) / min(sizes):.0f}x larger)"
    )


if __name__ == "__main__":
    main()
