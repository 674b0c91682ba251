import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearpipe.errors import InputError
from clearpipe.tables.columns import TEXT_NAMES, pick_column
from clearpipe.tables.read import read_chunks, read_columns


def _rows(path, chunk_rows=2):
    return [(chunk.first_row, chunk.rows) for chunk in read_chunks(path, chunk_rows)]


def test_every_format_reads_the_same_rows(tmp_path):
    records = [
        {"id": "1", "text": 'He said "hi"'},
        {"id": "2", "text": "café, naïve"},
        {"id": "3", "text": ""},
    ]
    (tmp_path / "a.csv").write_text('id,text\n1,"He said ""hi"""\n2,"café, naïve"\n3,\n', encoding="utf-8")
    (tmp_path / "a.tsv").write_text('id\ttext\n1\tHe said "hi"\n2\tcafé, naïve\n3\t\n', encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(records), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "a.parquet")
    for suffix in ("csv", "tsv", "jsonl", "json", "parquet"):
        path = tmp_path / f"a.{suffix}"
        assert _rows(path) == [(1, records[:2]), (3, records[2:])], suffix
        assert read_columns(path) == ["id", "text"]


def test_txt_is_one_text_per_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first\r\nsecond\n\nfourth", encoding="utf-8")
    assert [r["text"] for _, rows in _rows(path, 10) for r in rows] == ["first", "second", "", "fourth"]


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(
        InputError, match=r"bad.txt, line 3: cannot decode byte b'\\xe9' as utf-8; pass --encoding"
    ):
        _rows(path)
    latin = [row["text"] for chunk in read_chunks(path, 10, "latin-1") for row in chunk.rows]
    assert latin == ["fine", "also fine", "café"]


def test_ragged_csv_row_is_named(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,text\n1,a\n2,b,extra\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ragged\.csv, row 2 .*has 3 fields, the header has 2"):
        _rows(path)


def test_bad_json_lines_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl, line 2: invalid JSON"):
        _rows(path)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"unknown input format '\.xlsx'"):
        _rows(tmp_path / "a.xlsx")
    with pytest.raises(InputError, match="no such file"):
        _rows(tmp_path / "missing.csv")


def test_missing_text_column_lists_columns():
    with pytest.raises(
        InputError, match=r'no column "body" \(--text-column\); columns found: "id", "review"'
    ):
        pick_column(["id", "review"], "body", TEXT_NAMES, "text", "--text-column", "a.csv")
    with pytest.raises(InputError, match="cannot tell which column holds the text"):
        pick_column(["id", "words"], None, TEXT_NAMES, "text", "--text-column", "a.csv")
    with pytest.raises(InputError, match="several columns could hold the text"):
        pick_column(["text", "review"], None, TEXT_NAMES, "text", "--text-column", "a.csv")


def test_utf16_files_are_read_by_line(tmp_path):
    csv_path, txt_path = tmp_path / "wide.csv", tmp_path / "wide.txt"
    csv_path.write_bytes("id,text\r\n1,café\r\n2,naïve\r\n".encode("utf-16"))
    txt_path.write_bytes("first\nsecond, café\nthird".encode("utf-16"))
    assert read_columns(csv_path, "utf-16") == ["id", "text"]
    chunks = list(read_chunks(csv_path, 1, "utf-16"))
    assert [c.rows for c in chunks] == [[{"id": "1", "text": "café"}], [{"id": "2", "text": "naïve"}]]
    assert chunks[-1].bytes_read == csv_path.stat().st_size
    texts = [r["text"] for c in read_chunks(txt_path, 10, "utf-16") for r in c.rows]
    assert texts == ["first", "second, café", "third"]


def test_utf16_read_as_utf8_suggests_the_encoding(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes("id,text\n1,a\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"wide\.csv, line 1: .*byte-order mark: pass --encoding utf-16"):
        read_columns(path)


def test_lines_ending_in_cr_alone_are_rows(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b'id,text\r1,"first"\r2,second\r')
    assert read_columns(path) == ["id", "text"]
    assert _rows(path, 10) == [(1, [{"id": "1", "text": "first"}, {"id": "2", "text": "second"}])]
    txt = tmp_path / "mac.txt"
    txt.write_bytes(b"one\rtwo\rthree")
    assert [r["text"] for _, rows in _rows(txt, 10) for r in rows] == ["one", "two", "three"]


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_deeply_nested_json_is_an_input_error(tmp_path, suffix):
    path = tmp_path / f"deep.{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"deep\.{suffix}.*JSON nested too deeply"):
        _rows(path)
