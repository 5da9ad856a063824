"""OpenTap: a software-defined network tap device."""

import os

__version__ = "0.1.0"

# We use numpy for columns, never for linear algebra; without this, the OpenBLAS inside numpy's wheel starts
# a worker thread per core that spins after start-up, taking CPU from capture and metering.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
