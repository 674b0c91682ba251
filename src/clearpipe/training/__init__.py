"""Training and evaluation: a user's table -> tokenized dataset -> `Trainer` -> checkpoint + report.

Reading tables into examples (`dataset_files`, `labels`, `data`), tokenizing them for training
(`features`), the training loop (`train`), scoring (`evaluation`, `metrics`) and the run's
artifacts (`report`, `plots`).
"""
