"""Bulk prediction over files: a table in, the same table with labels and scores out.

`local` runs one process through the classifier's engine, chunk by chunk, resumable; `ray`
spreads the same work over a Ray cluster's actors (`units` cuts the input, `files` finds it on
any pyarrow filesystem, `staging` commits the parts exactly once). Both are front ends like the
CLI and the server: they sit above the classifier and the table readers.
"""
