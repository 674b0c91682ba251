"""recipes/cased_vocab.py: an uncased WordPiece base given a cased vocabulary. Capitals reach the
model, lower-case text runs exactly as before, and plain transformers loads the result."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, pipeline

from tiny_bases import word_base

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
spec = importlib.util.spec_from_file_location("cased_vocab", RECIPES / "cased_vocab.py")
cased_vocab = importlib.util.module_from_spec(spec)
sys.modules["cased_vocab"] = cased_vocab  # its dataclasses look their module up there
spec.loader.exec_module(cased_vocab)

WORDS = ["Brown met Mr . Smith of GERMANY and the McDonald family in Brown"] * 3  # texts, split as BERT does


@pytest.fixture(scope="module")
def bases(tmp_path_factory, minilm_dir) -> tuple[Path, Path]:
    uncased = word_base(tmp_path_factory.mktemp("uncased"), minilm_dir)
    cased = tmp_path_factory.mktemp("cased")
    tokenizer = AutoTokenizer.from_pretrained(uncased)
    entries = cased_vocab.choose(tokenizer, WORDS, size=100, min_count=2, upper=50)
    cased_vocab.build(uncased, cased, entries, mark_scale=0.5, seed=0)
    return uncased, cased


def test_case_of():
    surfaces = ("brown", "Brown", "BROWN", "McDonald", "##DON", "##don", "A", "42")
    cases = [None, "Title", "UPPER", "Mixed", "UPPER", None, "Title", None]
    assert [cased_vocab.case_of(s) for s in surfaces] == cases


def test_surfaces_are_the_uncased_pieces_written_as_in_the_text(minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    found = list(cased_vocab.surfaces(tokenizer, ["McDonald", "brown", "Brown", "GERMANY"]))
    pieces = tokenizer.tokenize("mcdonald")
    assert [e.piece for e in found[: len(pieces)]] == pieces
    assert "".join(e.token.removeprefix("##") for e in found[: len(pieces)]) == "McDonald"
    assert cased_vocab.Entry("Brown", "brown", "Title") in found
    assert cased_vocab.Entry("GERMANY", "germany", "UPPER") in found
    assert all(e.piece != "brown" or e.token != "brown" for e in found)  # lower case adds nothing


def test_capitals_become_their_own_tokens(bases):
    uncased, cased = bases
    before, after = AutoTokenizer.from_pretrained(uncased), AutoTokenizer.from_pretrained(cased)
    assert before("Brown brown")["input_ids"][1] == before("Brown brown")["input_ids"][2]
    ids = after("Brown brown GERMANY")["input_ids"]
    assert ids[1] != ids[2]
    assert after.convert_ids_to_tokens(ids[1:4]) == ["Brown", "brown", "GERMANY"]
    assert after.unk_token_id not in after("Zyxwvut QQQX")["input_ids"]  # letters, never [UNK]
    assert after("Café")["input_ids"] == after("Cafe")["input_ids"]  # accents still stripped
    record = json.loads((cased / "cased_vocab.json").read_text())
    assert record["added"] == len(after) - len(before)


def test_lower_case_text_runs_exactly_as_the_uncased_base(bases):
    text = "the brown fox met mr. smith of germany ."
    outputs = []
    for folder in bases:
        tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
        with torch.no_grad():
            outputs.append(model(**tokenizer(text, return_tensors="pt")).last_hidden_state)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_a_new_entry_starts_at_its_piece_plus_its_case_mark(bases):
    uncased, cased = bases
    before, after = AutoTokenizer.from_pretrained(uncased), AutoTokenizer.from_pretrained(cased)
    old = AutoModel.from_pretrained(uncased).get_input_embeddings().weight.detach()
    new = AutoModel.from_pretrained(cased).get_input_embeddings().weight.detach()
    torch.testing.assert_close(new[: len(old)], old)
    brown, smith = after.convert_tokens_to_ids("Brown"), after.convert_tokens_to_ids("Smith")
    mark = new[brown] - old[before.convert_tokens_to_ids("brown")]
    torch.testing.assert_close(new[smith] - old[before.convert_tokens_to_ids("smith")], mark)
    assert mark.norm() > 0
    upper = new[after.convert_tokens_to_ids("GERMANY")] - old[before.convert_tokens_to_ids("germany")]
    assert not torch.allclose(upper, mark)  # each case its own mark


def test_plain_transformers_tags_with_a_tagger_built_on_it(bases, tmp_path):
    from transformers import AutoModelForTokenClassification

    _, cased = bases
    model = AutoModelForTokenClassification.from_pretrained(cased, num_labels=3)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(cased).save_pretrained(tmp_path)
    pipe = pipeline("token-classification", model=str(tmp_path), aggregation_strategy="first", device="cpu")
    text = "Brown met Mr. Smith in GERMANY."
    for entity in pipe(text):
        assert text[entity["start"] : entity["end"]] == entity["word"]  # offsets index the cased text
