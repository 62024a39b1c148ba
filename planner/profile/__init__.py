"""``planner profile``'s analysis: a request trace (:class:`planner.domain.Trace`, read by
:mod:`planner.io.traces`) to its workload profile. The names below were ``planner.profile``'s before it was a
package and are importable from here as before."""

from planner.domain import Trace
from planner.profile.analysis import (
    Arrivals,
    Histogram,
    PhaseShare,
    PrefixReuse,
    Profile,
    ProfiledClass,
    TokenSummary,
    arrivals,
    choose_classes,
    histogram,
    hourly_rates,
    phase_share,
    phase_share_for,
    prefix_reuse,
    profile,
    request_classes,
    summarize,
)

__all__ = [
    "Arrivals",
    "Histogram",
    "PhaseShare",
    "PrefixReuse",
    "Profile",
    "ProfiledClass",
    "TokenSummary",
    "Trace",
    "arrivals",
    "choose_classes",
    "histogram",
    "hourly_rates",
    "phase_share",
    "phase_share_for",
    "prefix_reuse",
    "profile",
    "request_classes",
    "summarize",
]
