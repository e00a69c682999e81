"""NumPy neural-network components. Knows nothing of files, configs or terminals."""
