"""The course around the code: what notebooks call and how they are run and published.

* ``notebook.py``: the helpers a notebook imports (profile, artifacts, progress, repository paths);
* ``nbsync.py``: jupytext pairing of ``notebooks/*.py`` with their ``.ipynb``;
* ``nbrun.py``: running a notebook under papermill (the test harness, the exercise grader);
* ``book.py`` (+ ``book_templates/``): ``make book``, the executed course as a static site;
* ``browser_check.py``: notebook 09's widgets in JupyterLab in headless Chromium.
"""
