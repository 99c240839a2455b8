"""lazytensor's benchmark suite: `python -m bench` (see bench/__main__.py for the options).

Modules: timing.py (Timer, alternating rounds, checks), rows.py (one function per table row,
imports lazytensor), report.py (machine info and the Markdown table). Importing `bench` itself
imports nothing heavy, so the thread count can still be set before lazytensor loads.
"""
