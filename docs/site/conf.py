"""Sphinx configuration of the course website (`make site`; why Sphinx: about.md).

`docs/site/build.py` copies this folder, the lecture notebooks and the exercises into a staging
folder (build/site-src) and runs sphinx-build there with warnings as errors. The notebooks are
rendered from their stored outputs: nothing is executed.
"""

from __future__ import annotations

project = "rlcourse"
author = "the rlcourse authors"
copyright = "the rlcourse authors, MIT licence"

extensions = [
    "myst_nb",               # .md pages and .ipynb notebooks (MyST markdown)
    "sphinx.ext.autodoc",    # the API reference from the package's docstrings
    "sphinx.ext.napoleon",   # their Google-style `Args:` / `Returns:` sections
    "sphinx.ext.mathjax",    # math, with the local copy of MathJax below
]

root_doc = "index"
# README.md is staged only to be included (landing page, homework page), never a page of its own.
exclude_patterns = ["README.md", "_build"]

# ---------------------------------------------------------------- notebooks (MyST-NB)
nb_execution_mode = "off"          # stored outputs only; CI re-runs notebooks with nbval, not here
nb_ipywidgets_js = {}              # no widget manager JS (it would come from a CDN); build.py
                                   # replaces widget outputs with their text form and a note
nb_merge_streams = True            # one block per cell for stdout, as JupyterLab shows it
myst_enable_extensions = ["dollarmath", "amsmath"]  # $…$ and $$…$$ in the notebooks' markdown
myst_heading_anchors = 3

# ---------------------------------------------------------------- API reference (autodoc)
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# ---------------------------------------------------------------- offline math
# MathJax 3.2.2 is served from _static/mathjax (copied by build.py from the pip package
# sphinx-mathjax-offline), so the built site needs no network.
mathjax_path = "mathjax/tex-chtml.js"

# ---------------------------------------------------------------- theme
html_theme = "sphinx_book_theme"
html_title = "rlcourse: RL for language models"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
# pydata-sphinx-theme (under the Book theme) logs a console error when no mode is given.
html_context = {"default_mode": "auto"}
html_theme_options = {
    # no repository, launch or download buttons: the site is offline and points at nothing outside
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
