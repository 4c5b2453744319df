"""vanguard-did: difference-in-differences evaluation of the NHS New Care Models vanguards."""

import warnings

# pandera loads its optional PySpark integration whenever pyspark is installed (the
# project's `spark` extra); pyspark then warns about the pandas version on import. The
# project never uses pyspark.pandas, so the warning is noise in every notebook's output.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

__version__ = "0.1.0"
