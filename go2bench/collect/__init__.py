"""Collection of noisy learning histories in the Vintix HDF5 layout; filled by a later stage."""
