"""Data: built-in datasets and data files in, a split and a preprocessing fitted on the training rows.

sources (built-in datasets, `load_dataset`), reading (CSV files), columns (numeric and categorical
columns, encoding new rows), split, preprocess; builtins is the table of built-in datasets and
fastcsv the vectorized reader for all-numeric files.
"""
