"""The spec of the sweeps tier's shared cases folder (``cases_folder`` in conftest.py).

Named cases as a new user writes them: no penalty, L2 at three values (two of them close: the
table once printed 0.00188 and 0.00176 both as 0.002), and early stopping. Its reports are checked
in the files of the modules that make them: test_compare.py, test_summary.py, test_plots.py and
test_tables.py.
"""

CASES = {
    "name": "cases", "data": {"dataset": "digits", "n_train": 60},
    "model": {"hidden": [16]}, "train": {"optimizer": "adam", "epochs": 24, "eval_every": 4, "batch_size": 20},
    "hparams": {"learning_rate": 0.01},
    "cases": {"none": {}, "l2": {"l2": {"values": [0.00188, 0.00176, 0.01]}}, "stop": {"patience": 4}},
    "search": {"seeds": 2, "chunk_size": 10},
}
