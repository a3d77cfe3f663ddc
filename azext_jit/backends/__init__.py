"""JIT modes: where a VM's policy lives and who writes its NSG rules (see base.py for the interface)."""
