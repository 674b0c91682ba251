"""`clearpipe embed`: a table's texts as normalized sentence embeddings, in a Parquet file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup

EMBEDDING_COLUMN = "embedding"


def embed(
    input: Annotated[
        Path,
        typer.Argument(help="A .txt (one text per line), .csv, .tsv, .jsonl, .json or .parquet file."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .parquet file to write.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help='Sentence encoder: a folder, hub id or named base ("minilm-l6", the default; "mpnet-base").',
        ),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Column holding the text. Inferred when obvious.")
    ] = None,
    max_length: options.MaxLength = None,
    max_tokens: options.MaxTokens = None,
    device: options.Device = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help='"auto", "float32" or "bfloat16".')] = "auto",
    encoding: options.Encoding = "utf-8",
    no_header: options.NoHeader = False,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows embedded at a time.")] = 4096,
) -> None:
    """Embed every row's text (mean-pooled, L2-normalized, as sentence-transformers does) and write
    INPUT's columns plus an `embedding` column (float32 lists) to OUTPUT. An empty text gets a null
    embedding."""
    from clearpipe.cli.outputs import check_file
    from clearpipe.errors import InputError
    from clearpipe.tables.columns import TEXT_NAMES, pick_column
    from clearpipe.tables.read import read_chunks, read_columns, table_format
    from clearpipe.zeroshot import load_embedder

    table_format(input)
    if output.suffix != ".parquet":
        raise InputError(f"{output}: embeddings are written as Parquet; name the output .parquet")
    if output.resolve() == input.resolve():
        raise InputError(f"{output}: the output would overwrite the input; choose another file")
    check_file(output, "--output", "embeddings.parquet")
    found = read_columns(input, encoding, not no_header)
    column = pick_column(found, text_column, TEXT_NAMES, "text", "--text-column", input)
    if EMBEDDING_COLUMN in found:
        raise InputError(f"{input} already has an {EMBEDDING_COLUMN!r} column; rename it first")
    embedder = load_embedder(model, max_length=max_length, device=device, dtype=dtype, max_tokens=max_tokens)
    startup.resume_collector()
    chunks = read_chunks(input, chunk_rows, encoding, not no_header)
    rows, empty = _write(chunks, column, found, embedder, output)
    note = f"; {empty} rows had an empty text: null embedding" if empty else ""
    print(f"wrote {rows} embeddings of {embedder.width} values to {output}{note}", file=sys.stderr)


def _write(chunks, column: str, found: list[str], embedder, output: Path) -> tuple[int, int]:
    """Stream the chunks' rows and embeddings into a temporary Parquet file, renamed into place
    at the end, so an interrupted run never leaves a file that looks complete. The input's
    columns keep the types the first chunk shows (text for CSV, TSV and .txt)."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = output.with_name(output.name + ".clearpipe-tmp")
    rows = empty = 0
    writer = schema = None
    try:
        for chunk in chunks:
            texts = ["" if row.get(column) is None else str(row.get(column)) for row in chunk.rows]
            filled = [i for i, text in enumerate(texts) if text.strip()]
            vectors = embedder.embed([texts[i] for i in filled]) if filled else None
            embeddings: list = [None] * len(texts)
            for j, i in enumerate(filled):
                embeddings[i] = vectors[j].tolist()
            records = [
                {**{n: row.get(n) for n in found}, EMBEDDING_COLUMN: e}
                for row, e in zip(chunk.rows, embeddings, strict=True)
            ]
            if writer is None:
                schema = _schema(pa.Table.from_pylist(records).schema, found)
                writer = pq.ParquetWriter(partial, schema)
            writer.write_table(pa.Table.from_pylist(records, schema=schema))
            rows, empty = rows + len(texts), empty + len(texts) - len(filled)
        if writer is None:  # an input without rows: an empty file with the columns as text
            writer = pq.ParquetWriter(partial, _schema(pa.schema([]), found))
        writer.close()
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return rows, empty


def _schema(seen, found: list[str]):
    """The output schema: each input column as `seen` typed it (text where it was all null or
    absent), then the embedding as float32 lists."""
    import pyarrow as pa

    def typed(name: str):
        kind = seen.field(name).type if name in seen.names else pa.null()
        return pa.field(name, pa.string() if pa.types.is_null(kind) else kind)

    return pa.schema([*(typed(n) for n in found), pa.field(EMBEDDING_COLUMN, pa.list_(pa.float32()))])
