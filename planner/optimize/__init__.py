"""The sizing optimizer: candidates scored by the performance core, a linear MIP over them
(the only package that imports PuLP), extraction and re-verification of the plan."""
