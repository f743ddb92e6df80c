"""The on-disk format of learning histories (Vintix layout), shared by collection and training.

``names`` (file and group names), ``writer`` (crash-safe HistoryWriter), ``reader``, ``check``
(every problem of a dataset, one line each), ``repair``, ``stats`` (the one mean/std
implementation) and ``dataset_config`` (the one parser of dataset configs).  Needs h5py and
numpy, never torch, Genesis or the collector.
"""
