"""One provisioner per workload type, all behind one small interface (base.py)."""
