"""How fast can any loop around OpenVINO's int8 graph go? The bound behind the SST-2 rival targets.

    PYTHONPATH=src python benchmarks/openvino_bound.py [--model DIR] [--dataset sst2] [--passes 5] [--rounds 2]

The rival `openvino-int8` (benchmarks/rivals.py: nncf int8 weights and activations) runs its
texts in length-sorted batches of 32, each padded to its longest row. Padding is the only waste
a loop around the graph can remove: this script groups the texts by exact token length, so no
batch holds a single padding token, and times that at several batch sizes against the rival's
own loop, on the same compiled graph in the same process (each figure the median of `--passes`
passes after two untimed ones; `--rounds` alternates the loops to show the machine's drift).
If the padding-free loop is no faster than the rival's, no scheduling, batching or bucketing
that clearpipe could add around OpenVINO beats the rival by much: it runs the same kernels on
the same tokens. The timing imports only openvino, numpy and tokenizers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import rivals  # benchmarks/, first on sys.path when this script runs
import throughput

DEFAULT_MODEL = throughput.ROOT / "src" / "clearpipe" / "default_model"


def loops(folder: Path, texts: list[str], threads: int) -> dict:
    """Name -> one pass over `texts` (a callable) for the rival's loop and the padding-free ones."""
    import json

    import numpy as np
    import openvino as ov

    info = json.loads((folder / rivals.INFO).read_text(encoding="utf-8"))
    tokenizer = rivals._tokenizer(folder, info["max_length"])
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(folder / "model.xml"), "CPU", {"INFERENCE_NUM_THREADS": threads}
    )
    request = compiled.create_infer_request()
    with_types = info["token_type_ids"] and "token_type_ids" in {i.get_any_name() for i in compiled.inputs}

    def rival() -> None:
        encodings = tokenizer.encode_batch(texts)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), 32):
            request.infer(rivals._padded([encodings[i] for i in order[start : start + 32]], with_types))

    def exact(batch: int):
        def one_pass() -> None:
            groups = defaultdict(list)
            for encoding in tokenizer.encode_batch(texts):
                groups[len(encoding.ids)].append(encoding.ids)
            for rows in groups.values():
                for start in range(0, len(rows), batch):
                    ids = np.array(rows[start : start + batch], dtype=np.int64)
                    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
                    request.infer(feeds | ({"token_type_ids": np.zeros_like(ids)} if with_types else {}))

        return one_pass

    return {"rival loop, sorted, batch 32": rival} | {
        f"exact length, batch {b}": exact(b) for b in (32, 64, 256)
    }


def rate(one_pass, count: int, passes: int) -> float:
    """Texts per second: the median of `passes` timed passes after two untimed ones (compiles)."""
    one_pass()
    one_pass()
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        one_pass()
        seconds.append(time.perf_counter() - start)
    return count / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--dataset", choices=sorted(throughput.DATASETS), default="sst2")
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    reason = rivals.missing("openvino-int8")
    if reason:
        sys.exit(f"openvino-int8 cannot run here: {reason}")
    texts = throughput.read_texts(args.dataset, args.texts)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "openvino-int8"
        command = [sys.executable, str(Path(__file__).with_name("rivals.py")), "prepare", "openvino-int8"]
        subprocess.run([*command, args.model, str(folder)], check=True, env=throughput._env())
        timings = loops(folder, texts, args.threads)
        results = defaultdict(list)
        for _ in range(args.rounds):
            for name, one_pass in timings.items():
                results[name].append(rate(one_pass, len(texts), args.passes))
    rival = statistics.median(results["rival loop, sorted, batch 32"])
    print(f"{args.dataset}, {len(texts)} texts, {args.threads} threads, OpenVINO int8 (nncf) graph")
    for name, rates in results.items():
        shown = " / ".join(f"{r:.0f}" for r in rates)
        print(f"  {name:30} {shown} texts/s   x rival loop {statistics.median(rates) / rival:.2f}")


if __name__ == "__main__":
    main()
