"""Tables on disk: reading rows in streamed chunks, writing results atomically, finding columns.

`read` (.txt/.csv/.tsv/.jsonl/.json/.parquet with 1-based row numbers), `write` (part files
assembled into one output), `columns` (which column holds the text, the pair, the label).
"""
