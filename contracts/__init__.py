"""The consortium's Solidity contracts (*.sol), the canonical sources.

Not Python: this file only makes the folder a package so that `pip install .` ships the sources (package data,
see pyproject.toml) beside `chain/`, where chain/contracts.py finds them in a checkout and in an installed copy.
"""
