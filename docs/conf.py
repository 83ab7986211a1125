"""Sphinx configuration of entrosum's API reference, generated from the numpy-style docstrings.

Build it with ``sphinx-build -W -b html docs build/docs`` (``pip install ".[docs]"``); CI does, with
warnings as errors.
"""

import entrosum

project = "entrosum"
author = "the entrosum developers"
copyright = "2026, the entrosum developers"
release = version = entrosum.__version__

extensions = ["sphinx.ext.autodoc", "numpydoc"]
exclude_patterns = ["_build", "model_format.md"]
root_doc = "index"

autodoc_default_options = {"members": True, "inherited-members": True, "show-inheritance": False}
autodoc_member_order = "groupwise"
autodoc_typehints = "none"  # the numpy docstrings give the types
numpydoc_show_class_members = False  # autodoc lists them
numpydoc_class_members_toctree = False

html_theme = "alabaster"
html_title = f"entrosum {release}"
