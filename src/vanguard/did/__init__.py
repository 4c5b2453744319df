"""Difference-in-differences estimators for the vanguard evaluation.

Every estimator takes an analysis panel (or a prepared :class:`vanguard.did.design.Design`)
and returns a table in the tidy results schema (:func:`vanguard.schema.results_frame`).

* :func:`vanguard.did.design.prepare` - the shared estimation sample (scale, window,
  balanced panel, event time, treatment dummies).
* :func:`vanguard.did.twfe.estimate_twfe` - Morciano-style two-way fixed effects by
  group x post-period window (OLS on rate/log/count, Poisson fixed effects).
* :func:`vanguard.did.event_study.estimate_event_study` - relative-time event study with
  binned ends and a joint pre-trend test.
* :mod:`vanguard.did.inference` - cluster-robust, wild cluster bootstrap and
  randomisation inference, the headline-inference rule and a coverage study.

Submodules are not imported here so that ``import vanguard.did`` stays light.
"""
