"""Cutting input files into units and reading them back, without Ray: a unit read on its own
gives exactly the rows, and row numbers, that the local reader gives for that stretch of file."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clearpipe.bulk.files import list_inputs
from clearpipe.bulk.units import Reading, cut_units, read_unit
from clearpipe.errors import InputError
from clearpipe.tables.read import read_chunks


def _no_check(chunk, file):
    pass


TRICKY = {
    # quoted newlines and commas, a byte-order mark, CRLF endings, a blank line
    "csv": '\ufeffid,text\r\n1,"a, b"\r\n2,"two\nlines"\r\n\r\n3,c\r\n4,d\r\n5,"e ""quoted"""\r\n6,f\r\n',
    # raw quotes (no CSV quoting in TSV), an empty cell
    "tsv": 'text\tlabel\n"quoted" start\tx\nplain\t\n3\ty\n4\tz\n5\tw\n',
    # blank lines are skipped and not counted
    "jsonl": '{"text": "a"}\n\n{"text": "b", "n": 2}\n"just a string"\n{"text": "d"}\n\n{"text": "e"}\n',
    # empty lines are rows; a later line starting with a byte-order mark keeps it
    "txt": "\ufeffone\n\ntwo\n\ufeffthree\nfour\n\n",
}


@pytest.mark.parametrize("fmt", sorted(TRICKY))
@pytest.mark.parametrize("chunk_rows", [1, 2, 4])
def test_units_read_back_the_local_readers_rows(tmp_path, fmt, chunk_rows):
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(TRICKY[fmt].encode("utf-8"))
    files = list_inputs(str(path))
    units = cut_units(files, Reading(chunk_rows), ["text"], _no_check)
    local = list(read_chunks(path, chunk_rows))
    assert [(u.first_row, u.rows) for u in units] == [(c.first_row, len(c.rows)) for c in local]
    for unit, chunk in zip(units, local, strict=True):
        assert read_unit(files[0], unit, Reading(chunk_rows))[0].rows == chunk.rows


def test_headerless_csv_units(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("a,1\nb,2\nc,3\n", encoding="utf-8")
    files = list_inputs(str(path))
    reading = Reading(2, header=False)
    units = cut_units(files, reading, ["1"], _no_check)
    rows = [row for u in units for row in read_unit(files[0], u, reading)[0].rows]
    assert rows == [{"1": "a", "2": "1"}, {"1": "b", "2": "2"}, {"1": "c", "2": "3"}]


def test_parquet_units_span_row_groups_and_keep_types(tmp_path):
    path = tmp_path / "in.parquet"
    table = pa.table({"id": pa.array(range(10), pa.int32()), "text": [f"t{i}" for i in range(10)]})
    pq.write_table(table, path, row_group_size=3)
    files = list_inputs(str(path))
    units = cut_units(files, Reading(4), ["text"], _no_check)
    assert [(u.first_row, u.rows) for u in units] == [(1, 4), (5, 4), (9, 2)]
    chunk, schema = read_unit(files[0], units[1], Reading(4))
    assert chunk.rows == table.slice(4, 4).to_pylist()
    assert schema.field("id").type == pa.int32()


def test_a_bad_parquet_text_is_found_by_the_local_reader(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["ok", None, "ok"]}), path)
    found = []
    cut_units(list_inputs(str(path)), Reading(2), ["text"], lambda chunk, file: found.append(chunk.rows))
    assert found == [[{"text": "ok"}, {"text": None}], [{"text": "ok"}]]  # every row, for the check


def test_folders_and_globs(tmp_path):
    for name in ["b.csv", "a.csv", "sub/c.csv", "_staging/x/part.csv", ".hidden.csv", "notes.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text\nx\n", encoding="utf-8")
    names = [Path(f.uri).relative_to(tmp_path).as_posix() for f in list_inputs(str(tmp_path))]
    assert names == ["a.csv", "b.csv", "sub/c.csv"]
    assert [Path(f.uri).name for f in list_inputs(str(tmp_path / "*.csv"))] == ["a.csv", "b.csv"]
    assert [Path(f.uri).name for f in list_inputs(str(tmp_path / "**" / "*.csv"))] == [
        "a.csv",
        "b.csv",
        "c.csv",
    ]
    assert list_inputs(str(tmp_path / "a.csv"))[0].name == str(tmp_path / "a.csv")  # as typed
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="mixes formats"):
        list_inputs(str(tmp_path))
    (tmp_path / "e.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match=r"convert it to \.jsonl"):
        list_inputs(str(tmp_path / "e.json"))
    with pytest.raises(InputError, match="no such file or folder"):
        list_inputs(str(tmp_path / "missing"))
