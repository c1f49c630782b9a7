"""Sharding one run over several machines: the plan of which shard runs which
cases (``plan``), and what each part is expected to cost (``costs``)."""
