"""planner: capacity planning and cost optimization for disaggregated LLM inference."""

__version__ = "0.1.0"
