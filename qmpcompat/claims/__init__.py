"""What a vector's claims rest on: the schema history that checks them
(``history``, the history lint), observed vs inferred for every QEMU version a
claim covers (``basis``), and recording what a run observed (``observe``)."""
