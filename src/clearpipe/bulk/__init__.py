"""Bulk prediction over files: a table in, the same table with labels and scores out.

`local` runs one process through the classifier's engine, chunk by chunk, resumable. It is a
front end like the CLI and the server: it sits above the classifier and the table readers.
"""
