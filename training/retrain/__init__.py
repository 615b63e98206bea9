"""Retrain a router on the traffic it served, evaluate it honestly, promote it only if better.

``adaptive-router retrain --logs FILE --base DIR --out DIR`` runs :func:`retrain`:

1. **Read the log**: the project's traffic log (:mod:`adaptive_router.traffic`, one line per
   routed request, rotated files included) and/or LiteLLM's standard logging payloads
   (``StandardLoggingPayload`` JSON lines, as LiteLLM's loggers write them); the format is
   detected per line. Later feedback (``--feedback``, JSON lines keyed by ``request_id``) is
   joined on.
2. **Label quality** of each served answer, from (in ``auto`` order) explicit user feedback, the
   reward score logged for the chosen sample, or an LLM judge called through
   ``litellm.completion`` (any model LiteLLM can reach, e.g. a local one).
3. **Split** by prompt (a hash, so one prompt never lands on both sides) into train and
   held-out traffic.
4. **Learn**: when the base router predicts every fleet candidate itself, a warm-start
   fine-tune: a :class:`~adaptive_router.routers.feedback_tuned.FeedbackTunedRouter`
   starts exactly at the base router's predictions and learns a penalised logit correction from
   the observed (prompt, served candidate, quality) triples; the penalty is chosen on a
   validation slice of the train traffic. When it does not (``--base default``, whose roles are
   generic; ``--base none``; a fleet that grew), a
   :class:`~adaptive_router.routers.fleet_heads.FleetHeadsRouter`: a head per fleet candidate,
   propensity-weighted and shrunk toward the candidate's logged mean and its role's prior
   (``heads``; the fleet and base resolution are in ``fleet``).
5. **Evaluate old against new** on the held-out traffic with off-policy estimators
   (:mod:`adaptive_router.training.offpolicy`): each logged request is re-decided by each router
   under the knob it was served with, and the value of both policies is estimated from the
   logged propensities (doubly robust by default; IPS and SNIPS reported too), for quality and
   for dollar cost, with standard errors and a paired difference.
6. **Promote** the new router only when its estimated utility (quality minus a cost weight
   times relative cost) beats the old one's by at least ``min_z`` standard errors.
7. **Report**: ``report.md``, ``quality_cost.png`` and ``retrain.json`` in the output folder;
   ``candidate/`` is the retrained router, ``router/`` the one to deploy (the candidate if
   promoted, else a copy of the base).

The steps live in this package's modules: ``logs`` (1), ``labels`` (2), ``bandit`` (3: the
logged requests as bandit data, and the split), ``fine_tune`` (4), ``evaluation`` (5 and the
promotion rule of 6), ``report`` (7) and ``job`` (:func:`retrain`, which runs them in order).
Steps 1-3 run as one streamed pass (``compact``): the log is never held whole, only compact
per-request arrays, and each distinct prompt is embedded, routed and fitted on once, so a log of
a million requests retrains in minutes and in a few hundred MB (``docs/bench_scale.md``).
Import each name from its module, e.g. ``from adaptive_router.training.retrain.job import retrain``.
"""
