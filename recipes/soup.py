"""Average the weights of students fine-tuned from the same base (a uniform "model soup").

Students that start from one pretrained checkpoint and are fine-tuned with different seeds or
settings usually sit in one basin of the loss, so the mean of their weights is a model as fast as
each of them that is often more accurate than any (Wortsman et al., 2022, "Model soups"). This
script writes that mean, in the students' own number format, with the first student's config
(its saved temperature removed: a soup needs its own) and tokenizer. Calibrate it on held-out
rows and judge it there before test:

    python recipes/soup.py --output /tmp/soup /tmp/default/model /tmp/default2/model
    clearpipe evaluate /tmp/soup held-out.tsv
    clearpipe calibrate /tmp/soup held-out.tsv --output /tmp/soup-calibrated

Students with other architectures, shapes or labels are refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def soup(students: list[Path], output: Path) -> None:
    """Write the uniform average of `students`' weights (same keys and shapes) to `output`."""
    configs = [json.loads((s / "config.json").read_text(encoding="utf-8")) for s in students]
    for student, config in zip(students[1:], configs[1:], strict=True):
        for key in ("architectures", "id2label", "hidden_size", "num_hidden_layers"):
            if config.get(key) != configs[0].get(key):
                raise SystemExit(f"{student}: {key} differs from {students[0]}'s; only like students mix")
    weights = [load_file(str(s / WEIGHTS)) for s in students]
    for student, w in zip(students[1:], weights[1:], strict=True):
        if w.keys() != weights[0].keys() or any(w[k].shape != weights[0][k].shape for k in w):
            raise SystemExit(f"{student}: its tensors differ from {students[0]}'s in names or shapes")
    mean = {
        key: (sum(w[key].to(torch.float32) for w in weights) / len(weights)).to(weights[0][key].dtype)
        for key in weights[0]
    }
    output.mkdir(parents=True, exist_ok=False)
    save_file(mean, str(output / WEIGHTS), metadata={"format": "pt"})
    config = dict(configs[0])
    config.pop("clearpipe_calibration", None)
    (output / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (students[0] / name).is_file():
            shutil.copy2(students[0] / name, output / name)
    print(f"wrote the mean of {len(students)} students to {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", nargs="+", type=Path, help="model folders fine-tuned from one base")
    parser.add_argument("--output", type=Path, required=True, help="a new folder")
    args = parser.parse_args()
    if len(args.students) < 2:
        parser.error("a soup needs at least two students")
    soup(args.students, args.output)


if __name__ == "__main__":
    main()
