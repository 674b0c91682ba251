"""Training data: formats, column and label inference, cleaning, splits, and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearpipe.errors import InputError
from clearpipe.training.data import DataOptions, read_evaluation_data, read_training_data
from clearpipe.training.dataset_files import read_table

ASSETS = Path(__file__).parents[1] / "assets"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ROWS = [
    {"review": "a great film", "sentiment": "pos"},
    {"review": "awful and boring", "sentiment": "neg"},
    {"review": "loved it", "sentiment": "pos"},
    {"review": "hated every minute", "sentiment": "neg"},
] * 5


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet", "folder"])
def test_every_format_reads_the_same_rows(tmp_path, suffix):
    import datasets

    table = datasets.Dataset.from_list(ROWS)
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".tsv":
        table.to_csv(path, index=False, sep="\t")
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS))
    elif suffix == ".jsonl":
        table.to_json(path)
    elif suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.save_to_disk(str(path))
    data = read_training_data(path, options=DataOptions(seed=0))
    assert data.report.columns.text == "review"
    assert data.report.columns.label == "sentiment"
    assert data.labels.names == ["neg", "pos"]
    assert len(data.train) + len(data.validation) == len(ROWS)
    assert {data.labels.names[i] for i in data.train.labels} == {"neg", "pos"}


def test_validation_split_is_stratified_and_seeded():
    data = read_training_data(ASSETS / "agnews_train.tsv", options=DataOptions(seed=3))
    again = read_training_data(ASSETS / "agnews_train.tsv", options=DataOptions(seed=3))
    assert data.report.validation_from_split
    assert len(data.validation) == 30
    assert data.validation.rows == again.validation.rows
    counts = data.report.splits[1].label_counts
    assert set(counts.values()) == {7, 8} or max(counts.values()) - min(counts.values()) <= 1
    assert not set(data.train.rows) & set(data.validation.rows)


def test_integer_labels_named_by_label_names():
    data = read_training_data(
        ASSETS / "sst2_train.tsv",
        ASSETS / "sst2_dev.tsv",
        options=DataOptions(label_names=["negative", "positive"]),
    )
    assert data.labels.names == ["negative", "positive"]
    assert data.report.splits[0].label_counts == {"negative": 128, "positive": 172}


def test_integer_labels_without_names_keep_their_values(tmp_path):
    path = write(
        tmp_path / "stars.csv", "text,label\n" + "".join(f"t{i},{s}\n" for i, s in enumerate([1, 3, 5] * 4))
    )
    data = read_training_data(path)
    assert data.labels.names == ["1", "3", "5"]


def test_report_counts_drops_with_row_numbers(tmp_path):
    train = write(
        tmp_path / "train.csv",
        "text,label\ngood,pos\n,neg\nbad,\n  ,pos\nfine,pos\nawful,neg\nok,pos\nmeh,neg\n",
    )
    val = write(tmp_path / "val.csv", "text,label\ngood,pos\nnice,neutral\nbad,neg\n")
    data = read_training_data(train, val)
    train_report, val_report = data.report.splits
    assert train_report.dropped == {"empty text": [2, 4], "missing label": [3]}
    assert train_report.rows_read == 8 and train_report.rows_kept == 5
    assert val_report.dropped == {"unknown label": [2]}
    assert data.report.overlap == {"validation": 1}  # "bad" was dropped from train


def test_imbalance_is_measured(tmp_path):
    rows = "".join(f"text {i},big\n" for i in range(50)) + "".join(f"other {i},small\n" for i in range(5))
    data = read_training_data(
        write(tmp_path / "skew.csv", "text,label\n" + rows), options=DataOptions(seed=0)
    )
    assert data.report.imbalance_ratio >= 5
    assert data.report.imbalanced


def test_multi_label_from_lists_and_delimited_strings(tmp_path):
    records = [
        {"text": f"t{i}", "labels": labels} for i, labels in enumerate([["a", "b"], ["b"], ["c"], []] * 3)
    ]
    path = write(tmp_path / "multi.jsonl", "\n".join(json.dumps(r) for r in records))
    data = read_training_data(path, options=DataOptions(seed=0))
    assert data.labels.multi_label and data.labels.names == ["a", "b", "c"]
    assert data.report.splits[0].dropped == {"missing label": [4, 8, 12]}
    csv_path = write(tmp_path / "multi.csv", "text,labels\nx,a|b\ny,b\nz,c\nw,a|c\n")
    csv_data = read_training_data(csv_path, options=DataOptions(multi_label=True, label_sep="|", seed=0))
    assert csv_data.labels.names == ["a", "b", "c"]
    assert sorted(map(tuple, csv_data.train.labels + csv_data.validation.labels)) == [
        (0, 1),
        (0, 2),
        (1,),
        (2,),
    ]


def test_column_overrides(tmp_path):
    path = write(tmp_path / "d.csv", "a,b,c\nx,y,1\nz,w,0\nq,r,1\ns,t,0\n")
    options = DataOptions(text_column="a", pair_column="b", label_column="c", seed=0)
    data = read_training_data(path, options=options)
    assert all(isinstance(item, tuple) for item in data.train.items)


# Malformed files: each with its documented error ---------------------------------------------------
def test_missing_column_lists_what_was_found(tmp_path):
    path = write(tmp_path / "d.csv", "words,label\nhello,1\n")
    with pytest.raises(
        InputError, match=r'cannot tell which column holds the text; columns found: "words", "label"'
    ):
        read_training_data(path)


def test_missing_label_column_in_validation(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\na,x\nb,y\nc,x\nd,y\n")
    val = write(tmp_path / "v.csv", "text,tag\na,x\n")
    with pytest.raises(InputError, match=r'v.csv: no column "label"'):
        read_training_data(train, val)


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="the file is empty"):
        read_training_data(write(tmp_path / "e.csv", ""))


def test_header_only_file(tmp_path):
    with pytest.raises(InputError, match="no data rows"):
        read_training_data(write(tmp_path / "h.csv", "text,label\n"))


def test_unknown_label_against_label_names(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,pos\nb,neg\nc,meh\n")
    with pytest.raises(InputError, match=r"d.csv, row 3: unknown label 'meh'"):
        read_training_data(path, options=DataOptions(label_names=["neg", "pos"]))


def test_mixed_label_types(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n')
    with pytest.raises(InputError, match=r"mixed label types: row 1 has an integer label and row 2 a string"):
        read_training_data(path)


def test_ragged_csv_row(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood,1\nbad,0,extra\n")
    with pytest.raises(InputError, match=r"d.csv, row 2: has 3 fields but the header has 2"):
        read_training_data(path)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"unknown data format '\.xlsx'"):
        read_table(write(tmp_path / "d.xlsx", "x"))
    with pytest.raises(InputError, match="no such data file"):
        read_table(tmp_path / "nope.csv")


def test_fractional_label(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,0.5\nb,1\n")
    with pytest.raises(InputError, match=r'row 1, column "label": label 0.5 is not a class'):
        read_training_data(path)


def test_evaluation_data_maps_onto_model_labels(tmp_path):
    path = write(tmp_path / "e.tsv", "sentence\tlabel\ngood\t1\nbad\t0\nodd\t7\n")
    split, report = read_evaluation_data(path, ["negative", "positive"], multi_label=False)
    assert split.labels == [1, 0]
    assert report.dropped == {"unknown label": [3]}


def test_one_blank_label_is_dropped_not_every_row(tmp_path):
    lines = ["text,label"] + [f"film {i},{i % 2}" for i in range(1, 9)]
    lines[3] = "film 3,"
    path = write(tmp_path / "e.csv", "\n".join(lines) + "\n")
    split, report = read_evaluation_data(path, ["negative", "positive"], multi_label=False)
    assert split.labels == [1, 0, 0, 1, 0, 1, 0]
    assert report.dropped == {"missing label": [3]}
    data = read_training_data(path, options=DataOptions(label_names=["negative", "positive"]))
    assert data.labels.names == ["negative", "positive"]
    assert data.report.splits[0].dropped == {"missing label": [3]}


def test_one_class_is_refused_before_training(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f"film {i},pos\n" for i in range(10)))
    with pytest.raises(InputError, match=r'd\.csv: every row has the label "pos" \(column "label"\)'):
        read_training_data(path)


def test_all_empty_texts_are_named_as_such(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "".join(f",{i % 2}\n" for i in range(10)))
    with pytest.raises(InputError, match=r'd\.csv: every row\'s text is empty \(column "text"\)'):
        read_training_data(path)
    with pytest.raises(InputError, match="every row's text is empty"):
        read_evaluation_data(path, ["negative", "positive"], multi_label=False)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_encoding_is_chosen_and_a_wrong_one_suggests_it(tmp_path, suffix):
    path = tmp_path / f"latin{suffix}"
    rows = [("café crème", "pos"), ("übel", "neg")] * 3
    if suffix == ".csv":
        text = "text,label\n" + "".join(f"{t},{label}\n" for t, label in rows)
    else:
        text = "".join(
            json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n" for t, label in rows
        )
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin\.\w+.*cannot decode.*pass --encoding"):
        read_training_data(path)
    data = read_training_data(path, options=DataOptions(encoding="latin-1", validation_fraction=0.34))
    assert sorted(data.train.items + data.validation.items) == sorted(t for t, _ in rows)
    wide = tmp_path / f"wide{suffix}"
    wide.write_bytes(text.encode("utf-16"))
    assert len(read_table(wide, encoding="utf-16")) == 6


def test_a_class_with_few_rows_is_a_warning_not_an_error(tmp_path, capsys):
    from clearpipe.training.report import print_data_report

    rows = "".join(f"text {i},big\n" for i in range(20)) + "".join(f"other {i},small\n" for i in range(5))
    path = write(tmp_path / "few.csv", "text,label\n" + rows)
    data = read_training_data(path, options=DataOptions(seed=0, validation_fraction=0.2))
    small = data.report.few_rows
    assert small == {"small": 5}  # the file's labelled rows, the 20% split off counted too
    report = data.report.to_dict()
    assert report["classes_with_few_rows"] == small
    assert any("fewer than 8 labelled rows: small" in w for w in report["warnings"])
    print_data_report(data.report)
    assert "warning: classes with fewer than 8 labelled rows: small" in capsys.readouterr().out
    enough = "".join(f"text {i},a\n" for i in range(12)) + "".join(f"other {i},b\n" for i in range(12))
    balanced = read_training_data(write(tmp_path / "ok.csv", "text,label\n" + enough), options=DataOptions())
    assert balanced.report.few_rows == {} and balanced.report.warnings() == []
