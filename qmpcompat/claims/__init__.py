"""What a vector's claims rest on: the schema history that checks them, and
observed vs inferred for every QEMU version a claim covers."""
