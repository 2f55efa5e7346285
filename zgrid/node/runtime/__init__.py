"""Container and virtual machine backends behind one runtime interface."""
