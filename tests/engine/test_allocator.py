"""keep_freed_memory: glibc keeps a batch's freed activations, so the next batch does not fault.

Each case runs in a fresh interpreter, because malloc settings are process-wide and applied once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Repeated forward passes of a MiniLM-sized random BERT; prints the minor page faults of the
# passes after the first two (which allocate for the first time either way).
PROBE = """
import json, resource, sys, torch
from transformers import BertConfig, BertForSequenceClassification
from clearpipe.engine import allocator
applied = allocator.keep_freed_memory()
torch.manual_seed(0)
config = BertConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=2,
                    num_attention_heads=12, vocab_size=1000)
model = BertForSequenceClassification(config).eval()
ids = torch.randint(5, 1000, (64, 40))
faults = []
for _ in range(6):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with torch.inference_mode():
        for rows in (64, 48, 56):  # batches of different sizes, as the engine makes them
            model(input_ids=ids[:rows], attention_mask=torch.ones_like(ids[:rows]))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
print(json.dumps({"applied": applied, "faults": sum(faults[2:])}))
"""


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    clean.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kept_memory_spares_the_page_faults_of_later_batches():
    kept = probe()
    returned = probe(CLEARPIPE_KEEP_FREED_MEMORY="0")
    assert kept["applied"] and not returned["applied"]
    assert kept["faults"] * 3 < returned["faults"], (kept, returned)


def test_a_user_choice_of_malloc_settings_is_left_alone():
    assert not probe(MALLOC_TRIM_THRESHOLD_="131072")["applied"]
