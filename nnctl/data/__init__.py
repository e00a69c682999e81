"""Data: built-in datasets and data files in, a split and an encoding fitted on the training rows.

sources (the Dataset, built-in datasets, `load_dataset`), builtins (their table); for data files:
textformat (compression, delimiter sniffing, line numbers), reading (files into a typed `Table`,
by Apache Arrow), arrow (Arrow arrays into NumPy), table (RawColumn, Table), roles (target, id,
ignore, missing values, the task; eval/predict input), columns (kinds, the encoding fitted on the
training rows); then split and preprocess (scaling, PCA, target scaling).
"""
