"""The `clearpipe` command line: one module per command, each exposing one function."""
