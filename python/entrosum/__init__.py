from entrosum._core import __version__
