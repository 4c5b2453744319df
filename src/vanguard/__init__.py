"""vanguard-did: difference-in-differences evaluation of the NHS New Care Models vanguards."""

__version__ = "0.1.0"
