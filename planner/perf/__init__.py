"""The analytic performance core: pure functions over domain types, SI units, numpy only.

No I/O, no PuLP, no YAML. Every formula states its source in its docstring.
"""
