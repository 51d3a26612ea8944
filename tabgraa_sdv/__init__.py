"""tabgraa_sdv: an SDV single-table synthesizer built on a compact causal language model."""

from tabgraa_sdv.synthesizer import TabGRAASynthesizer

__all__ = ['TabGRAASynthesizer']
__version__ = '0.1.0'
