"""What the claims of the vector set rest on (vector expectations, known defects,
cross-version pair expectations): the schema history that checks them
(``history``, the history lint; ``entries`` for known defects and pairs),
observed vs inferred for every QEMU version (or version pair) a claim covers
(``basis``), and recording what a run observed (``observe``)."""
