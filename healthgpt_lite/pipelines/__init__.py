"""End-to-end pipelines, each one command of ``healthgpt-lite reproduce``:

* ``reproduce.py``: the three-stage HealthGPT pipeline, from data to ``results/REPORT.md``,
  over one or several seeds (its steps: ``shared_steps.py``, ``seed_steps.py``, ``results.py``);
* ``qilin.py``: Qilin-Med-VL's two-stage recipe beside HealthGPT (``--recipe qilin``);
* ``ablations.py``: the paper's ablations in miniature (``--ablations``; the runs in ``ablations/``).
"""
