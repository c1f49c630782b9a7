"""Golden vectors: ``model``, ``load``, ``yamlfile``, ``versions`` and ``limits``
(the data, read with line numbers, its version ranges and size limits);
``lint``; ``plan`` (what a vector makes QEMU do) and ``safety`` (that plan
through the safety gate); ``run`` (one vector on one build, an
``Observation``), ``persistent`` (one QEMU serving many cases), ``ahead``
(cases that wait, run ahead of their turn) and ``transcript`` (several
commands in a row); ``match`` (the ``Verdict``),
``basis`` (what the expectation rests on) and ``check`` (all of it for one case,
with its ``CaseRecord``); ``pairs`` and ``paircheck`` (the cross-version pair
vectors and one cell of their matrix)."""
