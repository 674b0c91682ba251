"""Unlabelled news for the named-entity tagger's distillation: AG News texts (news wires, Reuters
among them, as CoNLL-2003 is) cleaned of their markup and split into words as CoNLL-2003 writes
them, one JSONL row `{"tokens": [...]}` a text, for `clearpipe train --teacher T --unlabeled FILE`.

The student learns every word of these rows from the teacher alone (Hinton et al., 2015's transfer
set): 10,000 AG News rows hold about twice CoNLL-2003 train's words. Only the texts are read; the
topic labels are not.

    python recipes/news_transfer.py ../shared/data/agnews/train.tsv /tmp/agnews-transfer.jsonl
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

# CoNLL-2003's tokens: "U.S." and "47,600" and "first-time" whole, "'s" and "n't" apart from their
# word ("Germany 's", "does n't"), every other mark alone. Order matters: a word stops before "n't".
TOKEN = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # U.S. / a.m.
    r"|\d+(?:[.,:/]\d+)*"  # 47,600 / 3.5 / 10:30
    r"|n't|'s\b|'re\b|'ll\b|'ve\b|'m\b|'d\b"
    r"|\w+(?:-\w+)*(?=n't)"  # does|n't
    r"|\w+(?:-\w+)*"  # first-time
    r"|[^\w\s]"
)
TAG = re.compile(r"<[^>]*>")
# AG News writes "&#39;" as " #39;" and "&amp;" as " amp;" ("AT amp;T"): the space was the "&".
ENTITY = re.compile(r" ?(?<![&\w])(#\d+|quot|amp|lt|gt|nbsp|hellip);")


def clean(text: str) -> str:
    """An AG News text as a reader sees it: entities decoded, HTML tags and links dropped.

    >>> clean('AT amp;T #39;s  quot;phone quot; &lt;b&gt;sells&lt;/b&gt;')
    'AT&T\\'s "phone" sells'
    """
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':  # a quoted TSV field
        text = text[1:-1].replace('""', '"')
    text = text.replace("\\$", "$")
    text = ENTITY.sub(r"&\1;", text)
    text = html.unescape(html.unescape(text))  # "&amp;lt;" is written twice over
    text = TAG.sub(" ", text)
    return " ".join(text.split())


def conll_tokens(text: str) -> list[str]:
    """`text`'s words as CoNLL-2003 writes them.

    >>> conll_tokens("The U.S.-based firm's shares, worth $47,600, don't move.")
    ['The', 'U.S.', '-', 'based', 'firm', "'s", 'shares', ',', 'worth', '$', '47,600', ',', 'do', "n't", 'move', '.']
    """
    return TOKEN.findall(text)


def write(tsv: Path, out: Path, column: str = "text", limit: int | None = None) -> int:
    """One JSONL row of tokens for each non-empty text of `tsv` (header row first), the first
    `limit` of them if given, written whole or not at all; returns the rows written."""
    with tsv.open(encoding="utf-8") as lines:
        header = next(lines).rstrip("\n").split("\t")
        at = header.index(column)
        rows = [conll_tokens(clean(line.rstrip("\n").split("\t")[at])) for line in lines if line.strip()]
    rows = [r for r in rows if r][:limit]
    partial = out.with_suffix(".partial")
    partial.write_text("".join(json.dumps({"tokens": r}, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    partial.replace(out)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--column", default="text")
    args = parser.parse_args()
    print(f"{write(args.tsv, args.out, args.column)} rows written to {args.out}")


if __name__ == "__main__":
    main()
