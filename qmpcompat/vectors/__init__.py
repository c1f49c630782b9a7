"""Golden vectors: ``model`` and ``load`` (the data), ``lint``, ``run`` (one vector
on one build, an ``Observation``), ``match`` (the ``Verdict``), ``check`` (all of
it for one case, with its ``CaseRecord``)."""
